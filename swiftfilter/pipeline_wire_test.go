package swiftfilter

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// backendReq is an object-server request as the Swift proxy sent it.
type backendReq struct {
	method, path string
	// keyIDs are the values of every header the object server reads as
	// X-Arca-Key-Id, and names those headers' spellings.
	keyIDs, names []string
}

// backendWire records what the Swift proxies send the object servers: a
// recording reverse proxy in front of each, and an object ring naming
// the recorders instead of the servers.
type backendWire struct {
	mu   sync.Mutex
	reqs []backendReq
	// RingDir is the ring folder naming the recorders.
	RingDir string
}

func startBackendWire(t *testing.T, swiftDir, work string, nodes []testenv.Node) *backendWire {
	t.Helper()
	w := &backendWire{RingDir: filepath.Join(work, "wire-rings")}
	var ports []int
	for _, n := range nodes {
		target, err := url.Parse(n.URL)
		if err != nil {
			t.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(target)
		ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			w.record(r)
			rp.ServeHTTP(rw, r)
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	testenv.WriteRings(t, swiftDir, w.RingDir, 4, ports)
	return w
}

func (w *backendWire) record(r *http.Request) {
	br := backendReq{method: r.Method, path: r.URL.Path}
	for name, vals := range r.Header {
		if isKeyIDName(name) {
			br.names = append(br.names, name)
			br.keyIDs = append(br.keyIDs, vals...)
		}
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, br)
	w.mu.Unlock()
}

func (w *backendWire) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reqs)
}

// puts are the object PUTs recorded since the n-th request whose path
// (/device/partition/account/container/object) holds sub.
func (w *backendWire) puts(n int, sub string) []backendReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []backendReq
	for _, r := range w.reqs[n:] {
		if r.method == http.MethodPut && strings.Count(r.path, "/") >= 5 && strings.Contains(r.path, sub) {
			out = append(out, r)
		}
	}
	return out
}

// since are the backend requests recorded since the n-th.
func (w *backendWire) since(n int) []backendReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reqs[n:])
}
