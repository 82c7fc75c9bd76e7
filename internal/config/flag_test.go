package config_test

import (
	"flag"
	"reflect"
	"testing"

	"opendev.org/x/arca/internal/config"
)

func TestStringListRepeats(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var files config.StringList
	fs.Var(&files, "config-file", "")
	if err := fs.Parse([]string{"--config-file", "a.conf", "--config-file=b.conf"}); err != nil {
		t.Fatal(err)
	}
	if want := (config.StringList{"a.conf", "b.conf"}); !reflect.DeepEqual(files, want) {
		t.Fatalf("got %q, want %q", files, want)
	}
	if got := files.String(); got != "a.conf,b.conf" {
		t.Fatalf("String() = %q", got)
	}
}
