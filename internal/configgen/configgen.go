// Command configgen writes the files that repeat what is described once
// elsewhere: the shipped configs that repeat the managed devices schema (the
// warehouse configs, and the others for their shared input block) and the
// column table of docs/destinations.md, from
// plugin/intune/schema/managed_device.tsv and the templates here; and the
// configuration reference in docs/reference, from the specs of the components
// plugin/intune registers. `make configs` runs it; its test fails when a
// committed file differs from what it writes, so that nobody edits a
// generated file by hand.
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
	"sort"
	"text/template"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// configs are the files generated under config/, each from
// templates/<name>.tmpl.
var configs = []string{"sqlite.yaml", "postgres.yaml", "clickhouse.yaml", "bigquery.yaml", "snowflake.yaml", "kafka.yaml", "stdout.yaml",
	"apps-sqlite.yaml", "apps-postgres.yaml", "apps-kafka.yaml"}

// settings shared by the templates.
type settings struct {
	SQLiteDSN   string // the SQLite default: a file in the working directory, so no directory must exist
	SQLiteBatch int
	PGBatch     int
	Columns     []schema.Column
}

func defaults() settings {
	return settings{
		SQLiteDSN:   schema.SQLiteDSN("intune.db"),
		SQLiteBatch: 1000,
		PGBatch:     500,
		Columns:     schema.Columns(),
	}
}

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := write(*root); err != nil {
		fmt.Fprintln(os.Stderr, "configgen:", err)
		os.Exit(1)
	}
}

// write writes every generated file under root, and removes the pages of
// the reference whose component is no longer registered.
func write(root string) error {
	doc, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(columnsDoc)))
	if err != nil {
		return err
	}
	files, err := generate(doc)
	if err != nil {
		return err
	}
	stale, err := staleReferencePages(root, files)
	if err != nil {
		return err
	}
	for _, path := range stale {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(path))); err != nil {
			return err
		}
	}
	for _, path := range sortedKeys(files) {
		full := filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, files[path], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// staleReferencePages are the files in the reference's directory that the
// generator did not write.
func staleReferencePages(root string, files map[string][]byte) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(referenceDir)))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, e := range entries {
		path := referenceDir + "/" + e.Name()
		if _, ok := files[path]; !ok {
			stale = append(stale, path)
		}
	}
	return stale, nil
}

// generate returns every generated file's path (relative to the root,
// slash-separated) and content; docs/destinations.md's is destinations with
// its generated part written anew.
func generate(destinations []byte) (map[string][]byte, error) {
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
		out["config/"+name] = b.Bytes()
	}
	if out[columnsDoc], err = withColumnTable(destinations); err != nil {
		return nil, err
	}
	pages, err := reference()
	if err != nil {
		return nil, err
	}
	for path, page := range pages {
		out[path] = page
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var funcs = template.FuncMap{
	"createTable":     func(dest, indent string) string { return schema.CreateTable(dest, "managed_devices", indent) },
	"createAppsTable": func(dest, indent string) string { return schema.CreateDetectedAppsTable(dest, indent) },
}
