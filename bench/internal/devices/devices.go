// Package devices reads the devices the floors of the destination benchmark
// write: one device per line, as bench/cmd/floor dumped them from graphsim,
// and turns one into the typed values of the managed_devices columns.
package devices

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// Read returns every line of path.
func Read(path string) ([][]byte, error) {
	var out [][]byte
	err := Each(path, func(_ int, line []byte) error {
		out = append(out, append([]byte(nil), line...))
		return nil
	})
	return out, err
}

// Each calls fn with each line of path (which fn must not keep) and its
// 0-based number.
func Each(path string, fn func(i int, line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for i := 0; sc.Scan(); i++ {
		if err := fn(i, sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Values are a device's columns in schema.Columns() order, as text (nil for
// NULL): what a user flattening in Go would hand a database. Graph's
// "never" dates are NULL; arrays and objects their JSON text.
func Values(device []byte) ([]any, error) {
	var props map[string]json.RawMessage
	if err := json.Unmarshal(device, &props); err != nil {
		return nil, err
	}
	cols := schema.Columns()
	out := make([]any, len(cols))
	for i, c := range cols {
		raw, ok := props[c.Property]
		if !ok || string(raw) == "null" {
			continue
		}
		switch c.Kind {
		case schema.KindString, schema.KindDateTime:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%s: %w", c.Property, err)
			}
			if c.Kind == schema.KindDateTime && strings.HasPrefix(s, "0001-01-01") {
				continue
			}
			out[i] = s
		default: // booleans, Int64 (kept as their digits), JSON
			out[i] = string(raw)
		}
	}
	return out, nil
}
