package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ArcaPythonPath is the folder of the arca middleware's Python package
// (swiftfilter/python), for a proxy's PYTHONPATH.
func ArcaPythonPath() string { return filepath.Join(repoRoot(), "swiftfilter", "python") }

// PipelinePipeline is WholePathPipeline with the arca middleware where it
// belongs: right of every middleware that builds subrequests, before the
// final proxy-logging (docs/pipeline.md).
var PipelinePipeline = strings.Replace(WholePathPipeline, "symlink proxy-logging proxy-server", "symlink arca proxy-logging proxy-server", 1)

// PipelineProxyConfig is WholePathProxyConfig with the arca middleware in
// its pipeline (PipelinePipeline), asking the decision socket at socket.
func PipelineProxyConfig(t testing.TB, swiftDir, ringDir string, port int, socket string) string {
	t.Helper()
	return pipelineProxyConfig(t, swiftDir, ringDir, port, socket, ProxyOptions{})
}

func pipelineProxyConfig(t testing.TB, swiftDir, ringDir string, port int, socket string, o ProxyOptions) string {
	t.Helper()
	conf := WholePathProxyConfig(t, swiftDir, ringDir, port)
	conf = pipelineLine.ReplaceAllString(conf, "pipeline = "+PipelinePipeline)
	if o.TempURL {
		conf = withTempURL(t, conf)
	}
	factory := o.Factory
	if factory == "" {
		factory = "arca_swift.middleware:filter_factory"
	}
	return conf + fmt.Sprintf("[filter:arca]\npaste.filter_factory = %s\nsocket = %s\ntimeout = 10\n", factory, socket)
}

// StartPipelineProxy starts a swift-proxy-server configured by
// PipelineProxyConfig (the arca package on its PYTHONPATH) on the rings in
// ringDir and a free port, its configuration written in work as name.conf,
// and returns it with its URL. The caller waits for it.
func StartPipelineProxy(t testing.TB, swiftDir, ringDir, work, name, socket string) (*Proc, string) {
	t.Helper()
	return StartPipelineProxyWith(t, swiftDir, ringDir, work, name, socket, ProxyOptions{})
}

// StartPipelineProxyWith is StartPipelineProxy adjusted by o.
func StartPipelineProxyWith(t testing.TB, swiftDir, ringDir, work, name, socket string, o ProxyOptions) (*Proc, string) {
	t.Helper()
	port := FreePort(t)
	return startProxy(t, work, name, port, pipelineProxyConfig(t, swiftDir, ringDir, port, socket, o),
		"/usr/bin/env", "PYTHONPATH="+ArcaPythonPath(), "swift-proxy-server")
}

// DecisionSocketOptions describe an arca-swift-filter serving the
// pipeline's decision socket.
type DecisionSocketOptions struct {
	// Work is where its configuration is written; Socket its socket file
	// (default Work/decision.sock) and Group the group that may connect.
	Work, Socket, Group string
	// KeyServiceURL is arca-api's.
	KeyServiceURL string
	// CacheTTL is the seconds of its key caches; 0 means 1.
	CacheTTL int
	// ActiveTTL, when set, is its active_key_cache_ttl instead of
	// CacheTTL (a cache that outlives a rotation).
	ActiveTTL int
}

// StartDecisionSocket starts arca-swift-filter with [pipeline] socket set,
// as the stack's arca-filter user, waits until its socket file exists and
// returns it with the socket's path.
func StartDecisionSocket(t testing.TB, ks *KeystoneEnv, o DecisionSocketOptions) (*Proc, string) {
	t.Helper()
	ttl := o.CacheTTL
	if ttl <= 0 {
		ttl = 1
	}
	active := o.ActiveTTL
	if active <= 0 {
		active = ttl
	}
	socket := o.Socket
	if socket == "" {
		socket = filepath.Join(o.Work, "decision.sock")
	}
	body := fmt.Sprintf(`[DEFAULT]
reseller_prefix = AUTH
access_log = true
`+LogEveryLine+`[pipeline]
socket = %s
socket_group = %s
[metrics]
enabled = false
`, socket, o.Group) + filterKeyConfig(ks, o.KeyServiceURL, active, ttl)
	conf := filepath.Join(o.Work, "swift-filter-pipeline.conf")
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(socket)
	p := StartProc(t, NewLog(t, "arca-swift-filter pipeline"), filepath.Join(Binaries(t), "arca-swift-filter"), "--config-file", conf)
	deadline := time.Now().Add(healthTimeout)
	for {
		if fi, err := os.Stat(socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p, socket
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("arca-swift-filter made no socket %s:\n%s", socket, p.Log.Tail(failureTail))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
