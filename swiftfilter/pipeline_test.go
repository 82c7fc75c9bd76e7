package swiftfilter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/testenv"
)

// startDecisions serves a filter's decisions (fake tokens and keys) on a
// socket in a fresh world-traversable folder, with settings s (Socket
// set here).
func startDecisions(t *testing.T, keys keyclient.Resolver, s PipelineSettings) string {
	t.Helper()
	// Not t.TempDir: its parent is closed to other users.
	dir, err := os.MkdirTemp("", "arca-decisions-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Socket = filepath.Join(dir, "decision.sock")
	f, err := New(Config{}, Deps{Tokens: &fakeTokens{}, Keys: keys, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, srv, err := f.ListenDecisions(context.Background(), s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s.Socket
}

// decisionConn is one connection to a decision socket, as one of the
// middleware's pooled connections.
type decisionConn struct {
	net.Conn
	rd *bufio.Reader
}

// dialDecisions connects to the decision socket sock until the test ends.
func dialDecisions(t *testing.T, sock string) *decisionConn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &decisionConn{Conn: c, rd: bufio.NewReader(c)}
}

// roundTrip sends one request line and returns the answer's line.
func (d *decisionConn) roundTrip(t *testing.T, line string) string {
	t.Helper()
	if _, err := d.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	ans, err := d.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return ans
}

// ask is roundTrip with the answer decoded from JSON.
func (d *decisionConn) ask(t *testing.T, line string) map[string]any {
	t.Helper()
	ans := d.roundTrip(t, line)
	var m map[string]any
	if err := json.Unmarshal([]byte(ans), &m); err != nil {
		t.Fatalf("%s: answer %q: %v", line, ans, err)
	}
	return m
}

// closed reports whether the server has closed the connection, as it does
// after a protocol fault: nothing more to read.
func (d *decisionConn) closed() bool {
	_, err := d.rd.ReadString('\n')
	return err != nil
}

// TestDecisionProtocol asks several decisions on one connection, as the
// middleware's pooled connections do, and checks the protocol's faults
// close the connection.
func TestDecisionProtocol(t *testing.T) {
	keys := &fakeKeys{}
	conn := dialDecisions(t, startDecisions(t, keys, PipelineSettings{}))
	ask := func(line string) map[string]any { return conn.ask(t, line) }
	for _, c := range []struct{ req, want string }{
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"abc"}`, `key_id=key-abc`},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o\u00c3\u00a9","project_id":"abc"}`, `key_id=key-abc`},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"other"}`, ``},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o"}`, ``},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c","project_id":"abc"}`, ``},
		{`{"v":1,"method":"GET","path":"/v1/AUTH_abc/c/o","project_id":"abc"}`, ``},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_gone/c/o","project_id":"gone"}`, `status=403`},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_new/c/o","project_id":"new"}`, ``},
		{`{"v":1,"method":"COPY","path":"/v1/AUTH_abc/c/o","destination_account":["AUTH_xyz"],"project_id":"xyz"}`, `key_id=key-xyz`},
		{`{"v":1,"method":"COPY","path":"/v1/AUTH_abc/c/o","destination_account":["AUTH_xyz","AUTH_abc"],"project_id":"xyz"}`, `status=400`},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/\u0000","project_id":"abc"}`, ``},
		// Swift's reserved namespace: object versioning's versions.
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/\u0000versions\u0000c/\u0000o\u00008203489613.81601","project_id":"abc"}`, `key_id=key-abc`},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/\u0000versions\u0000c/\u0000o\u00008203489613.81601","project_id":"xyz"}`, ``},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/\u0000versions\u0000c/\u0000o\u00008203489613.81601"}`, ``},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c\u0000/o","project_id":"abc"}`, ``},
		{`{"v":1,"method":"PUT","path":"/v1/AUTH_abc\u0000/\u0000c/o","project_id":"abc"}`, ``},
	} {
		m := ask(c.req)
		var got []string
		if id, ok := m["key_id"].(string); ok {
			got = append(got, "key_id="+id)
		}
		if st, ok := m["status"].(float64); ok {
			got = append(got, fmt.Sprintf("status=%d", int(st)))
		}
		if m["v"] != float64(1) || strings.Join(got, " ") != c.want || m["error"] != nil {
			t.Errorf("%s: answer %v, want %q", c.req, m, c.want)
		}
		if m["reuse_ms"] != nil || m["account"] != nil {
			t.Errorf("%s: answer %v lets the middleware keep it, from a resolver that cannot say for how long", c.req, m)
		}
	}
	if got := keys.createdKeys(); strings.Join(got, ",") != "abc,xyz" {
		t.Errorf("keys resolved for %v, want only the owners' (abc, xyz)", got)
	}
	keys.down.Store(true)
	if m := ask(`{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"abc"}`); m["status"] != float64(503) {
		t.Errorf("key service down: %v, want status 503", m)
	}
	if m := ask(`{"v":2,"method":"PUT","path":"/v1/AUTH_abc/c/o"}`); m["error"] == nil {
		t.Errorf("protocol version 2: %v, want an error", m)
	}
	if !conn.closed() {
		t.Error("the connection stayed open after a protocol fault")
	}
}

