// Package tlsconf turns the oslo-style TLS options every Arca listener
// accepts into a *tls.Config: ssl_cert_file and ssl_key_file (the server's
// certificate chain and key, PEM), and ssl_ca_file (PEM CA certificates:
// when set, clients must present a certificate signed by one of them).
// The option names are those of oslo.service's [DEFAULT] section; the
// Swift-side servers read Swift's cert_file and key_file and Arca's ca_file
// instead, and set Names so that errors name the options they read.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

// Options are the TLS settings of one listener; all empty means plain TCP.
type Options struct {
	CertFile string // ssl_cert_file
	KeyFile  string // ssl_key_file
	CAFile   string // ssl_ca_file: require and verify client certificates
	// Names are the configuration option names, for error messages;
	// the zero value means oslo's ssl_cert_file, ssl_key_file, ssl_ca_file.
	Names Names
}

// Names are the option names of CertFile, KeyFile and CAFile.
type Names struct{ Cert, Key, CA string }

// SwiftNames are the names read by arca-swift-filter and arca-object-server:
// Swift's own cert_file and key_file ([DEFAULT] of proxy-server.conf and
// object-server.conf), and ca_file alongside them.
var SwiftNames = Names{Cert: "cert_file", Key: "key_file", CA: "ca_file"}

func (o Options) names() Names {
	if o.Names == (Names{}) {
		return Names{Cert: "ssl_cert_file", Key: "ssl_key_file", CA: "ssl_ca_file"}
	}
	return o.Names
}

// Enabled reports whether any option is set.
func (o Options) Enabled() bool { return o.CertFile != "" || o.KeyFile != "" || o.CAFile != "" }

// Config loads the files. It refuses a key without a certificate and the
// other way round, and a CA file without a certificate (client
// certificates are only asked for over TLS).
func (o Options) Config() (*tls.Config, error) {
	n := o.names()
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, fmt.Errorf("TLS: %s and %s must be set together (%s needs both)", n.Cert, n.Key, n.CA)
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: loading %s %s and %s %s: %w", n.Cert, o.CertFile, n.Key, o.KeyFile, err)
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
			return nil, fmt.Errorf("TLS: reading %s: %w", n.CA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS: %s %s holds no PEM certificate", n.CA, o.CAFile)
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
