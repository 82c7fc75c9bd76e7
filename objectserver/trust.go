package objectserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"opendev.org/x/arca/internal/config"
)

// Who may talk to the object-server port. The port
// answers GET with plaintext: anyone who reaches it reads every tenant's
// data, with no token (Swift's object servers trust their network; the
// proxy is where users are authenticated). So the server answers only the
// peers of [arca] trusted_networks: the Swift proxies, the other storage
// nodes (REPLICATE) and the hosts whose daemons talk to object servers
// directly (object-expirer, container-reconciler: Swift's internal
// client). Every other peer gets 403 for every request, object-protocol
// verbs, OPTIONS, /metrics (when served here) and the detailed health
// check alike; only GET or HEAD /healthcheck stays open to all, because a
// load balancer or monitor may probe it from elsewhere and it says nothing
// but "OK" (the detailed check, which asks the key service and Keystone,
// keeps its own [healthcheck] detailed_allowed_networks on top).
//
// Unset, trusted_networks is loopback only (127.0.0.0/8, ::1), and the
// server refuses to start when it listens on anything else (bind_ip
// 0.0.0.0, ::, or a non-loopback address, Swift's default being 0.0.0.0):
// a node exposed without a list of its peers is a misconfiguration, not a
// default. The option lives in [arca], with Arca's other options, because
// Swift's own object server has no such check: a file moved back to
// swift-object-server must not look as if it still had one.
//
// A peer is its TCP source address: nothing a client sends (no
// X-Forwarded-For) moves it. With client certificates (ca_file) both hold:
// the certificate and the network.

// loopbackNetworks are the peers trusted when trusted_networks is unset.
var loopbackNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// parseNetworks reads trusted_networks: CIDRs, or addresses standing for
// themselves alone.
func parseNetworks(items []string) ([]netip.Prefix, error) {
	if len(items) == 0 {
		return nil, errors.New("empty: list the networks of the proxies and storage nodes (e.g. 10.1.0.0/24, 10.2.0.0/24), or remove the option for loopback only")
	}
	out := make([]netip.Prefix, 0, len(items))
	for _, it := range items {
		it = strings.TrimSpace(it)
		if p, err := netip.ParsePrefix(it); err == nil {
			if p.Addr().Is4In6() {
				// Peers are unmapped before the check (a dual-stack
				// listener sees IPv4 peers as ::ffff:a.b.c.d), so an
				// IPv4-mapped prefix kept as written would never match.
				if p.Bits() < 96 {
					return nil, fmt.Errorf("%q: an IPv4-mapped prefix must be /96 or longer (write the IPv4 network, e.g. 10.0.0.0/8)", it)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(it)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.1.0.0/24) nor an IP address", it)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// trustedPeer reports whether the request's TCP peer is in the trusted
// networks.
func (s *Server) trustedPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false // not a TCP peer we can place: fail closed
	}
	a := ap.Addr().Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// openToAll is what any peer may ask: the plain health check.
func openToAll(r *http.Request) bool {
	return r.URL.Path == "/healthcheck" && r.URL.RawQuery == "" &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// checkExposure refuses a listener beyond loopback when trusted_networks
// is not configured.
func (s *Server) checkExposure(addr net.Addr) error {
	if s.cfg.TrustedNetworks != nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err == nil && ap.Addr().Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("arca-object-server would listen on %s, beyond loopback, and [arca] trusted_networks is not set: "+
		"anyone reaching this port could read every project's objects in the clear. Set trusted_networks to the networks "+
		"of the Swift proxies and storage nodes (e.g. trusted_networks = 10.1.0.0/24, 10.2.0.0/24; docs/operations.md) "+
		"or bind_ip = 127.0.0.1", addr)
}

// SecretOptions are the options whose values are credentials: the key
// service user's password or application credential secret, which (with
// the key-manager:object-server role) read every project's key material.
var SecretOptions = []config.Option{{Section: secArca, Key: "password"}, {Section: secArca, Key: "application_credential_secret"}}

// CheckCredentialFiles refuses a configuration file that sets a credential
// (SecretOptions) while its group or others have any access to it, as
// arca-api refuses its master key file (config.CheckCredentialFiles: each
// file on its own, so a credential kept in a private file of its own leaves
// the shared object-server.conf free to stay readable).
func CheckCredentialFiles(paths []string) error {
	return config.CheckCredentialFiles(paths, SecretOptions...)
}
