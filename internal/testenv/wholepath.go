package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// WholePathPipeline is the proxy pipeline of the whole-path comparisons:
// the stack's, with every middleware Swift ships that a Swift client's
// requests reach (copy, slo, dlo, versioned_writes, symlink,
// listing_formats, bulk), in the order of Swift's sample configuration.
const WholePathPipeline = "catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk authtoken keystoneauth copy slo dlo versioned_writes symlink proxy-logging proxy-server"

var pipelineLine = regexp.MustCompile(`(?m)^pipeline = .*$`)

// withoutSection is the INI text conf without its section [name].
func withoutSection(conf, name string) string {
	var out []string
	skip := false
	for _, line := range strings.Split(conf, "\n") {
		if strings.HasPrefix(line, "[") {
			skip = strings.TrimSpace(line) == "["+name+"]"
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// WholePathProxyConfig is SwiftProxyConfig with WholePathPipeline and
// versioned_writes in both of its modes: X-Versions-Location and
// X-History-Location (allow_versioned_writes) and X-Versions-Enabled
// (allow_object_versioning), and no error-limiting of object servers (a
// 507 would otherwise set both devices aside for a minute and turn every
// later request into a 503). Two proxies written by it differ only in
// their rings and port, so that whatever differs between them is their
// object tier's (or what stands in front of them).
func WholePathProxyConfig(t testing.TB, swiftDir, ringDir string, port int) string {
	t.Helper()
	conf := SwiftProxyConfig(t, swiftDir, ringDir, port)
	if !pipelineLine.MatchString(conf) {
		t.Fatalf("testenv: no pipeline line in %s/proxy-server.conf", swiftDir)
	}
	conf = pipelineLine.ReplaceAllString(conf, "pipeline = "+WholePathPipeline)
	conf = withoutSection(conf, "filter:versioned_writes")
	conf = strings.TrimRight(conf, "\n") + "\n"
	// A device one request found full (507) is not set aside for a minute:
	// one request's answer must not change the next ones'.
	if !strings.Contains(conf, "[app:proxy-server]\n") {
		t.Fatalf("testenv: no [app:proxy-server] in %s/proxy-server.conf", swiftDir)
	}
	conf = strings.Replace(conf, "[app:proxy-server]\n", "[app:proxy-server]\nerror_suppression_interval = 0\n", 1)
	for _, name := range []string{"listing_formats", "bulk", "copy", "slo", "dlo", "symlink"} {
		if !strings.Contains(conf, "[filter:"+name+"]") {
			conf += fmt.Sprintf("[filter:%s]\nuse = egg:swift#%s\n", name, name)
		}
	}
	return conf + "[filter:versioned_writes]\nuse = egg:swift#versioned_writes\nallow_versioned_writes = true\nallow_object_versioning = true\n"
}

// ProxyOptions adjust the configuration of a whole-path proxy
// (StartWholePathProxyWith) or a pipeline proxy (StartPipelineProxyWith).
type ProxyOptions struct {
	// TempURL puts tempurl and formpost in the pipeline, right of bulk
	// and left of authtoken, as Swift's sample configuration has them.
	TempURL bool
	// Factory is the arca filter's paste.filter_factory (pipeline proxy
	// only); "" means arca_swift.middleware:filter_factory. BenchFactory
	// is the same middleware with a CPU meter, for benchmarks only.
	Factory string
}

// BenchFactory is the arca middleware with its CPU meter
// (swiftfilter/python/arca_swift/bench.py): tools/bench-pipeline.sh's,
// never a production pipeline's.
const BenchFactory = "arca_swift.bench:filter_factory"

// withTempURL is conf with tempurl and formpost in its pipeline (right of
// bulk, left of authtoken) and their sections.
func withTempURL(t testing.TB, conf string) string {
	t.Helper()
	line := pipelineLine.FindString(conf)
	if !strings.Contains(line, " bulk authtoken ") {
		t.Fatalf("testenv: no \"bulk authtoken\" in the pipeline %q", line)
	}
	conf = strings.Replace(conf, line, strings.Replace(line, " bulk authtoken ", " bulk tempurl formpost authtoken ", 1), 1)
	return conf + "[filter:tempurl]\nuse = egg:swift#tempurl\n[filter:formpost]\nuse = egg:swift#formpost\n"
}

// StartWholePathProxy starts a swift-proxy-server configured by
// WholePathProxyConfig on the rings in ringDir and a free port, its
// configuration written in work as name.conf, and returns it with its URL.
// The caller waits for it (WaitHealthy on URL+"/healthcheck").
func StartWholePathProxy(t testing.TB, swiftDir, ringDir, work, name string) (*Proc, string) {
	t.Helper()
	return StartWholePathProxyWith(t, swiftDir, ringDir, work, name, ProxyOptions{})
}

// StartWholePathProxyWith is StartWholePathProxy adjusted by o.
func StartWholePathProxyWith(t testing.TB, swiftDir, ringDir, work, name string, o ProxyOptions) (*Proc, string) {
	t.Helper()
	port := FreePort(t)
	body := WholePathProxyConfig(t, swiftDir, ringDir, port)
	if o.TempURL {
		body = withTempURL(t, body)
	}
	return startProxy(t, work, name, port, body, "swift-proxy-server")
}

// startProxy writes body, a proxy-server.conf binding port, to work as
// name.conf, starts the command argv (swift-proxy-server, or what runs
// it) with that file and -v, and returns it with its URL.
func startProxy(t testing.TB, work, name string, port int, body string, argv ...string) (*Proc, string) {
	t.Helper()
	conf := filepath.Join(work, name+".conf")
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := StartProc(t, NewLog(t, name), argv[0], slices.Concat(argv[1:], []string{conf, "-v"})...)
	return p, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// filterKeyConfig is arca-swift-filter's [keystone_authtoken] section, as
// the stack's arca-filter user, and its [key_service] section: arca-api at
// endpoint, its caches' TTLs in seconds.
func filterKeyConfig(ks *KeystoneEnv, endpoint string, activeTTL, errorTTL int) string {
	fc := ks.UserConfig(UserArcaFilter)
	return fmt.Sprintf(`[keystone_authtoken]
www_authenticate_uri = %s
auth_type = %s
%s[key_service]
endpoint = %s
active_key_cache_ttl = %d
error_cache_ttl = %d
`, fc.WWWAuthenticateURI, fc.AuthType, PasswordOptions(fc), endpoint, activeTTL, errorTTL)
}

// SwiftFilterOptions describe an arca-swift-filter in front of a proxy.
type SwiftFilterOptions struct {
	// Work is where its configuration is written.
	Work string
	// Upstream is the Swift proxy's URL and KeyServiceURL arca-api's.
	Upstream, KeyServiceURL string
	// CacheTTL is the seconds of its key caches; 0 means 1.
	CacheTTL int
}

// StartSwiftFilter starts arca-swift-filter as the stack's arca-filter
// user (service and key-manager:swift-filter, as deployed), in front of
// o.Upstream with the key service at o.KeyServiceURL, waits until it
// answers its health check and returns it with its URL.
func StartSwiftFilter(t testing.TB, ks *KeystoneEnv, o SwiftFilterOptions) (*Proc, string) {
	t.Helper()
	ttl := o.CacheTTL
	if ttl <= 0 {
		ttl = 1
	}
	port := FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	body := fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
reseller_prefix = AUTH
access_log = true
`+LogEveryLine+`[upstream]
url = %s
`, port, o.Upstream) + filterKeyConfig(ks, o.KeyServiceURL, ttl, ttl)
	conf := filepath.Join(o.Work, "swift-filter.conf")
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := StartProc(t, NewLog(t, "arca-swift-filter"), filepath.Join(Binaries(t), "arca-swift-filter"), "--config-file", conf)
	p.WaitHealthy(t, url+"/healthcheck")
	return p, url
}
