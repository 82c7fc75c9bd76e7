// Package tlsconftest gives listener tests a throw-away certificate
// authority, a server certificate for 127.0.0.1 signed by it, client
// certificates from it and from a second ("rogue") CA, and the checks every
// TLS listener must pass: no client certificate, a certificate from another
// CA, TLS 1.1 and plain HTTP are all refused.
package tlsconftest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throw-away certificate authority.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid for the next hour.
func NewCA(t testing.TB, name string) *CA {
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue returns a PEM certificate and key: for a server on 127.0.0.1 when
// server is true, else for a client.
func (ca *CA) Issue(t testing.TB, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// Env is a CA with a server certificate and key and the CA certificate
// written to files (mode 0600), and client credentials in memory.
type Env struct {
	CA, Rogue                 *CA
	CertFile, KeyFile, CAFile string // for the server's configuration
	ClientCert, ClientKey     []byte // signed by CA
	RogueCert, RogueKey       []byte // signed by Rogue
}

// New writes the files into a temporary directory.
func New(t testing.TB) *Env {
	t.Helper()
	e := &Env{CA: NewCA(t, "Arca Test CA"), Rogue: NewCA(t, "Rogue CA")}
	srvCert, srvKey := e.CA.Issue(t, "server", true)
	e.ClientCert, e.ClientKey = e.CA.Issue(t, "client", false)
	e.RogueCert, e.RogueKey = e.Rogue.Issue(t, "mallory", false)
	dir := t.TempDir()
	e.CertFile = WriteFile(t, dir, "server.pem", srvCert)
	e.KeyFile = WriteFile(t, dir, "server.key", srvKey)
	e.CAFile = WriteFile(t, dir, "ca.pem", e.CA.PEM)
	return e
}

// WriteFile writes data to dir/name with mode 0600 and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Client returns an HTTPS client trusting the CA and presenting the given
// certificate (none when certPEM is nil), offering at most maxVersion (0:
// the default).
func (e *Env) Client(t testing.TB, certPEM, keyPEM []byte, maxVersion uint16) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.CA.Cert)
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

// Good is a client with a certificate from the CA.
func (e *Env) Good(t testing.TB) *http.Client { return e.Client(t, e.ClientCert, e.ClientKey, 0) }

// CheckRefused asserts that GET path on addr (host:port of a listener that
// requires client certificates from the CA) is refused without a client
// certificate, with one from the rogue CA, over TLS 1.1, and that plain
// HTTP gets no successful answer.
func (e *Env) CheckRefused(t *testing.T, addr, path string) {
	t.Helper()
	cases := []struct {
		name   string
		client *http.Client
	}{
		{"no client certificate", e.Client(t, nil, nil, 0)},
		{"certificate from another CA", e.Client(t, e.RogueCert, e.RogueKey, 0)},
		{"TLS 1.1 only", e.Client(t, e.ClientCert, e.ClientKey, tls.VersionTLS11)},
	}
	for _, c := range cases {
		resp, err := c.client.Get("https://" + addr + path)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: got in: %s", c.name, resp.Status)
		}
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get("http://" + addr + path); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP to the TLS port: %s", resp.Status)
		}
	}
}
