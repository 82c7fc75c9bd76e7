package swiftfilter

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// errHandlerDone is what a read of a request body gets once the filter
// has answered the request.
var errHandlerDone = errors.New("swiftfilter: request body read after the answer")

// How much of a body nobody wanted the filter reads, and for how long,
// after its answer so that the connection can serve the next request;
// net/http's own limit for the same job is 256 KiB. Beyond either, the
// connection closes instead.
const (
	drainMax  = 256 << 10
	drainWait = time.Second
)

// guardedBody is a request body that is finished before the handler
// returns.
//
// With full duplex on (answerEarly), net/http lets the body be read after
// the handler has returned: the transport's writer goroutine may still be
// reading it (the proxy answered before it had the body: 413, 401, a 503
// from the object tier), or net/http itself reads the rest when it closes
// the body (the filter answered without reading it: its own 503 while the
// key service is away). Either read can reach EOF after the server stopped
// its background read of the connection; it then starts one just as it
// reads the next request, and panics ("invalid concurrent Body.Read
// call"). finish closes that window: it cuts short a read in flight,
// drains what is left of a body within bounds while the handler still
// runs (or gives up and lets the connection close), and refuses every
// later read.
type guardedBody struct {
	mu   sync.Mutex
	body io.ReadCloser
	eof  bool // the body was read to its end
	done bool
}

// guardBody puts a guardedBody in place of r's body when r has one.
func guardBody(r *http.Request) (*http.Request, *guardedBody) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r, nil
	}
	g := &guardedBody{body: r.Body}
	r.Body = g
	return r, g
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return 0, errHandlerDone
	}
	n, err := g.body.Read(p)
	if errors.Is(err, io.EOF) {
		g.eof = true
	}
	return n, err
}

func (g *guardedBody) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.body.Close()
}

// finish ends every read of the body; it runs once the answer to r is
// written, before the handler returns. A nil guardedBody (no body) does
// nothing.
func (g *guardedBody) finish(w http.ResponseWriter, r *http.Request) {
	if g == nil {
		return
	}
	rc := http.NewResponseController(w)
	// The client may be waiting for the answer before it sends the rest.
	_ = rc.Flush()
	if !g.mu.TryLock() {
		// A read is in flight: cut it short. The rest of the body is
		// then unread, so the connection closes, as it must.
		_ = rc.SetReadDeadline(time.Now())
		g.mu.Lock()
		g.done = true
		g.mu.Unlock()
		return
	}
	defer g.mu.Unlock()
	g.done = true
	if g.eof {
		return
	}
	if tr, ok := r.Context().Value(expectKey{}).(*readTracker); ok && !tr.read.Load() {
		// A client that waited for 100 Continue and got a final answer
		// sends no body; answerEarly's finish closes the connection.
		return
	}
	_ = rc.SetReadDeadline(time.Now().Add(drainWait))
	if _, err := io.CopyN(io.Discard, g.body, drainMax+1); errors.Is(err, io.EOF) {
		_ = rc.SetReadDeadline(time.Time{})
		return
	}
	// More than drainMax, or not within drainWait: close rather than wait.
	_ = rc.SetReadDeadline(time.Now())
}
