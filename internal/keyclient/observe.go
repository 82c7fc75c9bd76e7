package keyclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Observer receives one call per HTTP request the Client sends to the key
// service: the operation ("active" or "payload"), the status of the answer
// (0 when none came back) and how long it took. It must be fast and safe
// for concurrent use; it never sees a project id, key id or token.
type Observer func(operation string, status int, d time.Duration)

func (c *Client) observe(path string, status int, start time.Time) {
	if c.observer == nil {
		return
	}
	op := "active"
	if len(path) > len("/payload") && path[len(path)-len("/payload"):] == "/payload" {
		op = "payload"
	}
	c.observer(op, status, time.Since(start))
}

// Ping checks that the key service answers: it locates it (authenticating
// with Keystone first unless in no-auth mode) and GETs its /healthcheck.
// For health checks; it does not touch the caches or the counters.
func (c *Client) Ping(ctx context.Context) error {
	base, err := c.endpoint(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthcheck", nil)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("User-Agent", "arca-keyclient")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp.StatusCode, resp.Header.Get("X-Openstack-Request-Id"))
	}
	return nil
}
