package app

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/serve"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/hsm"
)

// Config is arca-api's configuration (etc/arca/arca.conf.sample documents
// every option).
type Config struct {
	Debug     bool
	LogFormat string
	// LogFlushInterval is [DEFAULT] log_flush_interval: how long info
	// lines may wait in memory (logging.NewBuffered; 0: none wait).
	LogFlushInterval time.Duration

	BindHost string
	BindPort int
	// HostHref is the base URL of refs; empty derives it per request.
	HostHref string
	// AuthStrategy is "keystone" or "noauth" (development only).
	AuthStrategy string
	// AllowInsecureNoAuthBind is [DEFAULT] allow_insecure_noauth_bind: lets
	// auth_strategy = noauth listen beyond loopback, where anyone who
	// reaches the port is whichever project and role its headers claim.
	AllowInsecureNoAuthBind bool

	// ReadHeaderTimeout and ReadTimeout cut off slow clients.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout is [DEFAULT] shutdown_timeout: how long in-flight
	// requests may finish, and queued audit records be written, after
	// SIGTERM (serve.DefaultGrace).
	ShutdownTimeout time.Duration

	DatabaseURL     string
	MaxPoolSize     int
	ConnMaxLifetime time.Duration

	// MasterKeyFile holds the master keys; ARCA_MASTER_KEYS, when set,
	// holds them instead (same format, lines or ';'-separated).
	MasterKeyFile string
	// MasterKeyBackend is [crypto] master_key_backend: "file" (the key
	// file or ARCA_MASTER_KEYS) or "pkcs11" (a token, PKCS11; a key file
	// that exists then still opens the KEKs it sealed until a rewrap).
	MasterKeyBackend string
	// PKCS11 is the [pkcs11] section (master_key_backend = pkcs11).
	PKCS11 hsm.Config
	// MultipleSecretStores is [secretstore] enable_multiple_secret_stores:
	// the key file and the PKCS#11 token are then two secret stores
	// (keyservice/secretstores.go), the global default being the one
	// master_key_backend names.
	MultipleSecretStores bool
	// KEKCacheTTL is [crypto] kek_cache_ttl: how long an opened project
	// KEK stays in memory (keyservice.Options.KEKCacheTTL).
	KEKCacheTTL time.Duration

	// CryptoProtocol sizes project data keys (aes_128_cbc or aes_256_cbc).
	CryptoProtocol string

	EnforceNewDefaults bool
	PolicyFile         string

	// Metrics and Health are the [metrics] and [healthcheck] sections
	// (docs/operations.md).
	Metrics metrics.Config
	Health  health.Config

	// Quotas are the default quotas of every project ([quotas] quota_*,
	// -1 unlimited), as Barbican names them.
	Quotas keyservice.Quotas
	// BlockDeleteWithConsumers refuses to delete a secret that has
	// consumers unless the request says ?force=true.
	BlockDeleteWithConsumers bool

	// ActiveKeyCacheTTL is [project_keys] active_key_cache_ttl: the largest
	// active_key_cache_ttl of any object server plus a margin
	// (keyservice.ActiveKeyCacheMargin). A project key
	// deactivated less than this long ago is destroyed only with force
	// (object servers may still be writing under it).
	ActiveKeyCacheTTL time.Duration

	// Raw is the parsed file, for the sections other packages own
	// ([keystone_authtoken]).
	Raw *config.File
}

// isLoopback reports whether bind_host listens on loopback only: a
// loopback IP address or "localhost". Names are not resolved here (what a
// name resolves to can change after the check): Serve checks the address
// "localhost" was opened on (checkNoAuthListener). The empty host, 0.0.0.0
// and :: listen everywhere.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// checkNoAuthListener checks, once the listener is open, that a no-auth
// arca-api listens on a loopback address: bind_host "localhost" passes
// CheckNoAuthBind by its name, and a host whose name service maps it
// elsewhere would otherwise open no-auth to the network.
func (c Config) checkNoAuthListener(addr net.Addr) error {
	if c.AuthStrategy != "noauth" || c.AllowInsecureNoAuthBind {
		return nil
	}
	tcp, ok := addr.(*net.TCPAddr)
	if ok && tcp.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("auth_strategy = noauth: bind_host %q is listening on %s, beyond loopback; "+
		"refusing (set allow_insecure_noauth_bind = true to allow it)", c.BindHost, addr)
}

// CheckNoAuthBind refuses auth_strategy = noauth on a bind_host beyond
// loopback unless allow_insecure_noauth_bind says so: no-auth believes the
// project and roles of any caller's headers. arca-api checks it before it
// opens anything; arca-manage, which listens nowhere, does not.
func (c Config) CheckNoAuthBind() error {
	if c.AuthStrategy != "noauth" || isLoopback(c.BindHost) || c.AllowInsecureNoAuthBind {
		return nil
	}
	return fmt.Errorf("auth_strategy = noauth trusts X-Project-Id and X-Roles from whoever connects, "+
		"so it listens on loopback only: bind_host %q is not a loopback address; use 127.0.0.1 or ::1, "+
		"or set [DEFAULT] allow_insecure_noauth_bind = true to expose it anyway", c.BindHost)
}

// LoadConfig reads arca.conf files (later ones override earlier ones).
func LoadConfig(paths ...string) (Config, error) {
	f, err := config.Load(paths...)
	if err != nil {
		return Config{}, err
	}
	return ConfigFrom(f)
}

