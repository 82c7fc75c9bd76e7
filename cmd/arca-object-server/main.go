// Command arca-object-server is a drop-in Swift object server that stores
// object data encrypted with each project's key from arca-api.
//
//	arca-object-server /etc/swift/object-server.conf
//	arca-object-server --config-file /etc/swift/object-server.conf
//	arca-object-server rewrap [status] (--project P | --all-projects) [options]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/serve"
	"opendev.org/x/arca/objectserver"
	"opendev.org/x/arca/objectserver/rewrap"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rewrap" {
		os.Exit(rewrap.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	var files config.StringList
	flag.Var(&files, "config-file", "Swift-style object-server.conf (repeatable; later files override)")
	verbose := flag.Bool("v", false, "log to stdout (accepted for swift-object-server compatibility)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprintf(out, "usage: arca-object-server [--config-file F]... [-v] [CONF]\n"+
			"       arca-object-server rewrap [status] (--project P | --all-projects) [options]\n"+
			"                          move this node's objects to their project's active key\n"+
			"                          (\"arca-object-server rewrap --help\" lists the options)\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version {
		fmt.Println(objectserver.Version)
		return
	}
	// swift-*-server style: "CONF [-v]", options after the config file
	for _, a := range flag.Args() {
		switch a {
		case "-v", "--verbose":
			*verbose = true
		default:
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		files = config.StringList{"/etc/swift/object-server.conf"}
	}
	if err := run(files, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "arca-object-server:", err)
		os.Exit(1)
	}
}

// defaultGCPercent is the garbage collector's target heap growth unless
// GOGC says otherwise. The server's live heap is small (a few MiB: key
// caches, pools, metrics) and a 4 KiB GET or PUT allocates about 30 KiB,
// so at Go's default of 100 % a collection ran every hundred-odd requests,
// and with it the scavenger returned the heap's pages to the kernel
// (madvise, TLB shootdowns) only to fault them in again: a quarter of a
// small GET's CPU. At 400 % a sixth as many run, for a heap of up to five
// times the live data instead of twice, as arca-api does; GOMEMLIMIT
// still bounds it (docs/operations.md).
const defaultGCPercent = 400

func run(files []string, verbose bool) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// Before anything else: a key-service password other local accounts
	// can read is refused, as arca-api refuses such a master key file.
	if err := objectserver.CheckCredentialFiles(files); err != nil {
		return err
	}
	f, err := config.Load(files...)
	if err != nil {
		return err
	}
	cfg, err := objectserver.LoadConfig(f)
	if err != nil {
		return err
	}
	log, closeLog := newLogger(cfg, verbose)
	defer closeLog()
	ctx, stop := serve.SignalContext(context.Background())
	defer stop()
	srv, err := objectserver.Build(*cfg, log)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// newLogger logs to stderr (stdout with -v). Swift reads log_level without
// regard to case (WARNING, warning), and so does the configuration;
// warning and error leave out the access log and info messages, as they do
// in swift-object-server. The function it returns writes the lines still
// waiting in memory (log_flush_interval).
func newLogger(cfg *objectserver.Config, verbose bool) (zerolog.Logger, func()) {
	out := os.Stderr
	if verbose {
		out = os.Stdout
	}
	logs := logging.NewBuffered(logging.Options{
		Debug: cfg.LogLevel == "debug", Format: cfg.LogFormat, Service: "arca-object-server", Output: out,
	}, cfg.LogFlushInterval)
	log := logs.Logger
	switch cfg.LogLevel {
	case "warning":
		log = log.Level(zerolog.WarnLevel)
	case "error":
		log = log.Level(zerolog.ErrorLevel)
	}
	return log, logs.Close
}
