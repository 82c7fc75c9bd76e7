// Package tlsconf turns the oslo-style TLS options every Arca listener
// accepts into a *tls.Config: ssl_cert_file and ssl_key_file (the server's
// certificate chain and key, PEM), and ssl_ca_file (PEM CA certificates:
// when set, clients must present a certificate signed by one of them).
// The option names are those of oslo.service's [DEFAULT] section.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// Options are the TLS settings of one listener; all empty means plain TCP.
type Options struct {
	CertFile string // ssl_cert_file
	KeyFile  string // ssl_key_file
	CAFile   string // ssl_ca_file: require and verify client certificates
}

// Enabled reports whether any option is set.
func (o Options) Enabled() bool { return o.CertFile != "" || o.KeyFile != "" || o.CAFile != "" }

// Config loads the files. It refuses a key without a certificate and the
// other way round, and a CA file without a certificate (client
// certificates are only asked for over TLS).
func (o Options) Config() (*tls.Config, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("TLS: ssl_cert_file and ssl_key_file must be set together (ssl_ca_file needs both)")
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: loading ssl_cert_file %s and ssl_key_file %s: %w", o.CertFile, o.KeyFile, err)
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// HTTP/1.1 only: the APIs are small requests, and HTTP/2 server
		// code carries most of the standard library's recent advisories.
		NextProtos: []string{"http/1.1"},
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS: reading ssl_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS: ssl_ca_file %s holds no PEM certificate", o.CAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// Listener wraps ln in TLS when options are set, and returns ln unchanged
// when none is.
func (o Options) Listener(ln net.Listener) (net.Listener, error) {
	if !o.Enabled() {
		return ln, nil
	}
	conf, err := o.Config()
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, conf), nil
}
