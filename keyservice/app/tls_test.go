package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/internal/tlsconf/tlsconftest"
	"opendev.org/x/arca/keyservice/app"
)

// serveTLS builds arca-api in this process from a configuration with the
// given [DEFAULT] TLS lines and serves it on a free port.
func serveTLS(t *testing.T, tlsLines string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	conf := tlsconftest.WriteFile(t, dir, "arca.conf", fmt.Appendf(nil, `[DEFAULT]
auth_strategy = noauth
%s

[database]
connection = sqlite:///%s

[crypto]
master_key_file = %s

[metrics]
# an ephemeral port: two servers run side by side here
bind = 127.0.0.1:0
`, tlsLines, filepath.Join(dir, "arca.sqlite"), filepath.Join(dir, "master.key")))
	for _, args := range [][]string{{"kek", "rotate"}, {"db", "upgrade"}} {
		if out, err := testenv.Manage(t, conf, args...); err != nil {
			t.Fatalf("arca-manage %v: %v\n%s", args, err, out)
		}
	}
	cfg, err := app.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Build(ctx, cfg, zerolog.Nop(), zerolog.Nop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-errc
		_ = a.Close()
	})
	select {
	case err := <-errc: // refused to start
		errc <- err
		return "", err
	case <-time.After(200 * time.Millisecond):
	}
	return ln.Addr().String(), nil
}

// TestTLSListener serves arca-api with a certificate from a generated CA
// and ssl_ca_file set: a client with a certificate from that CA gets in,
// clients without one, with one from another CA, speaking plain HTTP or
// offering only TLS 1.1 do not; without ssl_ca_file no client certificate
// is needed; inconsistent options refuse to start.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	certs := tlsconftest.New(t)
	certFile, keyFile, caFile := certs.CertFile, certs.KeyFile, certs.CAFile

	addr, err := serveTLS(t, fmt.Sprintf("ssl_cert_file = %s\nssl_key_file = %s\nssl_ca_file = %s", certFile, keyFile, caFile))
	if err != nil {
		t.Fatal(err)
	}
	get := func(c *http.Client, url string) (int, string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Project-Id", "demo")
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	base := "https://" + addr
	if status, body, err := get(certs.Good(t), base+"/v1/secrets"); err != nil || status != 200 {
		t.Fatalf("client with a certificate from the CA: %d %s %v", status, body, err)
	}
	if status, body, _ := get(certs.Good(t), base+"/v1"); !strings.Contains(body, "https://"+addr) {
		t.Errorf("refs over TLS should be https: %d %s", status, body)
	}
	// No client certificate, one from another CA, TLS 1.1 and plain HTTP
	// are all refused.
	certs.CheckRefused(t, addr, "/v1/secrets")

	// Server certificate only: no client certificate required.
	addr2, err := serveTLS(t, fmt.Sprintf("ssl_cert_file = %s\nssl_key_file = %s", certFile, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if status, body, err := get(certs.Client(t, nil, nil, 0), "https://"+addr2+"/v1/secrets"); err != nil || status != 200 {
		t.Fatalf("TLS without client certificates: %d %s %v", status, body, err)
	}

	// Inconsistent options stop the server at start.
	for _, lines := range []string{
		"ssl_cert_file = " + certFile,
		"ssl_ca_file = " + caFile,
		fmt.Sprintf("ssl_cert_file = %s\nssl_key_file = %s", certFile, filepath.Join(dir, "missing.key")),
		fmt.Sprintf("ssl_cert_file = %s\nssl_key_file = %s\nssl_ca_file = %s", certFile, keyFile, keyFile),
	} {
		if _, err := serveTLS(t, lines); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("options %q: started (%v)", lines, err)
		}
	}
}
