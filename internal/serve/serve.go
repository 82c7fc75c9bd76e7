package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// DefaultGrace is how long in-flight requests may still run after a
// server is told to stop, when shutdown_timeout is not set.
const DefaultGrace = 30 * time.Second

// SignalContext is parent, ended by SIGTERM or SIGINT: the signals on
// which every Arca server drains and exits 0.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Server is one HTTP server and the listener it answers on (already
// wrapped in TLS when it should be).
type Server struct {
	HTTP     *http.Server
	Listener net.Listener
}

// Listen opens addr (host:port) for TCP under ctx.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// Run serves every server until ctx ends or one of them fails; then each
// stops accepting, and requests in flight have grace (0: DefaultGrace) to
// finish before their connections are closed. It returns the first
// serving failure, or nil after a stop asked for through ctx, even when
// the grace ran out (the connections left are closed: the operator asked
// for a stop, and it happened).
func Run(ctx context.Context, grace time.Duration, servers ...Server) error {
	if grace <= 0 {
		grace = DefaultGrace
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range servers {
		g.Go(func() error { return runOne(gctx, grace, s) })
	}
	return g.Wait()
}

func runOne(ctx context.Context, grace time.Duration, s Server) error {
	errc := make(chan error, 1)
	go func() { errc <- s.HTTP.Serve(s.Listener) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", s.Listener.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := s.HTTP.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.HTTP.Close()
	}
	if err != nil {
		return fmt.Errorf("shutting down %s: %w", s.Listener.Addr(), err)
	}
	return nil
}