// ConfigFrom reads the options from a parsed file, reporting every bad
// value at once.
func ConfigFrom(f *config.File) (Config, error) {
	c := Config{
		Debug:                f.Bool("DEFAULT", "debug", false),
		LogFormat:            f.Choice("DEFAULT", "log_format", "text", "text", "json"),
		LogFlushInterval:     f.Seconds("DEFAULT", "log_flush_interval", logging.DefaultFlushInterval),
		BindHost:             f.String("DEFAULT", "bind_host", "127.0.0.1"),
		BindPort:             f.Int("DEFAULT", "bind_port", 9311, 1, 65535),
		HostHref:             f.String("DEFAULT", "host_href", ""),
		AuthStrategy:         f.Choice("DEFAULT", "auth_strategy", "keystone", "keystone", "noauth"),
		ReadHeaderTimeout:    f.Seconds("DEFAULT", "client_header_timeout", 10*time.Second),
		ReadTimeout:          f.Seconds("DEFAULT", "client_socket_timeout", 60*time.Second),
		WriteTimeout:         f.Seconds("DEFAULT", "client_write_timeout", 60*time.Second),
		IdleTimeout:          f.Seconds("DEFAULT", "client_idle_timeout", 120*time.Second),
		ShutdownTimeout:      f.Seconds("DEFAULT", "shutdown_timeout", serve.DefaultGrace),
		DatabaseURL:          f.String("database", "connection", ""),
		MaxPoolSize:          f.Int("database", "max_pool_size", 32, 1, 4096),
		ConnMaxLifetime:      f.Seconds("database", "connection_recycle_time", time.Hour),
		MasterKeyFile:        f.String("crypto", "master_key_file", "/etc/arca/master.key"),
		MasterKeyBackend:     f.Choice("crypto", "master_key_backend", "file", "file", "pkcs11"),
		KEKCacheTTL:          f.Seconds("crypto", "kek_cache_ttl", keyservice.DefaultKEKCacheTTL),
		MultipleSecretStores: f.Bool("secretstore", "enable_multiple_secret_stores", false),
		CryptoProtocol:       f.Choice("crypto", "crypto_protocol", "aes_128_cbc", "aes_128_cbc", "aes_256_cbc"),
		EnforceNewDefaults:   f.Bool("oslo_policy", "enforce_new_defaults", true),
		PolicyFile:           f.String("oslo_policy", "policy_file", ""),
		Raw:                  f,
		Health:               health.LoadConfig(f),

		BlockDeleteWithConsumers: f.Bool("DEFAULT", "block_delete_with_consumers", true),
		ActiveKeyCacheTTL:        f.Seconds("project_keys", "active_key_cache_ttl", keyservice.DefaultActiveKeyCacheTTL),
		Quotas:                   keyservice.Quotas{},
	}
	c.PKCS11 = hsm.Config{
		Library:    f.String("pkcs11", "library_path", ""),
		TokenLabel: f.String("pkcs11", "token_label", ""),
		PIN:        f.String("pkcs11", "pin", ""),
		KeyLabel:   f.String("pkcs11", "key_label", hsm.DefaultKeyLabel),
		Sessions:   f.Int("pkcs11", "sessions", hsm.DefaultSessions, 2, 1024),
	}
	if pin := os.Getenv("ARCA_PKCS11_PIN"); pin != "" {
		c.PKCS11.PIN = pin
	}
	c.AllowInsecureNoAuthBind = f.Bool("DEFAULT", "allow_insecure_noauth_bind", false)
	c.Metrics = metrics.LoadConfig(f, c.BindPort)
	for _, r := range keyservice.QuotaResources {
		c.Quotas[r] = f.Int("quotas", "quota_"+r, keyservice.Unlimited, keyservice.Unlimited, 1<<31-1)
	}
	if err := f.Err(); err != nil {
		return c, err
	}
	if err := c.Metrics.Check(); err != nil {
		return c, err
	}
	if c.ActiveKeyCacheTTL <= 0 {
		// Zero would let a key be destroyed while object servers still
		// encrypt new writes under it.
		return c, fmt.Errorf("[project_keys] active_key_cache_ttl must be more than 0 (the largest active_key_cache_ttl of the object servers plus a margin, default %d)", int(keyservice.DefaultActiveKeyCacheTTL/time.Second))
	}
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("[database] connection is not set: use e.g. mysql+pymysql://arca:PASSWORD@127.0.0.1/arca or sqlite:////var/lib/arca/arca.sqlite")
	}
	if c.KEKCacheTTL <= 0 {
		return c, fmt.Errorf("[crypto] kek_cache_ttl must be more than 0 (default %d)", int(keyservice.DefaultKEKCacheTTL/time.Second))
	}
	if c.MultipleSecretStores && (c.PKCS11.Library == "" || c.PKCS11.TokenLabel == "" || (os.Getenv("ARCA_MASTER_KEYS") == "" && c.MasterKeyFile == "")) {
		return c, fmt.Errorf("[secretstore] enable_multiple_secret_stores needs both stores: [crypto] master_key_file (or ARCA_MASTER_KEYS) and [pkcs11] library_path and token_label")
	}
	if c.MasterKeyBackend == "pkcs11" && (c.PKCS11.Library == "" || c.PKCS11.TokenLabel == "") {
		return c, fmt.Errorf("[crypto] master_key_backend = pkcs11 needs [pkcs11] library_path and token_label")
	}
	if c.MasterKeyBackend == "file" && os.Getenv("ARCA_MASTER_KEYS") == "" && c.MasterKeyFile == "" {
		return c, fmt.Errorf("[crypto] master_key_file is empty and ARCA_MASTER_KEYS is not set")
	}
	return c, nil
}
