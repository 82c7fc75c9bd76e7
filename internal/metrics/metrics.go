package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/serve"
)

// Namespace prefixes every Arca metric.
const Namespace = "arca"

// Path is where the metrics are served.
const Path = "/metrics"

// Config is the [metrics] section every Arca service reads.
type Config struct {
	// Enabled serves /metrics (default true). Disabled, nothing is served
	// and recording is still cheap (the Registry is simply not exposed).
	Enabled bool
	// Bind is the listener of its own /metrics is served on. It defaults to
	// loopback, at the service's port plus MetricsPortOffset (arca-api
	// 9311 -> 127.0.0.1:19311), so metrics never reach a public or storage
	// network unless the operator says so. An explicitly empty "bind ="
	// serves /metrics on the service's own listener instead.
	Bind string
	// ProjectLabels adds a project_id label to the per-project counters
	// (bytes, refusals, integrity failures). Off by default: one series per
	// project can be a lot of series.
	ProjectLabels bool
}

// MetricsPortOffset is added to a service's port for its default metrics
// listener on 127.0.0.1.
const MetricsPortOffset = 10000

// DefaultBind is the metrics listener of a service listening on
// servicePort: loopback, servicePort+MetricsPortOffset (or, for ports too
// high for that, servicePort-MetricsPortOffset). A service on an ephemeral
// port (0) gets an ephemeral metrics port.
func DefaultBind(servicePort int) string {
	port := servicePort + MetricsPortOffset
	switch {
	case servicePort == 0:
		port = 0
	case port > 65535:
		port = servicePort - MetricsPortOffset
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// LoadConfig reads [metrics] enabled, bind and project_labels for a service
// listening on servicePort. Errors are collected in f (f.Err).
func LoadConfig(f *config.File, servicePort int) Config {
	c := Config{
		Enabled:       f.Bool("metrics", "enabled", true),
		Bind:          DefaultBind(servicePort),
		ProjectLabels: f.Bool("metrics", "project_labels", false),
	}
	if f.Has("metrics", "bind") {
		c.Bind = f.String("metrics", "bind", "")
	}
	return c
}

// Check reports a bind that is not host:port.
func (c Config) Check() error {
	if c.Bind == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(c.Bind); err != nil || port == "" {
		return fmt.Errorf("[metrics] bind = %q: want host:port, e.g. 127.0.0.1:9320", c.Bind)
	}
	return nil
}

// Reasons a write or read is refused for lack of a key (RefusedNoKey).
const (
	ReasonNotFound    = "not_found"   // the key is not the account's project's
	ReasonDestroyed   = "destroyed"   // crypto-shredded
	ReasonUnavailable = "unavailable" // key service unreachable, cache expired
	ReasonDenied      = "denied"      // the service user may not read keys
	ReasonNoProject   = "no_project"  // the account names no project
)

// Kinds of integrity failure (IntegrityFailure).
const (
	IntegrityTampered  = "tampered"  // a segment or header failed authentication
	IntegrityTruncated = "truncated" // data shorter than its metadata says
	IntegrityWrongKey  = "wrong_key" // the data key does not unwrap / open
	IntegrityInvalid   = "invalid"   // unsupported or malformed encrypted object
)

// Results of a token validation (TokenValidated).
const (
	TokenValid       = "valid"
	TokenInvalid     = "invalid"
	TokenUnavailable = "unavailable"
)

// Registry holds one service's metrics.
type Registry struct {
	reg           *prometheus.Registry
	projectLabels bool

	httpRequests      *prometheus.CounterVec
	httpDuration      *prometheus.HistogramVec
	tokenValidations  *prometheus.CounterVec
	keyServiceLatency *prometheus.HistogramVec
	bytesEncrypted    *prometheus.CounterVec
	bytesDecrypted    *prometheus.CounterVec
	refusedNoKey      *prometheus.CounterVec
	integrity         *prometheus.CounterVec
}

// New returns a Registry for service (arca-api, arca-swift-filter,
// arca-object-server) with the Go runtime, process and build-info metrics
// registered.
func New(service, version string, cfg Config) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), projectLabels: cfg.ProjectLabels}
	project := func(labels ...string) []string {
		if cfg.ProjectLabels {
			return append(labels, "project_id")
		}
		return labels
	}
	r.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	r.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer an HTTP request (until the handler returned), by route template, method and status class.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method", "status_class"})
	r.tokenValidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "token_validations_total",
		Help: "Keystone token validations by result (valid, invalid, unavailable), cache hits included.",
	}, []string{"result"})
	r.keyServiceLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "key_service_request_duration_seconds",
		Help:    "Requests from the key client to arca-api, by operation (active, payload) and outcome (ok, not_found, gone, denied, error).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation", "outcome"})
	r.bytesEncrypted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bytes_encrypted_total",
		Help: "Plaintext object bytes encrypted and written.",
	}, project())
	r.bytesDecrypted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bytes_decrypted_total",
		Help: "Plaintext object bytes decrypted and sent.",
	}, project())
	r.refusedNoKey = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "objects_refused_no_key_total",
		Help: "Object requests refused for lack of a usable key, by reason.",
	}, project("reason"))
	r.integrity = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "integrity_failures_total",
		Help: "Encrypted objects that failed to authenticate or open, by kind (tampered, truncated, wrong_key, invalid).",
	}, project("kind"))
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"service": service, "version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	r.reg.MustRegister(r.httpRequests, r.httpDuration, r.tokenValidations, r.keyServiceLatency,
		r.bytesEncrypted, r.bytesDecrypted, r.refusedNoKey, r.integrity, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Prometheus returns the underlying registry (tests, extra collectors).
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg, ErrorHandling: promhttp.ContinueOnError})
}

