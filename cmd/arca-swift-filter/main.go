// Command arca-swift-filter runs Arca's filter in front of the Swift proxy:
// it validates Keystone tokens, strips client copies of X-Arca-Key-Id and
// attaches the owning project's key id to object writes made with that
// project's token (package swiftfilter).
//
//	arca-swift-filter --config-file /etc/arca/swift-filter.conf
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/swiftfilter"
)

func main() {
	var files config.StringList
	flag.Var(&files, "config-file", "configuration file (repeatable; later files override earlier ones)")
	flag.Parse()
	if len(files) == 0 {
		files = config.StringList{"/etc/arca/swift-filter.conf"}
	}
	if err := run(files); err != nil {
		fmt.Fprintln(os.Stderr, "arca-swift-filter:", err)
		os.Exit(1)
	}
}

func run(files []string) error {
	f, err := config.Load(files...)
	if err != nil {
		return err
	}
	// Before anything else: a credential other local accounts can read is
	// refused, as arca-api refuses such a master key file.
	if err := swiftfilter.CheckCredentialFiles(files); err != nil {
		return err
	}
	s, err := swiftfilter.LoadSettings(f)
	if err != nil {
		return err
	}
	log := logging.New(logging.Options{Debug: s.Debug, Format: s.LogFormat, Service: "arca-swift-filter"})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	validator, err := keystone.NewValidator(s.Keystone, keystone.WithLogger(log))
	if err != nil {
		return err
	}
	reg := metrics.New("arca-swift-filter", version, s.Metrics)
	s.Keys.Logger = log
	s.Keys.Observer = reg.ObserveKeyService
	keys, err := keyclient.New(s.Keys)
	if err != nil {
		return err
	}
	deps := swiftfilter.Deps{Tokens: validator, Keys: keys, Log: log}
	if err := observability(s, &deps, reg, validator, keys, log); err != nil {
		return err
	}
	filter, err := swiftfilter.New(s.Filter, deps)
	if err != nil {
		return err
	}

	addr := net.JoinHostPort(s.BindIP, strconv.Itoa(s.BindPort))
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln, err := s.Listen(tcp)
	if err != nil {
		_ = tcp.Close()
		return err
	}
	srv := s.HTTPServer(filter)
	log.Info().Str("listen", ln.Addr().String()).Str("upstream", s.Filter.Upstream).
		Strs("reseller_prefix", filter.Prefixes()).Bool("tls", s.TLS.Enabled()).
		Bool("client_certificates", s.TLS.CAFile != "").Msg("arca-swift-filter started")
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		if err := metrics.Serve(ctx, s.Metrics, reg.Handler(), log); err != nil {
			errc <- err
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
