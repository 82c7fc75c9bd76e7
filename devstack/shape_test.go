package devstack_test

import (
	"bytes"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/pickle"
)

// swiftVenv makes binDir's folder a venv of the system's python with its
// site packages (as DevStack's global venv, Swift in it), binDir holding a
// swift-proxy-server run by the venv's python, and returns that python.
func swiftVenv(t *testing.T, binDir string) string {
	t.Helper()
	venv := filepath.Dir(binDir)
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv %s: %v\n%s", venv, err, out)
	}
	python := filepath.Join(binDir, "python3")
	proxy := readFile(t, "/usr/bin/swift-proxy-server")
	first, rest, _ := strings.Cut(proxy, "\n")
	if !strings.HasPrefix(first, "#!") {
		t.Fatalf("/usr/bin/swift-proxy-server starts with %q, not #!", first)
	}
	writeExec(t, filepath.Join(binDir, "swift-proxy-server"), "#!"+python+"\n"+rest)
	return python
}

// sitePackages is python's purelib folder, where a .pth is read.
func sitePackages(t *testing.T, python string) string {
	t.Helper()
	out, err := exec.Command(python, "-c", `import sysconfig; print(sysconfig.get_paths()["purelib"])`).Output()
	if err != nil {
		t.Fatalf("%s: purelib: %v", python, err)
	}
	return strings.TrimSpace(string(out))
}