// boundedKeys is fakeKeys that also says until when an active key may be
// kept (keyclient.ActiveBounder), as keyclient.Client does.
type boundedKeys struct {
	*fakeKeys
	until time.Time
}

func (b *boundedKeys) ActiveKeyUntil(ctx context.Context, project string) (keyclient.Key, time.Time, error) {
	k, err := b.ActiveKey(ctx, project)
	if err != nil {
		return k, time.Time{}, err
	}
	return k, b.until, nil
}

// TestDecisionReuse checks what the middleware is told it may keep: a key
// id, for the account it was decided for, no longer than the filter's own
// cached entry lives; never a refusal, a "no key id" or another
// project's decision.
func TestDecisionReuse(t *testing.T) {
	keys := &boundedKeys{fakeKeys: &fakeKeys{}}
	conn := dialDecisions(t, startDecisions(t, keys, PipelineSettings{}))
	for _, tc := range []struct {
		name, req string
		left      time.Duration // of the filter's entry
		keyID     string
		reuse     bool
	}{
		{"owner", `{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"abc"}`, 800 * time.Millisecond, "key-abc", true},
		{"versions namespace", `{"v":1,"method":"PUT","path":"/v1/AUTH_abc/\u0000versions\u0000c/\u0000o\u00001","project_id":"abc"}`, time.Minute, "key-abc", true},
		{"entry over", `{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"abc"}`, -time.Millisecond, "key-abc", false},
		{"under a millisecond left", `{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"abc"}`, 500 * time.Microsecond, "key-abc", false},
		{"another project's token", `{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"xyz"}`, time.Minute, "", false},
		{"anonymous", `{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o"}`, time.Minute, "", false},
		{"no key yet", `{"v":1,"method":"PUT","path":"/v1/AUTH_new/c/o","project_id":"new"}`, time.Minute, "", false},
		{"destroyed", `{"v":1,"method":"PUT","path":"/v1/AUTH_gone/c/o","project_id":"gone"}`, time.Minute, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys.until = time.Now().Add(tc.left)
			asked := time.Now()
			line := conn.roundTrip(t, tc.req)
			var ans decisionAnswer
			if err := json.Unmarshal([]byte(line), &ans); err != nil {
				t.Fatal(err)
			}
			if ans.KeyID != tc.keyID {
				t.Fatalf("answer %s: key id %q, want %q", line, ans.KeyID, tc.keyID)
			}
			if got := ans.ReuseMS > 0; got != tc.reuse {
				t.Fatalf("answer %s: may be kept %v, want %v", line, got, tc.reuse)
			}
			if !tc.reuse {
				if ans.Account != "" {
					t.Errorf("answer %s names an account without reuse_ms", line)
				}
				return
			}
			if ans.Account != "AUTH_abc" {
				t.Errorf("answer %s: account %q, want AUTH_abc", line, ans.Account)
			}
			// Kept from before the question, it must end by the entry's end.
			if end := asked.Add(time.Duration(ans.ReuseMS) * time.Millisecond); end.After(keys.until) {
				t.Errorf("answer %s: kept until %s after the entry's end", line, end.Sub(keys.until))
			}
		})
	}
}

func TestWSGIStringRoundTrip(t *testing.T) {
	for _, s := range []string{"", "AUTH_abc", "caf\xc3\xa9", "\x00\xff\x80/"} {
		back, ok := wsgiBytes(wsgiString(s))
		if !ok || back != s {
			t.Errorf("%q: round trip gives %q %v", s, back, ok)
		}
	}
}

