package main

import (
	"strings"
	"testing"
)

// stream builds a govulncheck -format json stream: config and progress
// messages, the advisory, and a finding whose top frame calls function
// (empty for an import-level finding).
func stream(id, module, function string) string {
	return `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck"}}
{"progress":{"message":"Scanning your code"}}
{"osv":{"id":"` + id + `","summary":"something bad"}}
{"finding":{"osv":"` + id + `","fixed_version":"v1.26.9","trace":[{"module":"` + module + `","version":"v1.26.8","package":"net/http","function":"` + function + `"},{"module":"opendev.org/x/arca","function":"main"}]}}
`
}

func TestGate(t *testing.T) {
	tests := []struct {
		name       string
		input      string
		accepted   string
		wantFailed bool
		wantLines  []string
	}{
		{
			name:       "called and not accepted fails",
			input:      stream("GO-1", "stdlib", "ServeHTTP"),
			wantFailed: true,
			wantLines:  []string{"CALLED    GO-1 stdlib v1.26.8 (v1.26.9): something bad", "1 reached and not accepted"},
		},
		{
			name:      "called and accepted passes with the reason",
			input:     stream("GO-1", "stdlib", "ServeHTTP"),
			accepted:  "# comment\n\nGO-1 fixed in go1.26.9, not on the machines yet\n",
			wantLines: []string{"accepted  GO-1", "reason: fixed in go1.26.9, not on the machines yet", "1 reached and accepted"},
		},
		{
			name:      "imported but not called passes",
			input:     stream("GO-2", "github.com/x/y", ""),
			wantLines: []string{"0 reached and not accepted, 0 reached and accepted, 1 in code Arca does not call"},
		},
		{
			name:      "an accepted advisory no longer reported is named",
			input:     stream("GO-1", "stdlib", "ServeHTTP"),
			accepted:  "GO-1 reason\nGO-9 old reason\n",
			wantLines: []string{"stale     GO-9 is accepted but no longer reached"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accepted, err := parseAccepted(strings.NewReader(tt.accepted))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := readReport(strings.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if failed := rep.print(&out, accepted); failed != tt.wantFailed {
				t.Errorf("failed = %v, want %v\n%s", failed, tt.wantFailed, out.String())
			}
			for _, want := range tt.wantLines {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestGateRefusesBadInput(t *testing.T) {
	if _, err := readReport(strings.NewReader("")); err == nil {
		t.Error("an empty stream (govulncheck did not run) passed")
	}
	if _, err := readReport(strings.NewReader(`{"osv":`)); err == nil {
		t.Error("a truncated stream passed")
	}
	if _, err := parseAccepted(strings.NewReader("GO-1\n")); err == nil || !strings.Contains(err.Error(), "no reason") {
		t.Errorf("an accepted id without a reason: %v", err)
	}
}
