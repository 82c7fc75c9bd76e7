package objectserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/tlsconf"
	"opendev.org/x/arca/internal/tlsconf/tlsconftest"
)

// serveTLS runs srv.Serve on a free port; it returns the address, or the
// error Serve returned at once.
func serveTLS(t *testing.T, e *env) (string, error) {
	t.Helper()
	return serveTLSWaiting(t, e, 100*time.Millisecond)
}

// serveTLSWaiting is serveTLS waiting up to wait for Serve to fail: long
// for options that must fail (a loaded machine may take its time to load
// them), short for ones that must serve (their requests show a failure).
func serveTLSWaiting(t *testing.T, e *env, wait time.Duration) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-errc })
	select {
	case err := <-errc:
		errc <- err
		return "", err
	case <-time.After(wait):
	}
	return ln.Addr().String(), nil
}

// TestTLSListener: cert_file, key_file and ca_file are read from [DEFAULT]
// (or [app:object-server]); with them the listener speaks TLS and admits
// only clients with a certificate from ca_file's CA; without ca_file no
// client certificate is asked for; inconsistent options stop Serve.
func TestTLSListener(t *testing.T) {
	te := tlsconftest.New(t)
	f, err := config.Parse(fmt.Appendf(nil, "[DEFAULT]\ncert_file = %s\nkey_file = %s\n[app:object-server]\nca_file = %s\n[arca]\ncrypto_driver = none\n",
		te.CertFile, te.KeyFile, te.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	want := tlsconf.Options{CertFile: te.CertFile, KeyFile: te.KeyFile, CAFile: te.CAFile, Names: tlsconf.SwiftNames}
	if cfg.TLS != want {
		t.Fatalf("TLS options %+v, want %+v", cfg.TLS, want)
	}

	e := newEnv(t, func(c *Config) { c.TLS = want })
	addr, err := serveTLS(t, e)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := te.Good(t).Get("https://" + addr + "/healthcheck")
	if err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthcheck over TLS: %s %s", resp.Status, body)
	}
	te.CheckRefused(t, addr, "/healthcheck")

	// Server certificate only: no client certificate needed.
	e2 := newEnv(t, func(c *Config) {
		c.TLS = tlsconf.Options{CertFile: te.CertFile, KeyFile: te.KeyFile, Names: tlsconf.SwiftNames}
	})
	addr2, err := serveTLS(t, e2)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = te.Client(t, nil, nil, 0).Get("https://" + addr2 + "/healthcheck")
	if err != nil {
		t.Fatalf("TLS without client certificates: %v", err)
	}
	resp.Body.Close()

	for _, o := range []tlsconf.Options{
		{CertFile: te.CertFile},
		{CAFile: te.CAFile},
		{CertFile: te.CertFile, KeyFile: te.CAFile},
		{CertFile: te.CertFile, KeyFile: te.KeyFile, CAFile: te.KeyFile},
	} {
		o.Names = tlsconf.SwiftNames
		e := newEnv(t, func(c *Config) { c.TLS = o })
		_, err := serveTLSWaiting(t, e, time.Minute)
		if err == nil {
			t.Errorf("options %+v: served", o)
		} else if strings.Contains(err.Error(), "ssl_") {
			t.Errorf("options %+v: error names oslo's options: %v", o, err)
		}
	}
}
