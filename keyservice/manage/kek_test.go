package manage_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/manage"

	_ "modernc.org/sqlite"
)

// TestKEKRotateAndRewrap rotates the master key and rewraps every project
// KEK while arca-api keeps serving, runs the rewrap twice, then drops the old
// master key from the file: every secret must still read.
func TestKEKRotateAndRewrap(t *testing.T) {
	srv := testenv.StartAPI(t, testenv.APIOptions{})
	request := func(method, project, path, body string) (int, string) {
		t.Helper()
		code, b := testenv.Do(t, method, srv.URL+path, body, map[string]string{"X-Project-Id": project})
		return code, string(b)
	}
	store := func(project, payload string) string {
		t.Helper()
		status, body := request("POST", project, "/v1/secrets", fmt.Sprintf(`{"payload":%q,"payload_content_type":"text/plain"}`, payload))
		if status != http.StatusCreated {
			t.Fatalf("store: %d %s", status, body)
		}
		return body[strings.LastIndex(body, "/")+1 : strings.LastIndex(body, `"`)]
	}
	readAll := func(secrets map[string][2]string) {
		t.Helper()
		for id, pv := range secrets {
			status, body := request("GET", pv[0], "/v1/secrets/"+id+"/payload", "")
			if status != http.StatusOK || body != pv[1] {
				t.Fatalf("secret %s of %s: %d %q, want %q", id, pv[0], status, body, pv[1])
			}
		}
	}
	secrets := map[string][2]string{}
	for i := 0; i < 6; i++ {
		project, payload := fmt.Sprintf("p%d", i), fmt.Sprintf("payload-%d", i)
		secrets[store(project, payload)] = [2]string{project, payload}
	}
	oldRing, err := envelope.LoadKeyringFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	oldID := oldRing.ActiveID()

	out, err := srv.Manage(t, "kek", "rotate")
	if err != nil {
		t.Fatalf("kek rotate: %v %s", err, out)
	}
	newRing, err := envelope.LoadKeyringFile(srv.KeyFile)
	if err != nil || newRing.ActiveID() == oldID {
		t.Fatalf("rotation did not add an active key: %v", err)
	}
	if fi, _ := os.Stat(srv.KeyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v after rotation", fi.Mode().Perm())
	}
	out, err = srv.Manage(t, "kek", "rewrap")
	if err != nil || !strings.Contains(out, "6 scanned, 6 rewrapped") {
		t.Fatalf("first rewrap: %v %s", err, out)
	}
	out, err = srv.Manage(t, "kek", "rewrap")
	if err != nil || !strings.Contains(out, "6 scanned, 0 rewrapped") || !strings.Contains(out, "6 already current") {
		t.Fatalf("second rewrap: %v %s", err, out)
	}
	// The running server still serves, and a new project gets a KEK under
	// the new master key once the server has re-read the key file.
	readAll(secrets)
	time.Sleep(10 * time.Second) // keyservice.KeyringReloadInterval
	secrets[store("fresh", "new-project")] = [2]string{"fresh", "new-project"}
	db, err := sql.Open("sqlite", filepath.Join(srv.Dir, "arca.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stale int
	if err := db.QueryRow("SELECT COUNT(*) FROM project_keks WHERE master_key_id <> ?", newRing.ActiveID()).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Fatalf("%d project KEKs still sealed by an old master key", stale)
	}

	// Drop the old master key: a fresh arca-api on the same database reads
	// everything with the new key alone.
	content, _ := os.ReadFile(srv.KeyFile)
	var kept []string
	for _, line := range strings.Split(string(content), "\n") {
		if !strings.HasPrefix(line, oldID+" ") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(srv.KeyFile, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	second := testenv.StartAPI(t, testenv.APIOptions{
		DatabaseURL: "sqlite:///" + filepath.Join(srv.Dir, "arca.sqlite"), MasterKeyFile: srv.KeyFile,
	})
	srv = second // request() now talks to the fresh server
	readAll(secrets)
}

func TestRotateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "master.key")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	first, err := manage.RotateMasterKeyFile(path, bytes.NewReader(bytes.Repeat([]byte{1}, 64)), now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := manage.RotateMasterKeyFile(path, bytes.NewReader(bytes.Repeat([]byte{2}, 64)), now)
	if err != nil || second == first {
		t.Fatalf("second rotation in the same second: %q %q %v", first, second, err)
	}
	ring, err := envelope.LoadKeyringFile(path)
	if err != nil || ring.ActiveID() != second || !ring.Has(first) {
		t.Fatalf("keyring after two rotations: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := manage.RotateMasterKeyFile(path, bytes.NewReader(make([]byte, 64)), now); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("rotation of an unsafe key file: %v", err)
	}
}

// TestConcurrentRotationsKeepEveryKey: rotations run at once (two
// operators, a cron job and a hand) each add their key. Without a lock,
// two that read the file before either wrote it each wrote the old keys
// and their own, and the second rename dropped the first's key, with
// whatever KEKs arca-api had sealed under it meanwhile.
func TestConcurrentRotationsKeepEveryKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const workers, each = 4, 10
	const n = workers * each
	ids := make(chan string, n)
	errs := make(chan error, n)
	for w := range workers {
		go func() {
			for i := range each {
				id, err := manage.RotateMasterKeyFile(path, bytes.NewReader(bytes.Repeat([]byte{byte(w*each + i + 1)}, 64)), time.Now())
				ids <- id
				errs <- err
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ring, err := envelope.LoadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range n {
		id := <-ids
		if seen[id] || !ring.Has(id) {
			t.Errorf("master key %s was lost (or given twice)", id)
		}
		seen[id] = true
	}
	if got := len(ring.IDs()); got != n {
		t.Errorf("%d master keys in the file after %d rotations", got, n)
	}
}

// TestKEKRotateRefusedWithEnvironmentKeys: with ARCA_MASTER_KEYS set,
// arca-api takes its keys from the variable, never from the file: a key
// kek rotate added to the file would never be loaded, and a rewrap run
// without the variable would move every KEK onto it. kek rotate refuses,
// says what to do instead, and writes no file; with --master-key-file it
// writes the new key where it was asked to.
func TestKEKRotateRefusedWithEnvironmentKeys(t *testing.T) {
	dbPath, run := sqliteManage(t)
	keyFile := filepath.Join(filepath.Dir(dbPath), "master.key")
	t.Setenv("ARCA_MASTER_KEYS", strings.TrimSpace(envelope.FormatKey(envelope.MasterKey{ID: "mk-env", Key: bytes.Repeat([]byte{9}, envelope.KeySize)})))
	out, err := run("kek", "rotate")
	if err == nil || !strings.Contains(out, "ARCA_MASTER_KEYS") || !strings.Contains(out, "--master-key-file") {
		t.Fatalf("kek rotate with ARCA_MASTER_KEYS set: %v %s", err, out)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatalf("the refused rotation wrote %s: %v", keyFile, err)
	}
	own := filepath.Join(t.TempDir(), "new.key")
	if out, err := run("kek", "rotate", "--master-key-file", own); err != nil {
		t.Fatalf("kek rotate --master-key-file: %v %s", err, out)
	}
	if _, err := envelope.LoadKeyringFile(own); err != nil {
		t.Fatal(err)
	}
}
