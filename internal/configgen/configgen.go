// Command configgen writes the shipped configs that repeat the managed
// devices schema (the warehouse configs, and the others for their shared
// input block) and the README's column table, from
// plugin/intune/schema/managed_device.tsv and the templates here. `make
// configs` runs it; its test fails when a committed file differs from what
// it writes, so that nobody edits a generated file by hand.
//
//	go run ./internal/configgen [-root .]
package main

import (
	"bytes"
	"embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// configs are the files generated under config/, each from
// templates/<name>.tmpl.
var configs = []string{"sqlite.yaml", "postgres.yaml", "clickhouse.yaml", "bigquery.yaml", "snowflake.yaml", "kafka.yaml", "stdout.yaml"}

// settings shared by the templates.
type settings struct {
	SQLiteDSN   string // the SQLite default: a file in the working directory, so no directory must exist
	SQLiteBatch int
	PGBatch     int
	Columns     []schema.Column
}

func defaults() settings {
	return settings{
		SQLiteDSN:   "file:intune.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)",
		SQLiteBatch: 1000,
		PGBatch:     500,
		Columns:     schema.Columns(),
	}
}

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	readme, err := os.ReadFile(filepath.Join(*root, "README.md"))
	var files map[string][]byte
	if err == nil {
		files, err = generate(readme)
	}
	for path, content := range files {
		if err != nil {
			break
		}
		err = os.WriteFile(filepath.Join(*root, path), content, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "configgen:", err)
		os.Exit(1)
	}
}

// generate returns every generated file's path (relative to the root) and
// content; README.md's is readme with its generated part written anew.
func generate(readme []byte) (map[string][]byte, error) {
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.tmpl")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range configs {
		var b bytes.Buffer
		if err := tmpl.ExecuteTemplate(&b, name+".tmpl", defaults()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[filepath.Join("config", name)] = b.Bytes()
	}
	out["README.md"], err = withColumnTable(readme)
	return out, err
}

var funcs = template.FuncMap{
	"createTable": func(dest, indent string) string { return schema.CreateTable(dest, "managed_devices", indent) },
}
