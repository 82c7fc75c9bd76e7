// Command arca-swift-filter runs Arca's filter in front of the Swift proxy:
// it validates Keystone tokens, strips client copies of X-Arca-Key-Id and
// attaches the owning project's key id to object writes made with that
// project's token (package swiftfilter). With [pipeline] socket set it
// serves instead the decision socket of the arca middleware in the Swift
// proxy's pipeline (docs/pipeline.md).
//
//	arca-swift-filter --config-file /etc/arca/swift-filter.conf
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/serve"
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
	s.SetMaxProcs()
	logs := logging.NewBuffered(logging.Options{Debug: s.Debug, Format: s.LogFormat, Service: "arca-swift-filter"}, s.LogFlushInterval)
	defer logs.Close()
	log := logs.Logger
	ctx, stop := serve.SignalContext(context.Background())
	defer stop()
	svc, err := swiftfilter.Build(s, log)
	if err != nil {
		return err
	}
	return svc.Serve(ctx)
}