// checkPipelineConf checks proxy-server.conf of the pipeline shape: arca
// once, just before the last proxy-logging and right of every middleware
// that builds subrequests (docs/pipeline.md), its filter section asking
// sock, and the proxy still on the public port.
func checkPipelineConf(t *testing.T, conf string, publicPort int, sock string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^pipeline = (.*)$`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("proxy-server.conf has no pipeline:\n%s", conf)
	}
	words := strings.Fields(m[1])
	last := slices.Index(words, "proxy-logging")
	for i, w := range words {
		if w == "proxy-logging" {
			last = i
		}
	}
	arca := slices.Index(words, "arca")
	if arca < 0 || arca != last-1 || strings.Count(" "+m[1]+" ", " arca ") != 1 {
		t.Errorf("pipeline %q: want arca once, just before the last proxy-logging", m[1])
	}
	for _, mw := range []string{"authtoken", "keystoneauth", "copy", "slo", "dlo", "versioned_writes", "symlink"} {
		if i := slices.Index(words, mw); i >= 0 && i > arca {
			t.Errorf("pipeline %q: %s right of arca", m[1], mw)
		}
	}
	for _, want := range []string{
		"[filter:arca]\npaste.filter_factory = arca_swift.middleware:filter_factory\nsocket = " + sock + "\n",
		"bind_port = " + strconv.Itoa(publicPort) + "\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("proxy-server.conf lacks %q:\n%s", want, conf)
		}
	}
}

// checkDecisionSocket: the socket is 0660 and the proxy user's group's, in
// a folder only that group (and its owner) can traverse.
func checkDecisionSocket(t *testing.T, sock string, gid int) {
	t.Helper()
	for path, mode := range map[string]os.FileMode{sock: os.ModeSocket | 0o660, filepath.Dir(sock): os.ModeDir | 0o750} {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("decision socket: %v", err)
			continue
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if st.Mode() != mode || !ok || int(sys.Gid) != gid {
			t.Errorf("%s: mode %v, owner %v; want %v and gid %d (the Swift proxy's user's group)", path, st.Mode(), st.Sys(), mode, gid)
		}
	}
}

// activeKey is the project's active key id, read by a member of it.
func activeKey(t *testing.T, apiPort int, token, project string) string {
	t.Helper()
	code, _, body := swiftDo(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/v1/project-keys/active?project_id=%s", apiPort, project), token, nil, nil)
	var active struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(body, &active); code != 200 || err != nil || active.KeyID == "" {
		t.Fatalf("active key of %s: %d %v %s", project, code, err, body)
	}
	return active.KeyID
}

// diskKeyID is the key id in the Swift metadata of a .data file (pickled in
// user.swift.metadata, metadata1, ...).
func diskKeyID(t *testing.T, path string) string {
	t.Helper()
	all := testenv.SwiftMetadataPickle(t, path)
	m, err := pickle.StringMap(all)
	if err != nil {
		t.Fatalf("%s: metadata: %v", path, err)
	}
	return m["X-Object-Sysmeta-Arca-Key-Id"]
}

// putEncrypted PUTs an object at storage, checks each new replica under
// devices is encrypted (no plaintext) under wantKey and the object reads
// back whole, and deletes it.
func putEncrypted(t *testing.T, storage, token, wantKey string, devices ...string) {
	t.Helper()
	tag := testenv.RandomHex(t, 4)
	cont, plain := "dstest-enc-"+tag, bytes.Repeat([]byte("shape plaintext "+tag+" "), 300)
	before := map[string]bool{}
	for _, root := range devices {
		for _, f := range dataFiles(t, root) {
			before[f] = true
		}
	}
	if code := swiftReq(t, "PUT", storage+"/"+cont, token, nil); code != 201 && code != 202 {
		t.Fatalf("PUT container: %d", code)
	}
	defer func() {
		swiftReq(t, "DELETE", storage+"/"+cont+"/o", token, nil)
		swiftReq(t, "DELETE", storage+"/"+cont, token, nil)
	}()
	if code := swiftReq(t, "PUT", storage+"/"+cont+"/o", token, plain); code != 201 {
		t.Fatalf("PUT object: %d", code)
	}
	if code, _, got := swiftDo(t, "GET", storage+"/"+cont+"/o", token, nil, nil); code != 200 || !bytes.Equal(got, plain) {
		t.Fatalf("GET object: %d, %d bytes (want %d)", code, len(got), len(plain))
	}
	for _, root := range devices {
		var fresh []string
		for _, f := range dataFiles(t, root) {
			if !before[f] {
				fresh = append(fresh, f)
			}
		}
		if len(fresh) != 1 {
			t.Errorf("new .data files under %s: %q, want one replica", root, fresh)
		}
		for _, f := range fresh {
			if bytes.Contains([]byte(readFile(t, f)), []byte("plaintext "+tag)) {
				t.Errorf("plaintext on disk in %s", f)
			}
			if id := diskKeyID(t, f); id != wantKey {
				t.Errorf("%s: key id %q, want the project's active key %s", f, id, wantKey)
			}
		}
	}
}

// proxyShape is what the reverse-proxy run needs of the pipeline run's stack.
type proxyShape struct {
	origProxyConf           string
	publicPort, proxyPort   int
	apiPort, stackUID       int
	swiftEnv                []string
	token, storage, project string
	devices                 []string
}

// runProxyShape runs, after the pipeline shape's unstack, the same stack
// in the reverse-proxy shape (ARCA_SWIFT_SHAPE=proxy): lib/swift's
// proxy-server.conf again, arca-api and the object servers started, the
// filter configured and started in front of the proxy; then an object
// through the filter, encrypted on disk under the project's key; then
// unstack stops the filter.
func (p *plugin) runProxyShape(t *testing.T, s proxyShape) {
	t.Helper()
	sw := p.vars["SWIFT_CONF_DIR"]
	conf := filepath.Join(sw, "proxy-server.conf")
	p.standin("stop_process s-proxy")
	if err := os.WriteFile(conf, []byte(s.origProxyConf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(conf, s.stackUID, -1); err != nil {
		t.Fatal(err)
	}
	p.set("ARCA_SWIFT_SHAPE", "proxy")
	p.standin(fmt.Sprintf(`export %[3]q %[4]q
source "$ARCA_DIR/devstack/settings"
source "$ARCA_DIR/devstack/plugin.sh"
start_arca_api
start_arca_object
configure_arca_swift_filter
start_arca_swift_filter
run_process s-proxy "$SWIFT_BIN_DIR/swift-proxy-server %[1]s/proxy-server.conf -v"
wait_for_service 60 http://127.0.0.1:%[2]d/info || { cat "$LOGDIR/s-proxy.log"; exit 1; }`, sw, s.publicPort, s.swiftEnv[0], s.swiftEnv[1]))
	if pc := readFile(t, conf); !strings.Contains(pc, "bind_port = "+strconv.Itoa(s.proxyPort)+"\n") {
		t.Errorf("proxy-server.conf not moved to the internal port %d:\n%s", s.proxyPort, pc)
	}
	filter := readFile(t, filepath.Join(p.vars["ARCA_CONF_DIR"], "swift-filter.conf"))
	for _, want := range []string{
		"bind_port = " + strconv.Itoa(s.publicPort) + "\n",
		fmt.Sprintf("url = http://127.0.0.1:%d\n", s.proxyPort),
		"[pipeline]\nsocket = \n",
	} {
		if !strings.Contains(filter, want) {
			t.Errorf("swift-filter.conf lacks %q:\n%s", want, filter)
		}
	}
	if code := httpStatus(fmt.Sprintf("http://[::1]:%d/healthcheck", s.publicPort)); code != http.StatusOK {
		t.Errorf("arca-swift-filter on the public port: /healthcheck %d", code)
	}
	putEncrypted(t, s.storage, s.token, activeKey(t, s.apiPort, s.token, s.project), s.devices...)
	p.phase("unstack")
	if code := httpStatus(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", s.publicPort)); code != 0 {
		t.Errorf("arca-swift-filter still answers after unstack: %d", code)
	}
	if _, err := os.Stat(filepath.Join(p.vars["SERVICE_DIR"], "arca-swift-filter.pid")); err == nil {
		t.Error("unstack left arca-swift-filter.pid")
	}
}

