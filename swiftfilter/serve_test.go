package swiftfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/tlsconf/tlsconftest"
)

// served is arca-swift-filter as cmd/arca-swift-filter runs it (settings
// from a configuration file, Settings.Listen, Settings.HTTPServer) with
// fake Keystone and key service and a recording upstream.
type served struct {
	addr   string
	up     *upstream
	tokens *fakeTokens
	keys   *fakeKeys
	logs   *syncBuffer
}

// serveFilter loads a swift-filter.conf made of the given [DEFAULT] lines
// and serves it on a free port. The error is the one the listener setup
// returned (the server does not start).
func serveFilter(t *testing.T, defaultLines string) (*served, error) {
	t.Helper()
	sv := &served{up: newUpstream(t, nil), tokens: &fakeTokens{}, keys: &fakeKeys{}, logs: &syncBuffer{}}
	f, err := config.Parse(fmt.Appendf(nil, "[DEFAULT]\nreseller_prefix = AUTH, SERVICE\n%s\n[upstream]\nurl = %s\n[keystone_authtoken]\nauth_url = http://keystone.test/v3\n",
		defaultLines, sv.up.URL))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(f)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := New(s.Filter, Deps{Tokens: sv.tokens, Keys: sv.keys, Log: zerolog.New(sv.logs)})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen(tcp)
	if err != nil {
		_ = tcp.Close()
		return nil, err
	}
	srv := s.HTTPServer(filter)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	sv.addr = ln.Addr().String()
	return sv, nil
}

// TestTLSListener: [DEFAULT] cert_file, key_file and ca_file put the
// filter's listener on TLS and admit only clients with a certificate from
// ca_file's CA; refused clients reach neither the upstream nor Keystone.
// Without ca_file no client certificate is asked for; inconsistent options
// refuse to start.
func TestTLSListener(t *testing.T) {
	te := tlsconftest.New(t)
	sv, err := serveFilter(t, fmt.Sprintf("cert_file = %s\nkey_file = %s\nca_file = %s", te.CertFile, te.KeyFile, te.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "https://"+sv.addr+"/v1/AUTH_demo/c/o", nil)
	req.Header.Set("X-Auth-Token", "tok-demo")
	resp, err := te.Good(t).Do(req)
	if err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || len(sv.up.requests()) != 1 {
		t.Fatalf("over TLS: %s, %d upstream requests", resp.Status, len(sv.up.requests()))
	}
	te.CheckRefused(t, sv.addr, "/v1/AUTH_demo/c/o")
	if n, calls := len(sv.up.requests()), sv.tokens.calls.Load(); n != 1 || calls != 1 {
		t.Errorf("refused clients reached the upstream (%d requests) or Keystone (%d validations)", n, calls)
	}

	sv2, err := serveFilter(t, fmt.Sprintf("cert_file = %s\nkey_file = %s", te.CertFile, te.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = te.Client(t, nil, nil, 0).Get("https://" + sv2.addr + "/healthcheck")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("TLS without client certificates: %v %v", resp, err)
	}
	resp.Body.Close()

	for _, lines := range []string{
		"cert_file = " + te.CertFile,
		"ca_file = " + te.CAFile,
		fmt.Sprintf("cert_file = %s\nkey_file = %s", te.CertFile, te.CertFile+".missing"),
		fmt.Sprintf("cert_file = %s\nkey_file = %s\nca_file = %s", te.CertFile, te.KeyFile, te.KeyFile),
	} {
		_, err := serveFilter(t, lines)
		if err == nil {
			t.Errorf("options %q: started", lines)
		} else if strings.Contains(err.Error(), "ssl_") {
			t.Errorf("options %q: error names oslo's options: %v", lines, err)
		}
	}
}
