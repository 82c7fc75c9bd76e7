package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestRefusesToStart checks that arca-api exits with a message that says
// what is wrong and how to fix it, instead of serving with unsafe keys or a
// stale schema.
func TestRefusesToStart(t *testing.T) {
	bin := testenv.Binaries(t)
	good := "mk1 " + strings.Repeat("QUFB", 10) + "QUE=\n" // 32 bytes of 'A'
	short := "mk1 QUFBQUFBQUFBQUFBQUFBQQ==\n"              // 16 bytes
	tests := []struct {
		name      string
		keyFile   string // content; "" = absent
		mode      os.FileMode
		migrate   bool
		wantParts []string
	}{
		{name: "key file missing", migrate: true, wantParts: []string{"master key file does not exist", "arca-manage kek rotate"}},
		{name: "key file world readable", keyFile: good, mode: 0o644, migrate: true, wantParts: []string{"mode 0644", "chmod 600"}},
		{name: "key too short", keyFile: short, mode: 0o600, migrate: true, wantParts: []string{`"mk1" is 16 bytes`, "32 bytes"}},
		{name: "schema missing", keyFile: good, mode: 0o600, wantParts: []string{"arca-manage db upgrade"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPath := filepath.Join(dir, "master.key")
			if tt.keyFile != "" {
				if err := os.WriteFile(keyPath, []byte(tt.keyFile), tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(keyPath, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			conf := filepath.Join(dir, "arca.conf")
			content := fmt.Sprintf("[DEFAULT]\nauth_strategy = noauth\nbind_port = %d\n[database]\nconnection = sqlite:///%s/arca.sqlite\n[crypto]\nmaster_key_file = %s\n",
				testenv.FreePort(t), dir, keyPath)
			if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.migrate {
				if out, err := testenv.Manage(t, conf, "db", "upgrade"); err != nil {
					t.Fatalf("db upgrade: %v %s", err, out)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			stdout, stderr, err := testenv.RunOutputs(ctx, nil, filepath.Join(bin, "arca-api"), "--config-file", conf)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("arca-api started (err %v); stdout %s", err, stdout)
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(stderr, part) {
					t.Errorf("stderr %q does not say %q", stderr, part)
				}
			}
		})
	}
}

// TestQuotaAndConsumerOptionsReachServer writes [quotas] quota_* and
// [DEFAULT] block_delete_with_consumers into arca-api's configuration file
// and sees the running service apply them: GET /v1/quotas shows the
// configured defaults, the secret quota refuses the third secret, and a
// secret with a consumer is deleted without ?force=true (the default,
// true, would refuse it).
func TestQuotaAndConsumerOptionsReachServer(t *testing.T) {
	srv := testenv.StartAPI(t, testenv.APIOptions{Extra: `
[quotas]
quota_secrets = 2
quota_orders = 3
quota_containers = 0
quota_consumers = 5
quota_cas = 7

[DEFAULT]
block_delete_with_consumers = false
`})
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		return testenv.Do(t, method, srv.URL+path, body,
			map[string]string{"X-Project-Id": "quotaproject", "X-User-Id": "quotauser", "X-Roles": "admin,member,reader"})
	}

	code, body := call("GET", "/v1/quotas", "")
	var q struct {
		Quotas map[string]int `json:"quotas"`
	}
	if err := json.Unmarshal(body, &q); code != 200 || err != nil {
		t.Fatalf("GET /v1/quotas: %d %s %v", code, body, err)
	}
	if want := map[string]int{"secrets": 2, "orders": 3, "containers": 0, "consumers": 5, "cas": 7}; !maps.Equal(q.Quotas, want) {
		t.Errorf("quotas %v, want %v", q.Quotas, want)
	}
	var refs []string
	for i := range 3 {
		code, body := call("POST", "/v1/secrets", `{"name":"q","payload":"quota","payload_content_type":"text/plain"}`)
		if i < 2 {
			var c struct {
				SecretRef string `json:"secret_ref"`
			}
			if code != 201 || json.Unmarshal(body, &c) != nil {
				t.Fatalf("secret %d: %d %s", i+1, code, body)
			}
			refs = append(refs, c.SecretRef)
			continue
		}
		if code != 403 || !strings.Contains(strings.ToLower(string(body)), "quota") {
			t.Errorf("the secret over quota_secrets = 2: %d %s, want 403 naming the quota", code, body)
		}
	}
	if code, body := call("POST", "/v1/containers", `{"name":"c","type":"generic","secret_refs":[]}`); code != 403 {
		t.Errorf("a container with quota_containers = 0: %d %s, want 403", code, body)
	}

	id := refs[0][strings.LastIndex(refs[0], "/")+1:]
	if code, body := call("POST", "/v1/secrets/"+id+"/consumers", `{"service":"image","resource_type":"image","resource_id":"img-1"}`); code != 200 {
		t.Fatalf("consumer: %d %s", code, body)
	}
	if code, body := call("DELETE", "/v1/secrets/"+id, ""); code != 204 {
		t.Errorf("DELETE of a secret with a consumer, block_delete_with_consumers = false: %d %s, want 204", code, body)
	}
	if code, _ := call("GET", "/v1/secrets/"+id, ""); code != 404 {
		t.Errorf("the deleted secret: %d, want 404", code)
	}
}
