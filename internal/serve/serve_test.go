package serve_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"opendev.org/x/arca/internal/serve"
)

// TestRunDrains: a request in flight when the stop comes finishes within
// the grace period, and Run returns nil.
func TestRunDrains(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})}
	ln, err := serve.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, 5*time.Second, serve.Server{HTTP: srv, Listener: ln}) }()
	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			body <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	<-started
	stop()
	time.Sleep(50 * time.Millisecond) // the shutdown has begun
	close(release)
	if got := <-body; got != "done" {
		t.Fatalf("in-flight request: %q, want done", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestRunGraceExpires: a request that outlives the grace period has its
// connection closed, and the stop is still a clean one.
func TestRunGraceExpires(t *testing.T) {
	started := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})}
	ln, err := serve.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, 100*time.Millisecond, serve.Server{HTTP: srv, Listener: ln}) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	begin := time.Now()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("stop took %v with a 100 ms grace", d)
	}
}

// TestRunOneFailureStopsAll: when one server cannot serve, the others
// stop too and Run reports the failure.
func TestRunOneFailureStopsAll(t *testing.T) {
	good, err := serve.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = bad.Close() // Serve fails at once
	err = serve.Run(t.Context(), time.Second,
		serve.Server{HTTP: &http.Server{Handler: http.NotFoundHandler()}, Listener: good},
		serve.Server{HTTP: &http.Server{Handler: http.NotFoundHandler()}, Listener: bad})
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Run = %v, want the failure of the closed listener", err)
	}
}
