package api_test

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// TestMinimalAPIBaseline: make bench's baseline beside arca-api
// (keyservice/testdata/minimalapi) does on the real MariaDB what the
// load generator's secret-store and secret-get-payload scenarios ask, one
// statement per request, so that what it costs is an HTTP request, a JSON
// document and a SQL round trip: a stored payload reads back to its
// project, another project's read is a 404, a deleted secret is gone.
func TestMinimalAPIBaseline(t *testing.T) {
	_, dsn := testenv.RawMySQL(t)
	bin := filepath.Join(t.TempDir(), "minimalapi")
	if out, err := exec.Command("go", "build", "-o", bin, "../testdata/minimalapi").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	t.Setenv("MINIMALAPI_DSN", dsn) // the child inherits it
	p := testenv.StartProc(t, nil, bin, addr)
	p.WaitHealthy(t, "http://"+addr+"/healthcheck")
	base := "http://" + addr + "/v1/secrets"
	own := map[string]string{"X-Project-Id": "p1"}

	status, body := testenv.Do(t, http.MethodPost, base, `{"name":"loadgen","payload":"w0-1-xxx","payload_content_type":"text/plain"}`, own)
	var created struct {
		Ref string `json:"secret_ref"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &created) != nil || !strings.HasPrefix(created.Ref, base+"/") {
		t.Fatalf("store: %d %s; want 201 and a secret_ref under %s", status, body, base)
	}
	for _, tc := range []struct {
		name, project string
		wantStatus    int
		wantBody      string
	}{
		{"its project reads the payload", "p1", http.StatusOK, "w0-1-xxx"},
		{"another project does not", "p2", http.StatusNotFound, ""},
	} {
		status, body := testenv.Do(t, http.MethodGet, created.Ref+"/payload", "", map[string]string{"X-Project-Id": tc.project})
		if status != tc.wantStatus || (tc.wantBody != "" && string(body) != tc.wantBody) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, body, tc.wantStatus, tc.wantBody)
		}
	}
	if status, _ := testenv.Do(t, http.MethodDelete, created.Ref, "", own); status != http.StatusNoContent {
		t.Errorf("delete: %d, want 204", status)
	}
	if status, _ := testenv.Do(t, http.MethodGet, created.Ref+"/payload", "", own); status != http.StatusNotFound {
		t.Errorf("payload after delete: %d, want 404", status)
	}
}
