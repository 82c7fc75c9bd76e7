package objectserver_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/diskfile"
)

// crashProject is the project whose key encrypts the objects of these tests.
const crashProject = "0123456789abcdef0123456789abcdef"

// objNode is one real arca-object-server process on one device, keys from
// a real arca-api (noauth), restartable on the same devices.
type objNode struct {
	t       *testing.T
	devices string
	device  string
	conf    string
	url     string
	cmd     *exec.Cmd
	out     *bytes.Buffer
	exited  chan struct{}
}

func newObjNode(t *testing.T, devices string) *objNode {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs arca-api and arca-object-server")
	}
	api := testenv.StartAPI(t, testenv.APIOptions{})
	work := t.TempDir()
	n := &objNode{t: t, devices: devices, device: "sda", conf: filepath.Join(work, "object-server.conf")}
	if err := os.MkdirAll(filepath.Join(devices, n.device), 0o755); err != nil {
		t.Fatal(err)
	}
	swiftConf := filepath.Join(work, "swift.conf")
	if err := os.WriteFile(swiftConf, []byte("[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\n[storage-policy:0]\nname = gold\ndefault = yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	n.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	conf := fmt.Sprintf(`[DEFAULT]
devices = %s
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
swift_dir = %s
swift_conf = %s
[app:object-server]
[arca]
key_service_url = %s
key_service_noauth = true
`, devices, port, work, swiftConf, api.URL)
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.kill(syscall.SIGTERM)
		if t.Failed() && n.out != nil {
			t.Logf("--- arca-object-server output ---\n%s", testenv.Tail(n.out.String(), 4000))
		}
	})
	n.start()
	return n
}

// start runs the server and waits until it answers.
func (n *objNode) start() {
	t := n.t
	t.Helper()
	n.cmd = exec.Command(filepath.Join(testenv.Binaries(t), "arca-object-server"), n.conf, "-v")
	n.out = &bytes.Buffer{}
	w := &lockedBuf{b: n.out}
	n.cmd.Stdout, n.cmd.Stderr = w, w
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(n.cmd, n.exited)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			t.Fatalf("arca-object-server exited:\n%s", w.String())
		default:
		}
		if resp, err := http.Get(n.url + "/healthcheck"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("arca-object-server never answered:\n%s", w.String())
}

// kill signals the process group and waits for the exit (SIGKILL after 10s).
func (n *objNode) kill(sig syscall.Signal) {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, sig)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
}

type lockedBuf struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (n *objNode) objURL(name string) string {
	return fmt.Sprintf("%s/%s/1/AUTH_%s/c/%s", n.url, n.device, crashProject, name)
}

// slowReader hands out its bytes in chunks with pauses, so that many
// uploads are in the middle of their bodies at any moment.
type slowReader struct {
	b     []byte
	chunk int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if r.pause > 0 {
		time.Sleep(r.pause)
	}
	k := min(len(p), r.chunk, len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

func (n *objNode) put(client *http.Client, name string, body []byte, pause time.Duration) (int, error) {
	req, err := http.NewRequest(http.MethodPut, n.objURL(name), &slowReader{b: body, chunk: 16 << 10, pause: pause})
	if err != nil {
		return 0, err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Timestamp", diskfile.FromTime(time.Now()).Internal())
	req.Header.Set("Content-Type", "application/octet-stream")
	sum := md5.Sum(body)
	req.Header.Set("Etag", hex.EncodeToString(sum[:]))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// get returns the status and, for 200, the body.
func (n *objNode) get(name string) (int, []byte) {
	n.t.Helper()
	resp, err := http.Get(n.objURL(name))
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatalf("GET %s: %v", name, err)
	}
	return resp.StatusCode, b
}

// tmpFiles lists the files under every device's tmp and tmp-N directory.
func tmpFiles(t *testing.T, devices string) []string {
	t.Helper()
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(devices, "*", "tmp*"))
	for _, d := range dirs {
		es, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range es {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	return out
}

// TestKillDuringPuts is issue 9's "kill -9 of an object server in the
// middle of PUTs": afterwards no partial object is visible, temp files are
// cleaned at start and every acknowledged PUT reads back identical.
func TestKillDuringPuts(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	const workers = 16
	type attempt struct {
		body   []byte
		status int
		err    error
	}
	var (
		mu       sync.Mutex
		attempts = map[string]*attempt{}
		acked    atomic.Int32
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("w%d-o%d", w, i)
				body := make([]byte, 64<<10+rng.IntN(512<<10))
				for j := range body {
					body[j] = byte(rng.Uint32())
				}
				a := &attempt{body: body}
				mu.Lock()
				attempts[name] = a
				mu.Unlock()
				a.status, a.err = n.put(client, name, body, 2*time.Millisecond)
				if a.status == http.StatusCreated {
					acked.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for acked.Load() < 3*workers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	n.kill(syscall.SIGKILL)
	stop.Store(true)
	wg.Wait()
	client.CloseIdleConnections()

	left := tmpFiles(t, n.devices)
	n.start()
	if files := tmpFiles(t, n.devices); len(files) != 0 {
		t.Errorf("temp files after restart: %v", files)
	}
	assertNoQuarantine(t, n.devices)
	var ok, lost, committedUnacked, absent int
	for name, a := range attempts {
		status, got := n.get(name)
		switch {
		case a.status == http.StatusCreated:
			ok++
			if status != 200 || !bytes.Equal(got, a.body) {
				t.Errorf("%s: acknowledged PUT reads back %d with %d bytes (want %d bytes)", name, status, len(got), len(a.body))
			}
		case a.err == nil:
			t.Errorf("%s: PUT answered %d", name, a.status)
		case status == 404:
			absent++
		case status == 200 && bytes.Equal(got, a.body):
			committedUnacked++ // renamed into place, killed before the answer
		default:
			lost++
			t.Errorf("%s: unacknowledged PUT visible as %d with %d of %d bytes", name, status, len(got), len(a.body))
		}
	}
	t.Logf("%d PUTs: %d acknowledged and identical, %d interrupted and absent, %d interrupted after commit and complete; %d temp files left by the kill, removed at start",
		len(attempts), ok, absent, committedUnacked, len(left))
	if ok < 3*workers || absent == 0 {
		t.Fatalf("the kill did not land mid-way: %d acknowledged, %d interrupted", ok, absent)
	}
	// Writes go through O_TMPFILE where the devices' file system has it
	// (diskfile.Writer): a killed write leaves no file anywhere, and any
	// temp file is a failure. Elsewhere they go through named temp files,
	// which the kill must have left for start-up to clean.
	if tmpfileSupported(t, filepath.Join(n.devices, n.device)) {
		if len(left) != 0 {
			t.Errorf("the kill left temp files with O_TMPFILE writes: %v", left)
		}
	} else if len(left) == 0 {
		t.Error("the kill left no temp file, so start-up clean-up was not exercised")
	}
	// reading found nothing to quarantine: no torn file was ever in place
	assertNoQuarantine(t, n.devices)
}

// tmpfileSupported reports whether dir's file system takes O_TMPFILE.
func tmpfileSupported(t *testing.T, dir string) bool {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Logf("O_TMPFILE in %s: %v", dir, err)
		return false
	}
	_ = unix.Close(fd)
	return true
}

func assertNoQuarantine(t *testing.T, devices string) {
	t.Helper()
	if q, _ := filepath.Glob(filepath.Join(devices, "*", "quarantined")); len(q) != 0 {
		t.Errorf("objects were quarantined: %v", q)
	}
}

// mountTmpfs mounts a small tmpfs on dir, unmounted at cleanup, or skips.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("skipping: cannot mount a %s tmpfs as a full-able device (%v); needs root or CAP_SYS_ADMIN", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
}

// TestDiskFullAnswers507 is issue 9's "disk full on a device: 507, nothing
// corrupted": a device on a 2 MiB tmpfs fills up; the PUT that does not
// fit answers 507 and leaves nothing behind, every earlier object still
// reads back identical, and the device takes writes again once space is
// freed.
func TestDiskFullAnswers507(t *testing.T) {
	devices := t.TempDir()
	mountTmpfs(t, filepath.Join(devices, "sda"), "2m")
	n := newObjNode(t, devices)
	rng := rand.New(rand.NewPCG(5, 7))
	var stored [][]byte
	status := 0
	for i := 0; i < 64; i++ {
		body := make([]byte, 300<<10)
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		var err error
		status, err = n.put(http.DefaultClient, fmt.Sprintf("o%d", i), body, 0)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusCreated {
			break
		}
		stored = append(stored, body)
	}
	if status != http.StatusInsufficientStorage {
		t.Fatalf("PUT into a full device answered %d after %d objects, want 507", status, len(stored))
	}
	if len(stored) == 0 {
		t.Fatal("not even one object fit")
	}
	full := fmt.Sprintf("o%d", len(stored))
	if code, _ := n.get(full); code != 404 {
		t.Errorf("the PUT answered 507 left %s readable: %d", full, code)
	}
	if files := tmpFiles(t, devices); len(files) != 0 {
		t.Errorf("temp files after 507: %v", files)
	}
	for i, body := range stored {
		if code, got := n.get(fmt.Sprintf("o%d", i)); code != 200 || !bytes.Equal(got, body) {
			t.Errorf("o%d after disk full: %d with %d bytes, want identical %d bytes", i, code, len(got), len(body))
		}
	}
	assertNoQuarantine(t, devices)
	t.Logf("%d objects of 300 KiB fit on the 2 MiB device; the next PUT answered 507 and left nothing", len(stored))

	// free space: the device takes the object now
	req, _ := http.NewRequest(http.MethodDelete, n.objURL("o0"), nil)
	req.Header.Set("X-Timestamp", diskfile.FromTime(time.Now()).Internal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE o0: %d", resp.StatusCode)
	}
	body := stored[0]
	if code, err := n.put(http.DefaultClient, full, body, 0); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT after freeing space: %d, %v", code, err)
	}
	if code, got := n.get(full); code != 200 || !bytes.Equal(got, body) {
		t.Errorf("%s after freeing space: %d with %d bytes", full, code, len(got))
	}
}
