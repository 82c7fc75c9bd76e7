package objectserver

import (
	"fmt"
	"net/netip"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/serve"
	"opendev.org/x/arca/internal/tlsconf"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
)

// Config is the object server's configuration; etc/arca/object-server.conf.sample
// documents every option.
type Config struct {
	Devices     string
	MountCheck  bool
	BindIP      string
	BindPort    int
	Workers     int
	SwiftDir    string
	SwiftConf   string
	ReclaimAge  time.Duration
	ConnTimeout time.Duration
	NodeTimeout time.Duration
	// ContainerUpdateTimeout is how long a request waits for its container
	// updates before answering (they go on in the background).
	ContainerUpdateTimeout time.Duration
	ClientTimeout          time.Duration
	// ReplicationConcurrency is Swift's replication_concurrency: how many
	// SSYNC exchanges this server takes at once (0: no limit); one more
	// answers 503, as Swift's receiver does (Load's default is Swift's, 4).
	ReplicationConcurrency int
	MaxFileSize            int64
	AllowedHeaders         []string
	ReplicationServer      bool
	// FallocateReserve and DisableFallocate are Swift's fallocate_reserve
	// (default 1%) and disable_fallocate (diskfile.Writer.Allocate).
	FallocateReserve diskfile.Reserve
	DisableFallocate bool
	LogLevel         string
	LogFormat        string
	// LogFlushInterval is log_flush_interval: how long info lines (the
	// access log) may wait in memory (logging.NewBuffered; 0: none wait).
	LogFlushInterval time.Duration
	// ShutdownTimeout is shutdown_timeout: how long in-flight requests
	// may finish after SIGTERM (serve.DefaultGrace).
	ShutdownTimeout time.Duration
	// Metrics and Health are [metrics] and [healthcheck]
	// (docs/operations.md).
	Metrics metrics.Config
	Health  health.Config
	// TLS is cert_file, key_file (Swift's names) and ca_file (client
	// certificates required), read like every other [DEFAULT] option.
	TLS tlsconf.Options

	// [arca]
	Encrypt          bool // crypto_driver = objcrypt (false: none)
	Algorithm        objcrypt.Algorithm
	SegmentSize      int
	StoredEtag       bool // ETag = md5(ciphertext) so Swift's auditor can check it
	DecryptWorkers   int
	ResellerPrefixes []string
	KeyStore         string // crypto_keystore_driver
	KeyClient        keyclient.Options
	// LegacyPlaintextBefore (legacy_plaintext_before; zero: off) is the
	// migration option of a node that stored objects before encryption was
	// turned on: with crypto_driver = objcrypt, an object with no Arca
	// metadata and no objcrypt header is served as plaintext only when its
	// .data timestamp is before it. Everything else without Arca metadata
	// is refused and quarantined (stored.go).
	LegacyPlaintextBefore time.Time
	// TrustedNetworks (trusted_networks) are the peers the server answers
	// (trust.go); nil when unset: loopback only, and no listening beyond it.
	TrustedNetworks []netip.Prefix
}

// Sections the object server reads, as Swift reads [DEFAULT] and then
// [app:object-server].
const (
	secDefault = "DEFAULT"
	secApp     = "app:object-server"
	secArca    = "arca"
)

// DefaultAllowedHeaders are Swift 2.30's allowed_headers.
var DefaultAllowedHeaders = []string{
	"content-disposition", "content-encoding", "x-delete-at", "x-object-manifest",
	"x-static-large-object", "cache-control", "content-language", "expires", "x-robots-tag",
}

// LoadConfig reads the configuration.
func LoadConfig(f *config.File) (*Config, error) {
	str := func(key, def string) string {
		return f.String(secApp, key, f.String(secDefault, key, def))
	}
	boolean := func(key string, def bool) bool {
		return f.Bool(secApp, key, f.Bool(secDefault, key, def))
	}
	integer := func(key string, def, lo, hi int) int {
		return f.Int(secApp, key, f.Int(secDefault, key, def, lo, hi), lo, hi)
	}
	secs := func(key string, def time.Duration) time.Duration {
		return f.Seconds(secApp, key, f.Seconds(secDefault, key, def))
	}
	c := &Config{
		Devices:                str("devices", "/srv/node"),
		MountCheck:             boolean("mount_check", true),
		BindIP:                 str("bind_ip", "0.0.0.0"),
		BindPort:               integer("bind_port", 6200, 0, 65535),
		Workers:                integer("workers", 0, 0, 1024),
		SwiftDir:               str("swift_dir", "/etc/swift"),
		SwiftConf:              str("swift_conf", "/etc/swift/swift.conf"),
		ReclaimAge:             secs("reclaim_age", 7*24*time.Hour),
		ConnTimeout:            secs("conn_timeout", 500*time.Millisecond),
		NodeTimeout:            secs("node_timeout", 3*time.Second),
		ContainerUpdateTimeout: secs("container_update_timeout", time.Second),
		ClientTimeout:          secs("client_timeout", 60*time.Second),
		ReplicationConcurrency: integer("replication_concurrency", 4, 0, 1<<16),
		ShutdownTimeout:        secs("shutdown_timeout", serve.DefaultGrace),
		MaxFileSize:            int64(integer("max_file_size", 5368709122, 1, 1<<62)),
		AllowedHeaders:         f.List(secApp, "allowed_headers", DefaultAllowedHeaders),
		ReplicationServer:      boolean("replication_server", true),
		DisableFallocate:       boolean("disable_fallocate", false),
		LogLevel:               f.Choice(secDefault, "log_level", "info", "debug", "info", "warning", "error"),
		LogFormat:              f.Choice(secDefault, "log_format", "text", "text", "json"),
		LogFlushInterval:       f.Seconds(secDefault, "log_flush_interval", logging.DefaultFlushInterval),
		TLS: tlsconf.Options{
			CertFile: str("cert_file", ""), KeyFile: str("key_file", ""), CAFile: str("ca_file", ""),
			Names: tlsconf.SwiftNames,
		},
	}
	reserve, err := diskfile.ParseReserve(str("fallocate_reserve", diskfile.DefaultReserve.String()))
	if err != nil {
		return nil, fmt.Errorf("fallocate_reserve: %w", err)
	}
	c.FallocateReserve = reserve
	if err := loadArca(f, c); err != nil {
		return nil, err
	}
	c.Metrics = metrics.LoadConfig(f, c.BindPort)
	c.Health = health.LoadConfig(f)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if err := c.Metrics.Check(); err != nil {
		return nil, err
	}
	if c.Encrypt && !c.KeyClient.NoAuth && c.KeyClient.Credentials.AuthURL == "" {
		return nil, fmt.Errorf("[arca] auth_url is required (or key_service_noauth = true for development)")
	}
	return c, nil
}

