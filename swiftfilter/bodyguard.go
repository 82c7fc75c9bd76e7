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

// guardedBody is a request body nobody reads once the filter has answered.
//
// When the proxy answers before it has the whole body (413, 401, a 503
// from the object tier), the reverse proxy returns while the transport's
// writer goroutine may still be reading the client's body. With full
// duplex on (answerEarly), net/http lets that read run on after the
// handler; if it reaches EOF then, the server starts its background read
// of the connection just as it reads the next request, and panics
// ("invalid concurrent Body.Read call"). finish closes that window: it
// waits for a read in flight (cutting it short with a read deadline, after
// which the connection is not reused) and refuses every later one.
type guardedBody struct {
	mu   sync.Mutex
	body io.ReadCloser
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
	return g.body.Read(p)
}

func (g *guardedBody) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.body.Close()
}

// finish ends every read of the body; it runs once the answer is written,
// before the handler returns. A nil guardedBody (no body) does nothing.
func (g *guardedBody) finish(w http.ResponseWriter) {
	if g == nil {
		return
	}
	if !g.mu.TryLock() {
		// A read is in flight: the client is still sending a body nobody
		// wants. Cut it short; the connection then closes, as it must,
		// since the rest of the body is unread.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		g.mu.Lock()
	}
	g.done = true
	g.mu.Unlock()
}
