package swiftfilter

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/serve"
)

// Version is reported by arca_build_info; set with -ldflags.
var Version = "dev"

// Service is an assembled arca-swift-filter: the filter and what it
// reports to, ready to serve.
type Service struct {
	Settings Settings
	Filter   *Filter
	Metrics  *metrics.Registry
	log      zerolog.Logger
}

// Build wires the filter from its settings: the token validator, the
// metrics registry, the key client (which reports its requests to the
// registry from its construction on), the health check and the filter.
// It does no I/O: Keystone and the key service are reached on first use.
func Build(s Settings, log zerolog.Logger) (*Service, error) {
	validator, err := keystone.NewValidator(s.Keystone, keystone.WithLogger(log))
	if err != nil {
		return nil, err
	}
	reg := metrics.New("arca-swift-filter", Version, s.Metrics)
	kopts := s.Keys
	kopts.Logger = log
	kopts.Observer = reg.ObserveKeyService
	keys, err := keyclient.New(kopts)
	if err != nil {
		return nil, err
	}
	deps := Deps{Tokens: validator, Keys: keys, Log: log}
	if err := observability(s, &deps, reg, validator, keys, log); err != nil {
		return nil, err
	}
	filter, err := New(s.Filter, deps)
	if err != nil {
		return nil, err
	}
	return &Service{Settings: s, Filter: filter, Metrics: reg, log: log}, nil
}

// observability wires the filter's metrics (reg, which keys already
// reports its requests to) and health check into deps
// (docs/operations.md): the detailed check asks Keystone, the key service
// and the Swift proxy behind the filter.
func observability(s Settings, deps *Deps, reg *metrics.Registry, v *keystone.Validator, keys *keyclient.Client, log zerolog.Logger) error {
	reg.WatchValidator(v)
	reg.WatchKeyClient(keys)
	deps.Metrics = reg
	if s.Metrics.Enabled && s.Metrics.Bind == "" {
		deps.MetricsHandler = reg.Handler()
	}
	checks := []health.Check{
		health.HTTPCheck("keystone", s.Keystone.AuthURL, &http.Client{}),
		{Name: "key_service", Run: func(ctx context.Context) error { return keys.Ping(ctx) }},
	}
	if s.Filter.Upstream != "" {
		checks = append(checks, health.HTTPCheck("swift_proxy", strings.TrimRight(s.Filter.Upstream, "/")+"/healthcheck", &http.Client{}))
	}
	h, err := health.New(s.Health, checks, log)
	if err != nil {
		return err
	}
	deps.Health = h
	return nil
}

// Serve listens on bind_ip:bind_port (TLS when cert_file is set) and on
// the separate /metrics listener, until ctx ends; then in-flight requests
// have shutdown_timeout to finish.
func (svc *Service) Serve(ctx context.Context) error {
	s := svc.Settings
	if s.Pipeline.Socket != "" {
		return svc.servePipeline(ctx)
	}
	tcp, err := serve.Listen(ctx, net.JoinHostPort(s.BindIP, strconv.Itoa(s.BindPort)))
	if err != nil {
		return err
	}
	ln, err := s.Listen(tcp)
	if err != nil {
		_ = tcp.Close()
		return err
	}
	servers := []serve.Server{{HTTP: s.HTTPServer(svc.Filter), Listener: ln}}
	m, err := metrics.Listener(ctx, s.Metrics, svc.Metrics.Handler(), svc.log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if m != nil {
		servers = append(servers, *m)
	}
	svc.log.Info().Str("listen", ln.Addr().String()).Str("upstream", s.Filter.Upstream).
		Strs("reseller_prefix", svc.Filter.Prefixes()).Bool("tls", s.TLS.Enabled()).
		Bool("client_certificates", s.TLS.CAFile != "").Int("max_procs", runtime.GOMAXPROCS(0)).
		Msg("arca-swift-filter started")
	stopLog := context.AfterFunc(ctx, func() { svc.log.Info().Msg("shutting down") })
	defer stopLog()
	return serve.Run(ctx, s.ShutdownTimeout, servers...)
}

// SetMaxProcs applies [DEFAULT] max_procs to the process: with a value
// above 0, that many threads run Go code at once (runtime.GOMAXPROCS),
// whatever the machine's cores, its cgroup's CPU limit or the GOMAXPROCS
// environment variable say; 0 leaves Go's choice, and its updates when
// the CPU limit changes, alone. The filter's work per request is a few
// hand-offs between goroutines (the client's connection, the transport's
// reader and writer): with more than one, each hand-off can wake a thread
// on an idle core, which spins looking for work and sleeps again, so that
// a lightly loaded filter spends more CPU per request than a busy one
// (docs/operations.md). Call it once, before serving.
func (s Settings) SetMaxProcs() {
	if s.MaxProcs > 0 {
		runtime.GOMAXPROCS(s.MaxProcs)
	}
}

// HTTPServer is the server arca-swift-filter runs h in: request headers
// within ClientTimeout and 1 MiB, idle keep-alive connections closed after
// ClientTimeout. Bodies are streamed to the Swift proxy, whose own
// client_timeout cuts a client that stalls inside one.
func (s Settings) HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.ClientTimeout,
		IdleTimeout:       s.ClientTimeout,
		MaxHeaderBytes:    1 << 20,
	}
}

// Listen wraps ln in TLS when [DEFAULT] cert_file and key_file are set
// (and requires client certificates signed by ca_file when it is set);
// it returns ln unchanged when none of them is.
func (s Settings) Listen(ln net.Listener) (net.Listener, error) {
	return s.TLS.Listener(ln)
}

// servePipeline serves the decision socket of [pipeline] (and the /metrics
// listener) until ctx ends: the pipeline shape, where Swift's own authtoken
// and keystoneauth see the requests and the arca middleware asks here.
func (svc *Service) servePipeline(ctx context.Context) error {
	s := svc.Settings
	ln, dec, err := svc.Filter.ListenDecisions(ctx, s.Pipeline, svc.log)
	if err != nil {
		return err
	}
	m, err := metrics.Listener(ctx, s.Metrics, svc.Metrics.Handler(), svc.log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	svc.log.Info().Str("socket", s.Pipeline.Socket).Str("socket_group", s.Pipeline.Group).
		Strs("reseller_prefix", svc.Filter.Prefixes()).Int("max_procs", runtime.GOMAXPROCS(0)).
		Msg("arca-swift-filter started: decision socket for the Swift pipeline")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return dec.Serve(gctx, ln) })
	if m != nil {
		g.Go(func() error { return serve.Run(gctx, s.ShutdownTimeout, *m) })
	}
	return g.Wait()
}
