package swiftfilter

import (
	"net"
	"net/http"
)

// HTTPServer is the server arca-swift-filter runs h in: request headers
// within ClientTimeout and 1 MiB, idle keep-alive connections closed after
// ClientTimeout. Bodies are streamed to the Swift proxy, whose own
// client_timeout cuts a client that stalls inside one.
func (s Settings) HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.ClientTimeout,
		IdleTimeout:       s.ClientTimeout,
		MaxHeaderBytes:    1 << 20,
	}
}

// Listen wraps ln in TLS when [DEFAULT] cert_file and key_file are set
// (and requires client certificates signed by ca_file when it is set);
// it returns ln unchanged when none of them is.
func (s Settings) Listen(ln net.Listener) (net.Listener, error) {
	return s.TLS.Listener(ln)
}
