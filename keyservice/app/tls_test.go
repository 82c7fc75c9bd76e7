package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/testapi"
	"opendev.org/x/arca/keyservice/app"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for a server (127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveTLS builds arca-api in this process from a configuration with the
// given [DEFAULT] TLS lines and serves it on a free port.
func serveTLS(t *testing.T, tlsLines string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	conf := writeFile(t, dir, "arca.conf", fmt.Appendf(nil, `[DEFAULT]
auth_strategy = noauth
%s

[database]
connection = sqlite:///%s

[crypto]
master_key_file = %s
`, tlsLines, filepath.Join(dir, "arca.sqlite"), filepath.Join(dir, "master.key")))
	for _, args := range [][]string{{"kek", "rotate"}, {"db", "upgrade"}} {
		if out, err := testapi.Manage(t, conf, args...); err != nil {
			t.Fatalf("arca-manage %v: %v\n%s", args, err, out)
		}
	}
	cfg, err := app.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Build(ctx, cfg, zerolog.Nop())
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
	ca, rogue := newCA(t, "Arca Test CA"), newCA(t, "Rogue CA")
	srvCert, srvKey := ca.issue(t, "arca-api", true)
	cliCert, cliKey := ca.issue(t, "arca-swift-filter", false)
	rogueCert, rogueKey := rogue.issue(t, "mallory", false)
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certFile, keyFile := writeFile(t, dir, "server.pem", srvCert), writeFile(t, dir, "server.key", srvKey)

	addr, err := serveTLS(t, fmt.Sprintf("ssl_cert_file = %s\nssl_key_file = %s\nssl_ca_file = %s", certFile, keyFile, caFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := func(certPEM, keyPEM []byte, maxVersion uint16) *http.Client {
		conf := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
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
	if status, body, err := get(client(cliCert, cliKey, 0), base+"/v1/secrets"); err != nil || status != 200 {
		t.Fatalf("client with a certificate from the CA: %d %s %v", status, body, err)
	}
	if status, body, _ := get(client(cliCert, cliKey, 0), base+"/v1"); !strings.Contains(body, "https://"+addr) {
		t.Errorf("refs over TLS should be https: %d %s", status, body)
	}
	refused := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"no client certificate", client(nil, nil, 0), base + "/v1/secrets"},
		{"certificate from another CA", client(rogueCert, rogueKey, 0), base + "/v1/secrets"},
		{"TLS 1.1 only", client(cliCert, cliKey, tls.VersionTLS11), base + "/v1/secrets"},
	}
	for _, r := range refused {
		if status, body, err := get(r.client, r.url); err == nil {
			t.Errorf("%s: got in: %d %s", r.name, status, body)
		}
	}
	if status, _, err := get(&http.Client{Timeout: 10 * time.Second}, "http://"+addr+"/v1/secrets"); err == nil && status < 400 {
		t.Errorf("plain HTTP to the TLS port: %d", status)
	}

	// Server certificate only: no client certificate required.
	addr2, err := serveTLS(t, fmt.Sprintf("ssl_cert_file = %s\nssl_key_file = %s", certFile, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if status, body, err := get(client(nil, nil, 0), "https://"+addr2+"/v1/secrets"); err != nil || status != 200 {
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
