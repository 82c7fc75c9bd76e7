package rewrap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/objectserver"
)

const usage = `usage:
  arca-object-server rewrap [status] (--project P | --all-projects) [--config-file F]
      [--devices DIR] [--rate N] [--workers N] [--dry-run] [--state-file F]
      [--checksum-delay D] [--upgrade-ec-layout]

rewrap moves the objects on this node's devices from older project keys to
each project's active key (metadata only). "status" (or --dry-run) changes
nothing and shows, per project key, how many objects on this node depend on
it, and how many erasure-coded fragment archives are still in the old layout
(one objcrypt stream each, which Swift's Python object-auditor quarantines).
--upgrade-ec-layout rewrites those into objcrypt's EC layout, in place.
Exit status 1 when any object failed or the run was interrupted.
`

// newResolver builds the key service client from the configuration; a
// test seam, so that Main can be run against a key service in memory.
var newResolver = func(o keyclient.Options) (keyclient.Resolver, error) { return keyclient.New(o) }

// Main is `arca-object-server rewrap ARGS`; it returns the exit status.
func Main(args []string, stdout, stderr *os.File) int {
	a, code := parseArgs(args, stderr)
	if a == nil {
		return code
	}
	o, err := a.options()
	if err != nil {
		fmt.Fprintln(stderr, "rewrap:", err)
		return 1
	}
	bar := showProgress(&o, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := Run(ctx, o)
	bar.finish()
	Report(stdout, s, a.status)
	switch {
	case err != nil && !errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "rewrap:", err)
		return 1
	case s.Interrupted, s.Failed > 0:
		return 1
	}
	return 0
}

// cliArgs is the command line of Main.
type cliArgs struct {
	status    bool // "status": a dry run that shows the per-key table
	files     config.StringList
	project   string
	all       bool
	devices   string
	rate      float64
	workers   int
	dry       bool
	stateFile string
	delay     time.Duration
	upgradeEC bool
	stderr    *os.File
}

// parseArgs reads the command line; nil and the exit status when it is
// not one to run.
func parseArgs(args []string, stderr *os.File) (*cliArgs, int) {
	a := &cliArgs{stderr: stderr}
	if len(args) > 0 && args[0] == "status" {
		a.status, args = true, args[1:]
	}
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.Var(&a.files, "config-file", "object-server.conf (repeatable; default /etc/swift/object-server.conf)")
	fs.StringVar(&a.project, "project", "", "the project whose objects to rewrap")
	fs.BoolVar(&a.all, "all-projects", false, "rewrap the objects of every project")
	fs.StringVar(&a.devices, "devices", "", "devices folder (default: the configuration's devices)")
	fs.Float64Var(&a.rate, "rate", 0, "objects examined per second (0: no limit)")
	fs.IntVar(&a.workers, "workers", 0, "partitions processed at once (0: GOMAXPROCS)")
	fs.BoolVar(&a.dry, "dry-run", false, "change nothing; report what would be rewrapped")
	fs.StringVar(&a.stateFile, "state-file", "", "file recording progress, to resume an interrupted run")
	fs.DurationVar(&a.delay, "checksum-delay", DefaultChecksumDelay, "how long a rewrapped file waits for its metadata checksum")
	fs.BoolVar(&a.upgradeEC, "upgrade-ec-layout", false, "also rewrite EC fragment archives stored as one objcrypt stream (the old layout) into the EC layout, in place")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if (a.project == "") == !a.all || fs.NArg() > 0 {
		fs.Usage()
		return nil, 2
	}
	if len(a.files) == 0 {
		a.files = config.StringList{"/etc/swift/object-server.conf"}
	}
	return a, 0
}

// options loads the object server's configuration and builds the job's
// options and key client from it and the command line.
func (a *cliArgs) options() (Options, error) {
	// the same credential, refused in a file others may read (the server's rule)
	if err := objectserver.CheckCredentialFiles(a.files); err != nil {
		return Options{}, err
	}
	f, err := config.Load(a.files...)
	if err != nil {
		return Options{}, err
	}
	cfg, err := objectserver.LoadConfig(f)
	if err != nil {
		return Options{}, err
	}
	log := logging.New(logging.Options{Format: cfg.LogFormat, Service: "arca-object-server-rewrap", Output: a.stderr})
	kopts := cfg.KeyClient
	kopts.Logger = log.With().Str("component", "keyclient").Logger()
	keys, err := newResolver(kopts)
	if err != nil {
		return Options{}, fmt.Errorf("key service client: %w", err)
	}
	o := Options{
		Devices: cfg.Devices, MountCheck: cfg.MountCheck, Project: a.project, AllProjects: a.all,
		ResellerPrefixes: cfg.ResellerPrefixes, Rate: a.rate, Workers: a.workers, DryRun: a.dry || a.status,
		StateFile: a.stateFile, ChecksumDelay: a.delay, Keys: keys, Log: log, UpgradeECLayout: a.upgradeEC,
	}
	if a.devices != "" {
		o.Devices = a.devices
	}
	if o.DryRun {
		o.StateFile = ""
	}
	return o, nil
}

// progressBar draws the job's progress on a terminal; the bar is made at
// the first call, when the number of partitions is known.
type progressBar struct {
	out *os.File
	bar *progressbar.ProgressBar
}

// showProgress sets o.Progress to draw a progress bar when stderr is a
// terminal.
func showProgress(o *Options, stderr *os.File) *progressBar {
	p := &progressBar{out: stderr}
	if term.IsTerminal(int(stderr.Fd())) {
		o.Progress = p.update
	}
	return p
}

func (p *progressBar) update(done, total int, s *Summary) {
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.out),
			progressbar.OptionSetDescription("partitions"), progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("part"), progressbar.OptionShowIts(),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	p.bar.Describe(fmt.Sprintf("scanned %d rewrapped %d failed %d", s.Scanned, s.Rewrapped, s.Failed))
	_ = p.bar.Set(done)
}

// finish completes the bar, if one was drawn.
func (p *progressBar) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
