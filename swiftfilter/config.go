package swiftfilter

import (
	"errors"
	"fmt"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/tlsconf"
)

// Settings are everything arca-swift-filter reads from swift-filter.conf
// (etc/arca/swift-filter.conf.sample documents each option).
type Settings struct {
	BindIP   string
	BindPort int
	// LogFormat is "text" or "json"; Debug lowers the level to debug.
	LogFormat string
	Debug     bool
	// LogFlushInterval is log_flush_interval: how long info lines may
	// wait in memory (logging.NewBuffered; 0: none wait).
	LogFlushInterval time.Duration
	// ClientTimeout bounds reading a client's request headers and idle
	// keep-alive connections; ShutdownTimeout how long in-flight requests
	// may finish on SIGTERM.
	ClientTimeout   time.Duration
	ShutdownTimeout time.Duration
	// TLS is [DEFAULT] cert_file, key_file (Swift's proxy-server names)
	// and ca_file (client certificates required); serve.go.
	TLS tlsconf.Options
	// MaxProcs is [DEFAULT] max_procs: how many threads run the filter's
	// Go code at once (GOMAXPROCS); 0 leaves Go's default (SetMaxProcs).
	MaxProcs int

	Filter   Config
	Keystone keystone.Config
	Keys     keyclient.Options

	// Metrics and Health are [metrics] and [healthcheck] (docs/operations.md);
	// Health.DisableByFilePath defaults to [DEFAULT] disable_by_file_path.
	Metrics metrics.Config
	Health  health.Config

	// Pipeline is [pipeline]: with socket set, the decision socket of the
	// arca middleware in the Swift proxy's pipeline is served instead of
	// the reverse proxy (pipeline.go, docs/pipeline.md).
	Pipeline PipelineSettings
}

// Sections of swift-filter.conf.
const (
	secDefault  = "DEFAULT"
	secUpstream = "upstream"
	secKeystone = keystone.Section
	secKeys     = "key_service"
	secPipeline = "pipeline"
)

// SecretOptions are the options of swift-filter.conf whose values are
// credentials: the filter's service user's password or application
// credential secret, which validate every token and read every project's
// active key id. arca-swift-filter refuses to start when a configuration file
// setting one of them is open to group or others (CheckCredentialFiles).
var SecretOptions = []config.Option{
	{Section: secKeystone, Key: "password"},
	{Section: secKeystone, Key: "application_credential_secret"},
	{Section: secKeys, Key: "password"},
	{Section: secKeys, Key: "application_credential_secret"},
}

// CheckCredentialFiles refuses any of the --config-file paths that sets one
// of SecretOptions while group or others have any access to it.
func CheckCredentialFiles(paths []string) error {
	return config.CheckCredentialFiles(paths, SecretOptions...)
}

// LoadSettings reads a loaded swift-filter.conf. All bad values are reported
// together.
func LoadSettings(f *config.File) (Settings, error) {
	s := loadServer(f)
	s.Filter = loadFilter(f)
	s.Keystone = keystone.LoadConfig(f)
	s.Keys = loadKeys(f)
	s.Metrics = metrics.LoadConfig(f, s.BindPort)
	s.Health = health.LoadConfig(f)
	s.Pipeline = PipelineSettings{
		Socket:      f.String(secPipeline, "socket", ""),
		Group:       f.String(secPipeline, "socket_group", ""),
		IdleTimeout: f.Seconds(secPipeline, "idle_timeout", 5*time.Minute),
	}
	if s.Health.DisableByFilePath == "" {
		s.Health.DisableByFilePath = s.Filter.DisableByFilePath
	}
	if err := f.Err(); err != nil {
		return s, err
	}
	if err := s.Metrics.Check(); err != nil {
		return s, err
	}
	if s.Keystone.AuthURL == "" {
		return s, errors.New("[keystone_authtoken] auth_url is required: the filter validates every X-Auth-Token")
	}
	if len(ParsePrefixes(s.Filter.ResellerPrefixes)) == 0 {
		return s, fmt.Errorf("[DEFAULT] reseller_prefix lists no prefix")
	}
	s.Filter.WWWAuthenticate = keystone.WWWAuthenticate(s.Keystone)
	// A validation may need the service user's authentication first.
	s.Filter.TokenTimeout = 2*s.Keystone.HTTPTimeout + time.Second
	return s, nil
}

