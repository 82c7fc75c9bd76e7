package app

import (
	"net"

	"opendev.org/x/arca/internal/tlsconf"
)

// tlsOptions reads [DEFAULT] ssl_cert_file, ssl_key_file and ssl_ca_file
// (oslo.service's names; etc/arca/arca.conf.sample).
func (a *App) tlsOptions() tlsconf.Options {
	if a.Config.Raw == nil {
		return tlsconf.Options{}
	}
	f := a.Config.Raw
	return tlsconf.Options{
		CertFile: f.String("DEFAULT", "ssl_cert_file", ""),
		KeyFile:  f.String("DEFAULT", "ssl_key_file", ""),
		CAFile:   f.String("DEFAULT", "ssl_ca_file", ""),
	}
}

// listenTLS wraps ln in TLS when the options ask for it.
func (a *App) listenTLS(ln net.Listener) (net.Listener, error) {
	o := a.tlsOptions()
	out, err := o.Listener(ln)
	if err == nil && o.Enabled() {
		a.Log.Info().Bool("client_certificates", o.CAFile != "").Msg("TLS enabled")
	}
	return out, err
}
