package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
)

// Path is the plain check; DetailedPath the operators' variant.
const (
	Path         = "/healthcheck"
	DetailedPath = "/healthcheck/detailed"
)

// DefaultAllowed are the networks that may read the detailed check when
// none are configured.
var DefaultAllowed = []string{"127.0.0.0/8", "::1/128"}

// Config is the [healthcheck] section.
type Config struct {
	// DisableByFilePath: while this file exists, /healthcheck answers 503.
	DisableByFilePath string
	// DetailedAllowed are CIDRs whose peers may read the detailed check.
	DetailedAllowed []string
	// Timeout bounds the detailed checks (all run concurrently).
	Timeout time.Duration
}

// LoadConfig reads [healthcheck] disable_by_file_path,
// detailed_allowed_networks and timeout.
func LoadConfig(f *config.File) Config {
	return Config{
		DisableByFilePath: f.String("healthcheck", "disable_by_file_path", ""),
		DetailedAllowed:   f.List("healthcheck", "detailed_allowed_networks", DefaultAllowed),
		Timeout:           f.Seconds("healthcheck", "timeout", 3*time.Second),
	}
}

// Check is one dependency of the detailed check. Run returns nil when the
// dependency answers. Its error is logged, never shown: the answer carries
// only a fixed reason (see PublicError).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// PublicError is an error whose Public text may be shown to the caller of
// the detailed check (a fixed phrase such as "HTTP 503").
type PublicError struct {
	Public string
	Err    error
}

func (e *PublicError) Error() string { return e.Public + ": " + e.Err.Error() }
func (e *PublicError) Unwrap() error { return e.Err }

// Handler answers the plain and detailed checks.
type Handler struct {
	cfg     Config
	allowed []netip.Prefix
	checks  []Check
	log     zerolog.Logger
}

// New checks cfg and returns a Handler running checks.
func New(cfg Config, checks []Check, log zerolog.Logger) (*Handler, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.DetailedAllowed == nil {
		cfg.DetailedAllowed = DefaultAllowed
	}
	h := &Handler{cfg: cfg, checks: checks, log: log}
	for _, c := range cfg.DetailedAllowed {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("[healthcheck] detailed_allowed_networks: %q is not a CIDR (e.g. 10.0.0.0/8)", c)
		}
		h.allowed = append(h.allowed, p.Masked())
	}
	return h, nil
}

// Handles reports whether path is answered by the Handler.
func Handles(path string) bool { return path == Path || path == DetailedPath }

// Disabled reports whether the disable file exists.
func (h *Handler) Disabled() bool {
	if h.cfg.DisableByFilePath == "" {
		return false
	}
	_, err := os.Stat(h.cfg.DisableByFilePath)
	return err == nil
}

// ServeHTTP answers Path and DetailedPath (GET and HEAD).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Only GET and HEAD are allowed.", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == DetailedPath || r.URL.Query().Has("detailed") {
		h.detailed(w, r)
		return
	}
	h.plain(w, r)
}

func (h *Handler) plain(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=UTF-8")
	hd.Set("Cache-Control", "no-store")
	if h.Disabled() {
		const body = "DISABLED BY FILE"
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body))
		}
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	hd.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
}

// Result is one check in the detailed answer.
type Result struct {
	OK       bool    `json:"ok"`
	Reason   string  `json:"reason,omitempty"`
	Duration float64 `json:"duration_seconds"`
}

// Report is the detailed answer.
type Report struct {
	// Status is "OK", "FAIL" (a check failed) or "DISABLED BY FILE".
	Status string            `json:"status"`
	Checks map[string]Result `json:"checks"`
}

func (h *Handler) peerAllowed(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range h.allowed {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Run runs every check concurrently and returns the report.
func (h *Handler) Run(ctx context.Context) Report {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	rep := Report{Status: "OK", Checks: make(map[string]Result, len(h.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range h.checks {
		wg.Go(func() {
			start := time.Now()
			err := c.Run(ctx)
			res := Result{OK: err == nil, Duration: time.Since(start).Seconds()}
			if err != nil {
				res.Reason = reason(ctx, err)
				h.log.Warn().Err(err).Str("check", c.Name).Msg("health check failed")
			}
			mu.Lock()
			rep.Checks[c.Name] = res
			if err != nil {
				rep.Status = "FAIL"
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if h.Disabled() {
		rep.Status = "DISABLED BY FILE"
	}
	return rep
}

// reason is the fixed phrase shown for a failed check.
func reason(ctx context.Context, err error) string {
	var pe *PublicError
	switch {
	case errors.As(err, &pe):
		return pe.Public
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return "timeout"
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return "unreachable"
	}
	return "failed"
}

func (h *Handler) detailed(w http.ResponseWriter, r *http.Request) {
	if !h.peerAllowed(r) {
		http.Error(w, "The detailed health check is for operators' networks only.", http.StatusForbidden)
		return
	}
	rep := h.Run(r.Context())
	code := http.StatusOK
	if rep.Status != "OK" {
		code = http.StatusServiceUnavailable
	}
	body, _ := json.Marshal(rep)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// HTTPCheck is a Check that GETs url and passes on any answer below 500
// (Keystone's version document, arca-api's /healthcheck). url must carry
// no credentials; it is never shown.
func HTTPCheck(name, url string, client *http.Client) Check {
	if client == nil {
		client = &http.Client{}
	}
	return Check{Name: name, Run: func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return &PublicError{Public: "misconfigured", Err: err}
		}
		req.Header.Set("User-Agent", "arca-healthcheck")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 {
			return &PublicError{Public: "HTTP " + strconv.Itoa(resp.StatusCode), Err: errors.New(resp.Status)}
		}
		return nil
	}}
}
