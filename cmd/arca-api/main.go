// Command arca-api is Arca's key service: the Barbican v1 API and project
// keys over MySQL/MariaDB or SQLite.
//
//	arca-api --config-file /etc/arca/arca.conf
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"opendev.org/x/arca/internal/config"

	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/serve"
	"opendev.org/x/arca/keyservice/app"
)

func main() {
	var files config.StringList
	flag.Var(&files, "config-file", "oslo-style configuration file (repeatable; later files override)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println(app.Version)
		return
	}
	if len(files) == 0 {
		files = config.StringList{"/etc/arca/arca.conf"}
	}
	if err := run(files); err != nil {
		fmt.Fprintln(os.Stderr, "arca-api:", err)
		os.Exit(1)
	}
}

// defaultGCPercent is the garbage collector's target heap growth unless
// GOGC says otherwise: arca-api's live heap is small (caches, policy,
// metrics) and every request allocates about 16 KiB, so at Go's
// default of 100 % a collection ran every few hundred requests. At 400 %
// a sixth as many run, for a heap of up to five times the live data instead
// of twice; GOMEMLIMIT still bounds it (docs/operations.md).
const defaultGCPercent = 400

func run(files []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// Before anything else: a Keystone or database password other local
	// accounts can read is refused, as a readable master key file is.
	if err := app.CheckCredentialFiles(files); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(files...)
	if err != nil {
		return err
	}
	logs := logging.NewBuffered(logging.Options{Debug: cfg.Debug, Format: cfg.LogFormat, Service: "arca-api"}, cfg.LogFlushInterval)
	defer logs.Close()
	ctx, stop := serve.SignalContext(context.Background())
	defer stop()
	a, err := app.Build(ctx, cfg, logs.Logger, logs.AtOnce)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx)
}