// connectAs has /usr/bin/python3, running as uid:gid, connect to sock and
// ask one decision; it returns what the process printed.
func connectAs(t *testing.T, sock string, uid, gid uint32) string {
	t.Helper()
	script := `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.__class__.__name__); sys.exit(0)
try:
    s.sendall(b'{"v":1,"method":"PUT","path":"/v1/AUTH_abc/c/o","project_id":"abc"}\n')
except BrokenPipeError:
    pass  # refused: the server answered and closed first
print("answer:", s.makefile("rb").readline().decode().strip())`
	cmd := exec.Command("/usr/bin/python3", "-c", script, sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 as %d:%d: %v\n%s", uid, gid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestDecisionSocketTrust checks who may ask for key ids: the socket file
// is 0600 (or 0660 and [pipeline] socket_group's), and behind the file's
// mode the server checks the peer's credentials (SO_PEERCRED) itself.
func TestDecisionSocketTrust(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.StackMissing(t, "switching to another user needs root")
	}
	const nobody, nogroup = 65534, 65534
	sock := startDecisions(t, &fakeKeys{}, PipelineSettings{})
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	if out := connectAs(t, sock, nobody, nogroup); out != "connect: PermissionError" {
		t.Errorf("another user on a 0600 socket: %q, want a refused connect", out)
	}
	// The file's mode loosened by mistake: the server still refuses.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if out := connectAs(t, sock, nobody, nogroup); !strings.Contains(out, `"error":"not allowed"`) || strings.Contains(out, "key_id") {
		t.Errorf("another user on a 0666 socket: %q, want not allowed", out)
	}
	if out := connectAs(t, sock, 0, 0); !strings.Contains(out, `"key_id":"key-abc"`) {
		t.Errorf("root: %q, want the key id", out)
	}

	// socket_group: the proxy's group may connect, 0660.
	sock = startDecisions(t, &fakeKeys{}, PipelineSettings{Group: "nogroup"})
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != nogroup {
		t.Fatalf("socket with socket_group: %v %v, want 0660 group nogroup", fi.Mode(), err)
	}
	if out := connectAs(t, sock, nobody, nogroup); !strings.Contains(out, `"key_id":"key-abc"`) {
		t.Errorf("the socket's group: %q, want the key id", out)
	}
	if out := connectAs(t, sock, nobody, 1); out != "connect: PermissionError" {
		t.Errorf("another group: %q, want a refused connect", out)
	}
}

// TestDecisionSocketHandover checks a restart without a gap: a second
// decision server started on the same path takes it over, and the first
// one's exit leaves the second's socket file in place (it used to remove
// it, so that every object PUT answered 503 until the next restart).
func TestDecisionSocketHandover(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decision.sock")
	f, err := New(Config{}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	oldLn, _, err := f.ListenDecisions(t.Context(), PipelineSettings{Socket: path}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	newLn, _, err := f.ListenDecisions(t.Context(), PipelineSettings{Socket: path}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer newLn.Close()
	if err := oldLn.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := (&net.Dialer{}).DialContext(t.Context(), "unix", path)
	if err != nil {
		t.Fatalf("the new server's socket after the old one closed: %v", err)
	}
	_ = c.Close()
	accepted := make(chan error, 1)
	go func() {
		conn, err := newLn.Accept()
		if err == nil {
			_ = conn.Close()
		}
		accepted <- err
	}()
	if err := <-accepted; err != nil {
		t.Errorf("the new server did not get the connection: %v", err)
	}
	// Its own close removes the file.
	if err := newLn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file after the last server closed: %v", err)
	}
}

// TestBenchMeterNotShipped checks that the middleware's bench CPU meter
// (arca_swift.bench, which answers its counters to anyone and assumes
// one request at a time) is named by no deployment source: the DevStack
// plugin and etc/ configure arca_swift.middleware only, and the
// middleware does not import the meter.
func TestBenchMeterNotShipped(t *testing.T) {
	root := ".."
	found := 0
	for _, dir := range []string{"devstack", "etc"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path) //nolint:gosec // G304: the repository's own files
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte("arca_swift.bench")) {
				t.Errorf("%s names the bench CPU meter (arca_swift.bench)", path)
			}
			if bytes.Contains(b, []byte("arca_swift.middleware:filter_factory")) {
				found++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found == 0 {
		t.Error("no deployment source names arca_swift.middleware:filter_factory: the walk looked in the wrong place")
	}
	mw, err := os.ReadFile(filepath.Join("python", "arca_swift", "middleware.py"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mw, []byte("bench")) {
		t.Error("middleware.py mentions the bench meter")
	}
}
