package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSlowLogLines: each slow request is one line, due time first in Unix
// seconds with microseconds (what $EPOCHREALTIME prints), appended to what
// the file already held; a nil log closes as a no-op.
func TestSlowLogLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slow.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openSlowLog(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := l.recorder("secret-get-payload", "arca")
	rec(SlowRequest{Due: time.Unix(1796564212, 479123456), Lag: 140 * time.Microsecond, Latency: 10935 * time.Microsecond})
	rec(SlowRequest{Due: time.Unix(1796564213, 5000), Lag: 0, Latency: 5 * time.Millisecond})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "earlier\n" +
		"1796564212.479123 secret-get-payload arca lag_us=140 latency_us=10935\n" +
		"1796564213.000005 secret-get-payload arca lag_us=0 latency_us=5000\n"
	if string(b) != want {
		t.Errorf("slow log:\n%s\nwant:\n%s", b, want)
	}
	var none *slowLog
	if err := none.Close(); err != nil {
		t.Errorf("nil slow log: Close = %v", err)
	}
}