// loadArca reads [arca]: encryption, the key service, the migration and
// trust options.
func loadArca(f *config.File, c *Config) error {
	c.Encrypt = f.Choice(secArca, "crypto_driver", "objcrypt", "objcrypt", "none") == "objcrypt"
	alg, err := objcrypt.ParseAlgorithm(f.String(secArca, "crypto_protocol", "aes_256_cbc"))
	if err != nil {
		return fmt.Errorf("[arca] crypto_protocol: %w", err)
	}
	c.Algorithm = alg
	c.SegmentSize = f.Int(secArca, "segment_size", objcrypt.DefaultSegmentSize, objcrypt.MinSegmentSize, objcrypt.MaxSegmentSize)
	c.StoredEtag = f.Bool(secArca, "stored_etag", true)
	c.DecryptWorkers = f.Int(secArca, "decrypt_workers", 0, 0, 256)
	c.ResellerPrefixes = f.List(secArca, "reseller_prefixes", []string{"AUTH_"})
	c.KeyStore = f.Choice(secArca, "crypto_keystore_driver", "keyservice", "keyservice", "sql")
	if c.KeyStore == "sql" {
		return fmt.Errorf("[arca] crypto_keystore_driver = sql is not supported by arca-object-server: keys come from arca-api (keyservice)")
	}
	c.KeyClient = loadKeyClient(f)
	if v := f.String(secArca, "legacy_plaintext_before", ""); v != "" {
		t, err := parseCutoff(v)
		if err != nil {
			return fmt.Errorf("[arca] legacy_plaintext_before: %w", err)
		}
		c.LegacyPlaintextBefore = t
	}
	if f.Has(secArca, "trusted_networks") {
		nets, err := parseNetworks(f.List(secArca, "trusted_networks", nil))
		if err != nil {
			return fmt.Errorf("[arca] trusted_networks: %w", err)
		}
		c.TrustedNetworks = nets
	}
	return nil
}

// loadKeyClient reads the key client's options of [arca]; the credentials
// are a service user's, read as every binary reads them
// (keystone.LoadCredentials).
func loadKeyClient(f *config.File) keyclient.Options {
	return keyclient.Options{
		Endpoint:  f.String(secArca, "key_service_url", ""),
		Region:    f.String(secArca, "region_name", ""),
		Interface: f.String(secArca, "interface", "internal"),
		NoAuth:    f.Bool(secArca, "key_service_noauth", false),
		// a password of the object servers' user, or an application credential
		Credentials: keystone.LoadCredentials(f, secArca, keystone.Credentials{
			UserDomainName: "Default", ProjectName: "service", ProjectDomainName: "Default",
		}),
		ActiveTTL:   f.Seconds(secArca, "active_key_cache_ttl", keyclient.DefaultActiveTTL),
		MaterialTTL: f.Seconds(secArca, "key_cache_ttl", keyclient.DefaultMaterialTTL),
		ErrorTTL:    f.Seconds(secArca, "error_cache_ttl", keyclient.DefaultErrorTTL),
		CacheSize:   f.Int(secArca, "key_cache_size", keyclient.DefaultCacheSize, 1, 1<<24),
		Timeout:     f.Seconds(secArca, "key_service_timeout", keyclient.DefaultTimeout),
	}
}

// parseCutoff reads legacy_plaintext_before: a UNIX time in seconds, as
// Swift's X-Timestamp writes it (1767225600 or 1767225600.12345), or an
// RFC 3339 date and time with its zone (2026-01-01T00:00:00Z).
func parseCutoff(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	ts, err := diskfile.ParseTimestamp(v)
	if err != nil || ts.Raw <= 0 {
		return time.Time{}, fmt.Errorf("%q is neither a UNIX time in seconds nor an RFC 3339 time", v)
	}
	return ts.Time(), nil
}
