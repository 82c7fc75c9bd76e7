package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// storeSecret stores a text secret for project and returns its id.
func storeSecret(t *testing.T, base, project, payload string) (int, string) {
	t.Helper()
	code, body := testenv.Do(t, "POST", base+"/v1/secrets",
		`{"name":"hsm","payload":"`+payload+`","payload_content_type":"text/plain"}`, map[string]string{"X-Project-Id": project})
	var created struct {
		SecretRef string `json:"secret_ref"`
	}
	_ = json.Unmarshal(body, &created)
	return code, created.SecretRef[strings.LastIndex(created.SecretRef, "/")+1:]
}

func payload(t *testing.T, base, project, id string) (int, string) {
	t.Helper()
	code, body := testenv.Do(t, "GET", base+"/v1/secrets/"+id+"/payload", "", map[string]string{"X-Project-Id": project, "Accept": "text/plain"})
	return code, string(body)
}

// TestMasterKeyFileToSoftHSM is the migration an operator makes: secrets
// stored under a key file, then "kek rotate" in the token and "kek rewrap"
// with the file still configured, then the file removed: every secret
// still opens, with the master key only in the token. Then the token goes
// away while serving: projects whose KEK is cached keep working, key
// operations that need the token answer 503, nothing crashes, and the same
// process serves again when the token is back.
func TestMasterKeyFileToSoftHSM(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	before := testenv.StartAPI(t, testenv.APIOptions{})
	code, oldID := storeSecret(t, before.URL, "p-old", "stored-under-the-file")
	if code != http.StatusCreated {
		t.Fatalf("store under the key file: %d", code)
	}
	before.Stop(t)
	conf, err := os.ReadFile(before.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(t.TempDir(), "both.conf")
	if err := os.WriteFile(both, append(conf, "\n"+h.ConfigSection()...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"kek", "rotate"}, {"kek", "rewrap"}} {
		out, err := testenv.Manage(t, both, args...)
		if err != nil {
			t.Fatalf("arca-manage %v: %v\n%s", args, err, out)
		}
		t.Logf("arca-manage %v: %s", args, out)
		if args[1] == "rewrap" && !strings.Contains(out, "1 rewrapped") {
			t.Fatalf("rewrap moved nothing: %s", out)
		}
	}
	if err := os.Rename(before.KeyFile, before.KeyFile+".retired"); err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartAPI(t, testenv.APIOptions{
		DatabaseURL:   "sqlite:///" + filepath.Join(before.Dir, "arca.sqlite"),
		MasterKeyFile: filepath.Join(t.TempDir(), "no-such.key"),
		Extra:         h.ConfigSection(),
	})
	if code, got := payload(t, srv.URL, "p-old", oldID); code != 200 || got != "stored-under-the-file" {
		t.Fatalf("secret stored under the file, read with the token only: %d %q", code, got)
	}
	code, newID := storeSecret(t, srv.URL, "p-new", "stored-under-the-token")
	if code != http.StatusCreated {
		t.Fatalf("store under the token: %d", code)
	}

	replug := h.Unplug(t)
	if code, got := payload(t, srv.URL, "p-new", newID); code != 200 || got != "stored-under-the-token" {
		t.Fatalf("cached project with the token gone: %d %q", code, got)
	}
	for i := range 3 {
		if code, _ := storeSecret(t, srv.URL, "p-unseen", "x"); code != http.StatusServiceUnavailable {
			t.Fatalf("new project's KEK with the token gone (try %d): %d, want 503", i, code)
		}
		time.Sleep(1200 * time.Millisecond) // past the retry interval: reconnects fail too
	}
	replug()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, id := storeSecret(t, srv.URL, "p-unseen", "after")
		if code == http.StatusCreated {
			if c, got := payload(t, srv.URL, "p-unseen", id); c != 200 || got != "after" {
				t.Fatalf("after recovery: %d %q", c, got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 30s after the token came back: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, m := range traceMarkers[:2] {
		if strings.Contains(srv.Logs(), m) {
			t.Fatalf("logs show %q:\n%s", m, srv.Logs())
		}
	}
}

// TestMasterKeyTokenStartupRefusals: arca-api refuses to start, saying
// why, when the token is not there, the PIN is wrong, or the token holds no
// Arca master key.
func TestMasterKeyTokenStartupRefusals(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tests := []struct {
		name, section, want string
	}{
		{"token absent", strings.Replace(h.ConfigSection(), "token_label = "+h.TokenLabel, "token_label = unplugged", 1), `no PKCS#11 token labelled "unplugged"`},
		{"wrong PIN", strings.Replace(h.ConfigSection(), "pin = "+h.PIN, "pin = 0000", 1), "PIN"},
		{"no master key", h.ConfigSection(), "holds no Arca master key"},
	}
	bins := testenv.Binaries(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "arca.conf")
			text := "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = " + strconv.Itoa(testenv.FreePort(t)) + "\nauth_strategy = noauth\n\n[database]\nconnection = sqlite:///" +
				filepath.Join(dir, "arca.sqlite") + "\n\n[crypto]\n" + tt.section
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, filepath.Join(bins, "arca-api"), "--config-file", conf).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("arca-api started (or hung): %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("arca-api said %q, want %q", out, tt.want)
			}
			if strings.Contains(string(out), "0000") {
				t.Fatalf("the PIN is in the output: %s", out)
			}
		})
	}
}
