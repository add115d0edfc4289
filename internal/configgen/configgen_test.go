package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed configs and README table are exactly what the generator
// writes: a generated file edited by hand fails here, and `make configs`
// after editing the schema or a template brings them back in step.
func TestCommittedFilesAreWhatMakeConfigsWrites(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := generate(readme)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(configs)+1 {
		t.Fatalf("%d files generated", len(files))
	}
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what `make configs` writes (first difference at line %d): edit plugin/intune/schema/managed_device.tsv or internal/configgen/templates, then run make configs",
				path, firstDifferentLine(got, want))
		}
	}
}

// Every property of the schema is a column of every warehouse config.
func TestEveryWarehouseConfigNamesEveryColumn(t *testing.T) {
	files, err := generate([]byte(readmeBegin + readmeEnd))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sqlite.yaml", "postgres.yaml", "clickhouse.yaml", "bigquery.yaml", "snowflake.yaml"} {
		conf := string(files[filepath.Join("config", name)])
		for _, c := range defaults().Columns {
			if !strings.Contains(conf, " "+c.Name+" ") {
				t.Errorf("%s has no column %s", name, c.Name)
			}
		}
		if !strings.Contains(conf, "_raw") {
			t.Errorf("%s does not keep the whole device", name)
		}
	}
}

func firstDifferentLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range la {
		if i >= len(lb) || !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return len(la) + 1
}
