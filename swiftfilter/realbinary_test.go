package swiftfilter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// binEnv is the arca-swift-filter binary, configured as an operator would
// (its own service user, a real arca-api as its key service), in front of
// the stack's own Swift proxy, which tests also reach directly: what the
// filter answers is compared with what Swift answers.
type binEnv struct {
	filter   string // host:port of arca-swift-filter
	proxy    string // host:port of the stack's swift-proxy-server
	proc     *testenv.Proc
	token    string // demo's token, scoped to project
	altToken string // alt's token, scoped to a project of its own
	project  string
	account  string // /v1/AUTH_<project>
}

// startBinary starts arca-swift-filter in front of the stack's Swift proxy
// (ARCA_TEST_SWIFT_URL) with a private arca-api as its key service.
func startBinary(t *testing.T) *binEnv {
	t.Helper()
	ks := testenv.LoadKeystone(t)
	swiftURL := os.Getenv("ARCA_TEST_SWIFT_URL")
	if swiftURL == "" {
		testenv.StackMissing(t, "ARCA_TEST_SWIFT_URL is not set")
	}
	api := testenv.StartAPI(t, testenv.APIOptions{AuthStrategy: "keystone", Extra: "\n" + ks.AuthtokenSection()})
	port := testenv.FreePort(t)
	c := ks.UserConfig(testenv.UserArcaFilter)
	conf := fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d

[upstream]
url = %s
expect_continue_timeout = 30

[keystone_authtoken]
www_authenticate_uri = %s
auth_type = password
%s
[key_service]
endpoint = %s

[metrics]
enabled = false
`, port, swiftURL, c.WWWAuthenticateURI, testenv.PasswordOptions(c), api.URL)
	path := filepath.Join(t.TempDir(), "swift-filter.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &binEnv{
		filter: fmt.Sprintf("127.0.0.1:%d", port),
		proxy:  strings.TrimPrefix(strings.TrimRight(swiftURL, "/"), "http://"),
	}
	e.proc = testenv.StartProc(t, nil, filepath.Join(testenv.Binaries(t), "arca-swift-filter"), "--config-file", path)
	e.proc.WaitHealthy(t, "http://"+e.filter+"/healthcheck")
	e.token, e.project = ks.ScopedToken(t, testenv.UserDemo)
	e.altToken, _ = ks.ScopedToken(t, testenv.UserAlt)
	e.account = "/v1/AUTH_" + e.project
	return e
}

// rawResult is one response read off the wire: the interim ones
// (100 Continue) apart, the final one's status line, headers and body.
type rawResult struct {
	interim []int
	resp    *http.Response
	body    []byte
	elapsed time.Duration // from the request's last byte to the final status line
	closed  bool          // the server closed the connection after the response
	// connection is the final answer's Connection header as sent.
	connection string
}

// rawRequest sends req (a whole HTTP/1.x request head, and any body bytes)
// to addr as they are, and reads the response to method within limit.
// Nothing is normalized: what is sent is what the test wrote.
func rawRequest(t *testing.T, addr, method, req string, limit time.Duration) rawResult {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	br := bufio.NewReader(conn)
	var res rawResult
	for {
		// net/http's parser drops "Connection: close" from an HTTP/1.1
		// answer: read the head as it came, then parse it.
		raw, err := readHead(br)
		if err != nil {
			t.Fatalf("%s to %s: no response within %v: %v", firstLine(req), addr, limit, err)
		}
		res.connection = headerLines(raw, "Connection")
		br = bufio.NewReader(io.MultiReader(bytes.NewReader(raw), br))
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s to %s: no response within %v: %v", firstLine(req), addr, limit, err)
		}
		if resp.StatusCode >= 200 {
			res.resp, res.elapsed = resp, time.Since(start)
			break
		}
		res.interim = append(res.interim, resp.StatusCode)
	}
	res.body, err = io.ReadAll(res.resp.Body)
	if err != nil {
		t.Fatalf("%s to %s: reading the body: %v", firstLine(req), addr, err)
	}
	// A closed connection reads EOF at once; an open one times out.
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var one [1]byte
	_, err = br.Read(one[:])
	res.closed = err == io.EOF
	return res
}

// readHead reads one response head, up to and with its blank line.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadBytes('\n')
		head = append(head, line...)
		if err != nil {
			return head, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return head, nil
		}
	}
}

// headerLines is the values of the header name in a raw head, joined.
func headerLines(head []byte, name string) string {
	var vals []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return strings.Join(vals, " | ")
}

func firstLine(req string) string {
	line, _, _ := strings.Cut(req, "\r\n")
	return line
}

// head is a request head with the given lines (each "Name: value"), ended.
func head(requestLine string, lines ...string) string {
	var b bytes.Buffer
	b.WriteString(requestLine + "\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}