// knownMethods bounds the method label.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPut: true, http.MethodPost: true,
	http.MethodDelete: true, http.MethodPatch: true, http.MethodOptions: true, "COPY": true, "REPLICATE": true,
}

// Method returns m if it is a known method, else "OTHER".
func Method(m string) string {
	if knownMethods[m] {
		return m
	}
	return "OTHER"
}

// ObserveHTTP records one answered request. route must be a template or a
// fixed name ("/v1/secrets/:id", "object"), never a raw path; "" counts as
// "unmatched".
func (r *Registry) ObserveHTTP(route, method string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	method = Method(method)
	if code < 100 || code > 999 {
		code = 0
	}
	r.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	r.httpDuration.WithLabelValues(route, method, statusClass(code)).Observe(d.Seconds())
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// TokenValidated counts one validation; result is TokenValid, TokenInvalid
// or TokenUnavailable.
func (r *Registry) TokenValidated(result string) {
	r.tokenValidations.WithLabelValues(result).Inc()
}

// ObserveKeyService records one request of the key client to arca-api: its
// HTTP status (0 when none came back) and how long it took. It has the
// signature of keyclient.Observer.
func (r *Registry) ObserveKeyService(operation string, status int, d time.Duration) {
	outcome := "error"
	switch {
	case status == http.StatusOK:
		outcome = "ok"
	case status == http.StatusNotFound:
		outcome = "not_found"
	case status == http.StatusGone:
		outcome = "gone"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		outcome = "denied"
	}
	r.keyServiceLatency.WithLabelValues(operation, outcome).Observe(d.Seconds())
}

// projectValue is the project_id label value: only letters, digits, '-'
// and '_' pass (anything else would be a client-chosen string).
func projectValue(p string) string {
	if p == "" || len(p) > 64 {
		return "unknown"
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return "unknown"
		}
	}
	return p
}

func (r *Registry) with(v *prometheus.CounterVec, project string, labels ...string) prometheus.Counter {
	if r.projectLabels {
		labels = append(labels, projectValue(project))
	}
	return v.WithLabelValues(labels...)
}

// AddEncrypted counts n plaintext bytes encrypted for project.
func (r *Registry) AddEncrypted(project string, n int64) {
	if n > 0 {
		r.with(r.bytesEncrypted, project).Add(float64(n))
	}
}

