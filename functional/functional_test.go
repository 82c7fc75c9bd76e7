package functional_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// cacheWait outlasts the 1 s key caches of the filter and object servers.
const cacheWait = 1500 * time.Millisecond

// TestFunctionalEndToEnd is issue 8's whole flow, scenarios 1 to 6, in
// order: each builds on the objects and keys of the ones before. It runs
// through both shapes: arca-swift-filter in front of the Swift proxy, and
// the arca middleware in the proxy's pipeline.
func TestFunctionalEndToEnd(t *testing.T) {
	for _, shape := range []string{shapeProxy, shapePipeline} {
		t.Run(shape, func(t *testing.T) { functionalEndToEnd(t, shape) })
	}
}

func functionalEndToEnd(t *testing.T, shape string) {
	e := newEnvWith(t, envOptions{shape: shape})
	demo, alt := e.users[testenv.UserDemo], e.users[testenv.UserAlt]
	demoEnv := e.ks.OpenRC(testenv.UserDemo, e.region)
	acct := "AUTH_" + demo.project
	cont := "func-" + e.tag
	marker := []byte("ARCA-FUNCTIONAL-PLAINTEXT-" + e.tag)
	t.Cleanup(func() {
		// Objects whose key is destroyed still delete (no key needed).
		if out, err := e.swift(demo, e.work, "delete", cont); err != nil {
			t.Logf("cleanup: %v %s", err, out)
		}
	})

	// --- 1. arca-manage register; openstack catalog list shows key-manager.
	t.Logf("arca-manage register:\n%s", e.registered)
	cat, err := testenv.Run(demoEnv, "", "openstack", "catalog", "list", "-f", "value")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cat, "key-manager") || !strings.Contains(cat, e.region) || !strings.Contains(cat, e.apiURL) {
		t.Fatalf("1: openstack catalog list lacks key-manager %s in %s:\n%s", e.apiURL, e.region, cat)
	}

	// --- 2. As demo: a secret through the catalog; a directory through the
	// filter; no plaintext on the devices; identical downloads.
	ref, err := testenv.Run(demoEnv, "", "openstack", "secret", "store", "--name", "func-"+e.tag, "--payload", "s3cret-"+e.tag, "-f", "value", "-c", "Secret href")
	if err != nil {
		t.Fatal(err)
	}
	ref = strings.TrimSpace(ref)
	payload, err := testenv.Run(demoEnv, "", "openstack", "secret", "get", "--payload", ref, "-f", "value", "-c", "Payload")
	if err != nil || strings.TrimSpace(payload) != "s3cret-"+e.tag {
		t.Fatalf("2: openstack secret get --payload: %q %v", payload, err)
	}
	up := filepath.Join(e.work, "up")
	files := map[string][]byte{}
	for name, size := range map[string]int{"dir/small.txt": 100, "dir/empty.txt": 0, "dir/medium.bin": 200 << 10, "dir/sub/large.bin": 3<<20 + 17} {
		b := make([]byte, size)
		for i := 0; i+len(marker) <= size; i += 4096 {
			copy(b[i:], marker)
		}
		if size > len(marker) {
			_, _ = rand.Read(b[len(marker) : len(marker)+8])
		}
		files[name] = b
		p := filepath.Join(up, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := e.swift(demo, up, "upload", cont, "dir"); err != nil {
		t.Fatalf("2: swift upload: %v", err)
	} else {
		t.Logf("swift upload:\n%s", out)
	}
	if hits := e.grepDevices(marker); len(hits) > 0 {
		t.Errorf("2: plaintext on the object devices: %v", hits)
	}
	e.checkDownload(demo, cont, files, "2")
	oldKey := ""
	for name := range files {
		ids := e.keyIDs(acct, cont, name)
		if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
			t.Fatalf("2: %s: key ids on the 2 replicas %q", name, ids)
		}
		if oldKey == "" {
			oldKey = ids[0]
		} else if ids[0] != oldKey {
			t.Errorf("2: %s has key %s, others %s", name, ids[0], oldKey)
		}
	}
	if active := e.activeKey(demo); active != oldKey {
		t.Errorf("2: objects carry key %s, demo's active key is %s", oldKey, active)
	}

	// --- 3. Rotation: new uploads use the new key; old objects read.
	out, err := e.manage("project-key", "rotate", "--project", demo.project)
	if err != nil {
		t.Fatalf("3: %v", err)
	}
	m := regexp.MustCompile(`new active key (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("3: arca-manage project-key rotate said %q", out)
	}
	newKey := m[1]
	if newKey == oldKey {
		t.Fatalf("3: rotation kept key %s", oldKey)
	}
	time.Sleep(cacheWait)
	after := bytes.Repeat([]byte("after rotation "+string(marker)+"\n"), 100)
	if err := os.WriteFile(filepath.Join(up, "after.txt"), after, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.swift(demo, up, "upload", cont, "after.txt"); err != nil {
		t.Fatalf("3: %v", err)
	}
	if ids := e.keyIDs(acct, cont, "after.txt"); len(ids) != 2 || ids[0] != newKey || ids[1] != newKey {
		t.Errorf("3: after.txt written after rotation carries keys %q, want %s", ids, newKey)
	}
	e.checkDownload(demo, cont, files, "3")

	// --- 4. arca-api restarted under upload load: nothing corrupted,
	// failures only 503 (retried).
	written := e.uploadLoad(demo, cont)

	// --- 5. The old key destroyed: its objects answer 410 Gone (objectserver
	// docs), never data; the others read.
	if out, err := e.manage("project-key", "destroy", "--project", demo.project, "--key", oldKey); err != nil {
		t.Fatalf("5: %v", err)
	} else {
		t.Logf("arca-manage project-key destroy: %s", strings.TrimSpace(out))
	}
	time.Sleep(cacheWait)
	for name, want := range files {
		code, body := do(t, "GET", e.storage(demo.project)+"/"+cont+"/"+name, demo.token, nil, nil)
		if len(want) > 0 && bytes.Contains(body, want[:min(len(want), 64)]) {
			t.Errorf("5: %s (destroyed key) answered its plaintext", name)
		}
		if code != 410 {
			t.Errorf("5: GET %s (destroyed key): %d %.200s, want 410", name, code, body)
		}
	}
	if code, body := do(t, "GET", e.storage(demo.project)+"/"+cont+"/after.txt", demo.token, nil, nil); code != 200 || !bytes.Equal(body, after) {
		t.Errorf("5: after.txt (new key): %d, %d bytes", code, len(body))
	}
	for name, want := range written {
		if code, body := do(t, "GET", e.storage(demo.project)+"/"+cont+"/"+name, demo.token, nil, nil); code != 200 || !bytes.Equal(body, want) {
			t.Errorf("5: %s (written under load, new key): %d, %d bytes", name, code, len(body))
		}
	}

	// --- 6. alt reads neither demo's objects nor keys; through a container
	// ACL alt writes into demo's container, encrypted with demo's key.
	if code, _ := do(t, "GET", e.storage(demo.project)+"/"+cont+"/after.txt", alt.token, nil, nil); code != 403 {
		t.Errorf("6: alt GET demo's object: %d, want 403", code)
	}
	if _, err := testenv.Run(e.ks.OpenRC(testenv.UserAlt, e.region), "", "openstack", "secret", "get", "--payload", ref); err == nil {
		t.Errorf("6: alt read demo's secret %s", ref)
	}
	if code, body := do(t, "GET", e.apiURL+"/v1/project-keys/active?project_id="+demo.project, alt.token, nil, nil); code != 403 {
		t.Errorf("6: alt asked for demo's active key: %d %.200s, want 403", code, body)
	}
	// Service role only; 404 as well as 403 reveals nothing (docs/project-keys.md).
	if code, body := do(t, "GET", fmt.Sprintf("%s/v1/project-keys/%s/payload?project_id=%s", e.apiURL, newKey, demo.project), alt.token, nil, nil); code != 403 && code != 404 {
		t.Errorf("6: alt asked for demo's key material: %d %.200s, want 403 or 404", code, body)
	}
	if code, body := do(t, "POST", e.storage(demo.project)+"/"+cont, demo.token, nil, map[string]string{"X-Container-Write": alt.project + ":*"}); code != 204 {
		t.Fatalf("6: container ACL: %d %s", code, body)
	}
	altBody := []byte("written by alt into demo's container " + string(marker))
	if code, body := do(t, "PUT", e.storage(demo.project)+"/"+cont+"/from-alt.txt", alt.token, altBody, nil); code != 201 {
		t.Fatalf("6: alt PUT through the ACL: %d %s", code, body)
	}
	altKey := e.activeKey(alt)
	if ids := e.keyIDs(acct, cont, "from-alt.txt"); len(ids) != 2 || ids[0] != newKey || ids[1] != newKey {
		t.Errorf("6: alt's object in demo's container carries keys %q, want demo's %s (alt's is %s)", ids, newKey, altKey)
	}
	if code, body := do(t, "GET", e.storage(demo.project)+"/"+cont+"/from-alt.txt", demo.token, nil, nil); code != 200 || !bytes.Equal(body, altBody) {
		t.Errorf("6: demo reading alt's object: %d %q", code, body)
	}
	if hits := e.grepDevices(marker); len(hits) > 0 {
		t.Errorf("plaintext on the object devices at the end: %v", hits)
	}
}

// checkDownload downloads the container with the swift CLI and compares
// every file with what was uploaded.
func (e *env) checkDownload(u *user, cont string, files map[string][]byte, step string) {
	t := e.t
	t.Helper()
	dir, err := os.MkdirTemp(e.work, "down-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.swift(u, dir, "download", cont, "--prefix", "dir/"); err != nil {
		t.Fatalf("%s: swift download: %v %s", step, err, out)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %s not downloaded: %v", step, name, err)
			continue
		}
		if md5hex(got) != md5hex(want) {
			t.Errorf("%s: %s: md5 %s, uploaded %s", step, name, md5hex(got), md5hex(want))
		}
	}
}

// uploadLoad keeps four writers busy through the filter while arca-api is
// stopped (SIGTERM) and started again. A write may fail only with 503, and
// is then retried; every object acknowledged must read back intact.
func (e *env) uploadLoad(u *user, cont string) map[string][]byte {
	t := e.t
	var (
		mu         sync.Mutex
		written    = map[string][]byte{}
		unexpected []string
		n503       atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("load/%d-%04d", w, i)
				body := make([]byte, 32<<10+i)
				_, _ = rand.Read(body)
				for attempt := 0; ; attempt++ {
					code, resp := do(t, "PUT", e.storage(u.project)+"/"+cont+"/"+name, u.token, body, nil)
					if code == 201 {
						mu.Lock()
						written[name] = body
						mu.Unlock()
						break
					}
					if code != 503 {
						mu.Lock()
						unexpected = append(unexpected, fmt.Sprintf("%s: %d %.200s", name, code, resp))
						mu.Unlock()
						break
					}
					n503.Add(1)
					if attempt > 120 {
						mu.Lock()
						unexpected = append(unexpected, name+": still 503 after 120 retries")
						mu.Unlock()
						break
					}
					time.Sleep(250 * time.Millisecond)
				}
			}
		}(w)
	}
	time.Sleep(2 * time.Second)
	e.api.Stop()
	time.Sleep(3 * time.Second) // past every cache TTL: writes need arca-api now
	e.startAPI()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("4: %d objects written under load, %d answers 503 while arca-api restarted", len(written), n503.Load())
	for _, s := range unexpected {
		t.Errorf("4: %s", s)
	}
	if len(written) == 0 {
		t.Fatalf("4: no write succeeded")
	}
	for name, want := range written {
		code, body := do(t, "GET", e.storage(u.project)+"/"+cont+"/"+name, u.token, nil, nil)
		if code != 200 || !bytes.Equal(body, want) {
			t.Errorf("4: %s: %d, %d bytes (want %d, md5 %s vs %s)", name, code, len(body), len(want), md5hex(body), md5hex(want))
		}
	}
	return written
}
