package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestLogLinesWaitAndSurviveShutdown runs arca-api as an operator would,
// with [DEFAULT] log_flush_interval set (a minute here, so that only what
// the test looks for writes a line early):
//   - a secret read's audit line is in the log as soon as the payload
//     arrives (within the moment the test's pipe takes), and the access
//     lines held before it went out with it, in order;
//   - the read's own access line waits;
//   - SIGTERM writes it before the process exits.
//
// The other tests run with log_flush_interval = 0 (testenv.LogEveryLine)
// because they read the logs of a running server.
func TestLogLinesWaitAndSurviveShutdown(t *testing.T) {
	srv := testenv.StartAPI(t, testenv.APIOptions{LogFlushInterval: "60"})
	header := map[string]string{"X-Project-Id": "p-logflush", "X-Roles": "member"}
	send := func(method, url, body string, want int) (requestID, answer string) {
		t.Helper()
		resp, b := testenv.DoResponse(t, method, url, body, header)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
		}
		return resp.Header.Get("X-Openstack-Request-Id"), string(b)
	}
	storeID, answer := send("POST", srv.URL+"/v1/secrets", `{"payload": "log flush", "payload_content_type": "text/plain"}`, http.StatusCreated)
	var created struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal([]byte(answer), &created); err != nil || created.Ref == "" {
		t.Fatalf("POST /v1/secrets answered %s (%v)", answer, err)
	}
	ref := created.Ref
	readID, _ := send("GET", ref+"/payload", "", http.StatusOK)
	if storeID == "" || readID == "" {
		t.Fatalf("no X-Openstack-Request-Id in the answers (%q, %q)", storeID, readID)
	}
	storeAccess := line{storeID, " request "}
	readAudit := line{readID, "action=secret:decrypt"}
	readAccess := line{readID, " request "}
	// The server wrote the audit line before the answer; the test reads it
	// through a pipe and os/exec's copying goroutine, which may lag the
	// answer by a moment. A line held for the interval would take 60 s.
	logs := srv.Logs()
	for deadline := time.Now().Add(10 * time.Second); !readAudit.in(logs) && time.Now().Before(deadline); logs = srv.Logs() {
		time.Sleep(10 * time.Millisecond)
	}
	if !readAudit.in(logs) || !storeAccess.in(logs) || storeAccess.at(logs) > readAudit.at(logs) {
		t.Errorf("when the payload arrived, want the store's access line and then the read's audit line in the log:\n%s", logs)
	}
	if readAccess.in(logs) {
		t.Errorf("the read's access line was written with log_flush_interval = 60:\n%s", logs)
	}

	srv.Stop(t)
	logs = srv.Logs()
	if !readAccess.in(logs) || readAccess.at(logs) < readAudit.at(logs) {
		t.Errorf("after SIGTERM, want the read's access line after its audit line:\n%s", logs)
	}
}

// line is a log line a test looks for: the one naming a request id with
// a given message.
type line struct{ requestID, message string }

// at is the line's offset in logs, or -1.
func (l line) at(logs string) int {
	offset := 0
	for _, text := range strings.SplitAfter(logs, "\n") {
		if strings.Contains(text, "request_id="+l.requestID) && strings.Contains(text, l.message) {
			return offset
		}
		offset += len(text)
	}
	return -1
}

func (l line) in(logs string) bool { return l.at(logs) >= 0 }