// AddDecrypted counts n plaintext bytes decrypted for project.
func (r *Registry) AddDecrypted(project string, n int64) {
	if n > 0 {
		r.with(r.bytesDecrypted, project).Add(float64(n))
	}
}

// RefusedNoKey counts an object request refused for lack of a key; reason
// is one of the Reason* constants.
func (r *Registry) RefusedNoKey(project, reason string) {
	r.with(r.refusedNoKey, project, reason).Inc()
}

// IntegrityFailure counts an encrypted object that failed to open; kind is
// one of the Integrity* constants.
func (r *Registry) IntegrityFailure(project, kind string) {
	r.with(r.integrity, project, kind).Inc()
}

// TokenCache is what WatchValidator reads; *keystone.Validator is one.
type TokenCache interface {
	CacheHits() uint64
	CacheMisses() uint64
}

// WatchValidator exports a token validator's cache counters.
func (r *Registry) WatchValidator(v TokenCache) {
	r.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "token_cache_hits_total",
			Help: "Token validations answered from the validator's cache.",
		}, func() float64 { return float64(v.CacheHits()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "token_cache_misses_total",
			Help: "Token validations that had to ask Keystone.",
		}, func() float64 { return float64(v.CacheMisses()) }),
	)
}

// KeyClientStats is what WatchKeyClient reads; *keyclient.Client is one.
type KeyClientStats interface {
	Stats() keyclient.Stats
}

// WatchKeyClient exports a key client's cache and error counters.
func (r *Registry) WatchKeyClient(c KeyClientStats) {
	r.reg.MustRegister(&keyClientCollector{c: c})
}

var (
	kcHits = prometheus.NewDesc(Namespace+"_keyclient_cache_hits_total",
		"Key resolutions answered from the key client's cache (remembered failures included).", nil, nil)
	kcMisses = prometheus.NewDesc(Namespace+"_keyclient_cache_misses_total",
		"Key resolutions the key client's cache could not answer.", nil, nil)
	kcRequests = prometheus.NewDesc(Namespace+"_keyclient_requests_total",
		"HTTP requests sent to the key service (concurrent misses share one).", nil, nil)
	kcErrors = prometheus.NewDesc(Namespace+"_keyclient_errors_total",
		"Key resolutions that ended in an error (not found, destroyed, denied, unavailable).", nil, nil)
)

type keyClientCollector struct{ c KeyClientStats }

func (k *keyClientCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- kcHits
	ch <- kcMisses
	ch <- kcRequests
	ch <- kcErrors
}

func (k *keyClientCollector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Stats()
	ch <- prometheus.MustNewConstMetric(kcHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(kcMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(kcRequests, prometheus.CounterValue, float64(s.Requests))
	ch <- prometheus.MustNewConstMetric(kcErrors, prometheus.CounterValue, float64(s.Failures))
}

// WatchDB exports a database pool's sql.DBStats as go_sql_* metrics with
// db_name = name.
func (r *Registry) WatchDB(db *sql.DB, name string) {
	r.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
}

// Listener opens the separate /metrics listener at cfg.Bind, serving h
// there; nil when no separate bind is configured (metrics off, or on the
// service's own port). serve.Run runs it beside the service's listener, so
// it drains and stops with it.
func Listener(ctx context.Context, cfg Config, h http.Handler, log zerolog.Logger) (*serve.Server, error) {
	if !cfg.Enabled || cfg.Bind == "" {
		return nil, nil
	}
	ln, err := serve.Listen(ctx, cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("[metrics] bind %s: %w", cfg.Bind, err)
	}
	return listenerOn(ln, h, log), nil
}

func listenerOn(ln net.Listener, h http.Handler, log zerolog.Logger) *serve.Server {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, h)
	log.Info().Str("address", ln.Addr().String()).Msg("metrics listening")
	return &serve.Server{
		HTTP:     &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute},
		Listener: ln,
	}
}

// ServeListener serves h (at /metrics only) on ln until ctx ends.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) error {
	return serve.Run(ctx, 0, *listenerOn(ln, h, log))
}