// loadServer reads the listener's options of [DEFAULT].
func loadServer(f *config.File) Settings {
	return Settings{
		BindIP:           f.String(secDefault, "bind_ip", "0.0.0.0"),
		BindPort:         f.Int(secDefault, "bind_port", 8080, 1, 65535),
		LogFormat:        f.Choice(secDefault, "log_format", "text", "text", "json"),
		Debug:            f.Bool(secDefault, "debug", false),
		LogFlushInterval: f.Seconds(secDefault, "log_flush_interval", logging.DefaultFlushInterval),
		ClientTimeout:    f.Seconds(secDefault, "client_timeout", 60*time.Second),
		ShutdownTimeout:  f.Seconds(secDefault, "shutdown_timeout", 30*time.Second),
		MaxProcs:         f.Int(secDefault, "max_procs", 0, 0, maxMaxProcs),
		TLS: tlsconf.Options{
			CertFile: f.String(secDefault, "cert_file", ""),
			KeyFile:  f.String(secDefault, "key_file", ""),
			CAFile:   f.String(secDefault, "ca_file", ""),
			Names:    tlsconf.SwiftNames,
		},
	}
}

// maxMaxProcs bounds [DEFAULT] max_procs: a value beyond any machine's
// cores is a typo, not a setting.
const maxMaxProcs = 4096

// DefaultIdleConnTimeout is how long an idle keep-alive connection to the
// Swift proxy is kept: below the proxy's client_timeout (60 s by
// default), after which eventlet closes an idle connection, so that the
// filter drops its end first rather than send a request on a connection
// the proxy is closing.
const DefaultIdleConnTimeout = 50 * time.Second

// loadFilter reads the filter's own options and [upstream].
func loadFilter(f *config.File) Config {
	return Config{
		ResellerPrefixes:      f.List(secDefault, "reseller_prefix", []string{"AUTH"}),
		DisableByFilePath:     f.String(secDefault, "disable_by_file_path", ""),
		AccessLog:             f.Bool(secDefault, "access_log", true),
		Upstream:              f.String(secUpstream, "url", "http://127.0.0.1:8081"),
		ConnTimeout:           f.Seconds(secUpstream, "conn_timeout", 2*time.Second),
		ResponseHeaderTimeout: f.Seconds(secUpstream, "node_timeout", 60*time.Second),
		ExpectContinueTimeout: f.Seconds(secUpstream, "expect_continue_timeout", 10*time.Second),
		IdleConnTimeout:       f.Seconds(secUpstream, "idle_conn_timeout", DefaultIdleConnTimeout),
		MaxIdleConns:          f.Int(secUpstream, "max_idle_conns", 256, 1, 100000),
		KeyTimeout:            f.Seconds(secKeys, "timeout", keyclient.DefaultTimeout),
	}
}

// loadKeys reads [key_service]. The key service is reached as a service
// user: its own credentials in [key_service], or those of
// [keystone_authtoken] when it sets no auth_url of its own.
func loadKeys(f *config.File) keyclient.Options {
	cred := secKeys
	if !f.Has(secKeys, "auth_url") {
		cred = secKeystone
	}
	return keyclient.Options{
		Credentials: keystone.LoadCredentials(f, cred, keystone.Credentials{}),
		Endpoint:    f.String(secKeys, "endpoint", ""),
		Region:      f.String(secKeys, "region_name", f.String(secKeystone, "region_name", "")),
		Interface:   f.Choice(secKeys, "interface", "public", "public", "internal", "admin"),
		NoAuth:      f.Bool(secKeys, "noauth", false),
		ActiveTTL:   f.Seconds(secKeys, "active_key_cache_ttl", keyclient.DefaultActiveTTL),
		MaterialTTL: keyclient.DefaultMaterialTTL, // the filter never reads key bytes
		ErrorTTL:    f.Seconds(secKeys, "error_cache_ttl", keyclient.DefaultErrorTTL),
		CacheSize:   f.Int(secKeys, "cache_size", keyclient.DefaultCacheSize, 1, 10000000),
		Timeout:     f.Seconds(secKeys, "timeout", keyclient.DefaultTimeout),
	}
}