// ecArchive is the name of a durable fragment archive (index 0 to 5).
var ecArchive = regexp.MustCompile(`^\d{10}\.\d{5}#([0-5])#d\.data$`)

// checkECObject PUTs an object of several EC segments into a container of
// the erasure-coded storage policy (name, index idx: 4+2, 8 KiB segments)
// at storage, reads it whole, by a range across segments and by HEAD,
// checks that it left six durable fragment archives, indexes 0 to 5, on
// six distinct devices under the node roots given, in objects-idx, none
// holding plaintext and each under wantKey; then deletes it.
func checkECObject(t *testing.T, storage, token, wantKey, policy string, idx int, roots ...string) {
	t.Helper()
	tag := testenv.RandomHex(t, 4)
	cont := "dstest-ec-" + tag
	// Systematic Reed-Solomon: unencrypted, the data fragments would hold
	// this text in 2 KiB runs.
	plain := bytes.Repeat([]byte("ec plaintext "+tag+" "), 1500)
	before := map[string]bool{}
	for _, root := range roots {
		for _, f := range dataFiles(t, root) {
			before[f] = true
		}
	}
	if code, _, _ := swiftDo(t, "PUT", storage+"/"+cont, token, map[string]string{"X-Storage-Policy": policy}, nil); code != 201 && code != 202 {
		t.Fatalf("PUT container with X-Storage-Policy %s: %d", policy, code)
	}
	defer func() {
		swiftReq(t, "DELETE", storage+"/"+cont+"/o", token, nil)
		swiftReq(t, "DELETE", storage+"/"+cont, token, nil)
	}()
	if _, hdr, _ := swiftDo(t, "HEAD", storage+"/"+cont, token, nil, nil); hdr.Get("X-Storage-Policy") != policy {
		t.Fatalf("container's X-Storage-Policy %q, want %s", hdr.Get("X-Storage-Policy"), policy)
	}
	sum := fmt.Sprintf("%x", md5.Sum(plain))
	if code, hdr, _ := swiftDo(t, "PUT", storage+"/"+cont+"/o", token, nil, plain); code != 201 || hdr.Get("Etag") != sum {
		t.Fatalf("PUT object in the %s container: %d, ETag %q (want %s)", policy, code, hdr.Get("Etag"), sum)
	}
	if code, hdr, got := swiftDo(t, "GET", storage+"/"+cont+"/o", token, nil, nil); code != 200 || !bytes.Equal(got, plain) || hdr.Get("Etag") != sum {
		t.Fatalf("GET: %d, %d bytes (want %d), ETag %q", code, len(got), len(plain), hdr.Get("Etag"))
	}
	if code, _, got := swiftDo(t, "GET", storage+"/"+cont+"/o", token, map[string]string{"Range": "bytes=8000-20000"}, nil); code != 206 || !bytes.Equal(got, plain[8000:20001]) {
		t.Errorf("GET bytes=8000-20000: %d, %d bytes (want 12001, equal)", code, len(got))
	}
	if code, hdr, _ := swiftDo(t, "HEAD", storage+"/"+cont+"/o", token, nil, nil); code != 200 || hdr.Get("Content-Length") != strconv.Itoa(len(plain)) {
		t.Errorf("HEAD: %d, Content-Length %q (want %d)", code, hdr.Get("Content-Length"), len(plain))
	}
	indexes, devices := map[string]string{}, map[string]bool{}
	for _, root := range roots {
		for _, f := range dataFiles(t, root) {
			if before[f] {
				continue
			}
			rel, _ := filepath.Rel(root, f)
			parts := strings.Split(rel, string(filepath.Separator))
			m := ecArchive.FindStringSubmatch(filepath.Base(f))
			if m == nil || len(parts) < 2 || parts[1] != fmt.Sprintf("objects-%d", idx) {
				t.Errorf("new file %s: want a durable fragment archive in objects-%d", f, idx)
				continue
			}
			if prev, ok := indexes[m[1]]; ok {
				t.Errorf("fragment index %s twice: %s and %s", m[1], prev, f)
			}
			indexes[m[1]] = f
			devices[filepath.Join(root, parts[0])] = true
			if bytes.Contains([]byte(readFile(t, f)), []byte("plaintext "+tag)) {
				t.Errorf("plaintext on disk in %s", f)
			}
			if id := diskKeyID(t, f); id != wantKey {
				t.Errorf("%s: key id %q, want the project's active key %s", f, id, wantKey)
			}
		}
	}
	if len(indexes) != 6 || len(devices) != 6 {
		t.Errorf("fragment archives %v on devices %v: want indexes 0 to 5 on six devices", indexes, devices)
	}
}
