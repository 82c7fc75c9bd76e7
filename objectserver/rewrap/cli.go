package rewrap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"text/tabwriter"
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
      [--checksum-delay D]

rewrap moves the objects on this node's devices from older project keys to
each project's active key (metadata only). "status" (or --dry-run) changes
nothing and shows, per project key, how many objects on this node depend on
it. Exit status 1 when any object failed or the run was interrupted.
`

// newResolver builds the key service client from the configuration; a
// test seam, so that Main can be run against a key service in memory.
var newResolver = func(o keyclient.Options) (keyclient.Resolver, error) { return keyclient.New(o) }

// Main is `arca-object-server rewrap ARGS`; it returns the exit status.
func Main(args []string, stdout, stderr *os.File) int {
	status := false
	if len(args) > 0 && args[0] == "status" {
		status, args = true, args[1:]
	}
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var files config.StringList
	fs.Var(&files, "config-file", "object-server.conf (repeatable; default /etc/swift/object-server.conf)")
	project := fs.String("project", "", "the project whose objects to rewrap")
	all := fs.Bool("all-projects", false, "rewrap the objects of every project")
	devices := fs.String("devices", "", "devices folder (default: the configuration's devices)")
	rate := fs.Float64("rate", 0, "objects examined per second (0: no limit)")
	workers := fs.Int("workers", 0, "partitions processed at once (0: GOMAXPROCS)")
	dry := fs.Bool("dry-run", false, "change nothing; report what would be rewrapped")
	stateFile := fs.String("state-file", "", "file recording progress, to resume an interrupted run")
	delay := fs.Duration("checksum-delay", DefaultChecksumDelay, "how long a rewrapped file waits for its metadata checksum")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*project == "") == !*all || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if len(files) == 0 {
		files = config.StringList{"/etc/swift/object-server.conf"}
	}
	// the same credential, refused in a file others may read (the server's rule)
	if err := objectserver.CheckCredentialFiles(files); err != nil {
		fmt.Fprintln(stderr, "rewrap:", err)
		return 1
	}
	f, err := config.Load(files...)
	if err != nil {
		fmt.Fprintln(stderr, "rewrap:", err)
		return 1
	}
	cfg, err := objectserver.LoadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, "rewrap:", err)
		return 1
	}
	log := logging.New(logging.Options{Format: cfg.LogFormat, Service: "arca-object-server-rewrap", Output: stderr})
	kopts := cfg.KeyClient
	kopts.Logger = log.With().Str("component", "keyclient").Logger()
	keys, err := newResolver(kopts)
	if err != nil {
		fmt.Fprintln(stderr, "rewrap: key service client:", err)
		return 1
	}
	o := Options{
		Devices: cfg.Devices, MountCheck: cfg.MountCheck, Project: *project, AllProjects: *all,
		ResellerPrefixes: cfg.ResellerPrefixes, Rate: *rate, Workers: *workers, DryRun: *dry || status,
		StateFile: *stateFile, ChecksumDelay: *delay, Keys: keys, Log: log,
	}
	if *devices != "" {
		o.Devices = *devices
	}
	if o.DryRun {
		o.StateFile = ""
	}
	var bar *progressbar.ProgressBar
	if term.IsTerminal(int(stderr.Fd())) {
		o.Progress = func(done, total int, s *Summary) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("partitions"), progressbar.OptionShowCount(),
					progressbar.OptionSetItsString("part"), progressbar.OptionShowIts(),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			bar.Describe(fmt.Sprintf("scanned %d rewrapped %d failed %d", s.Scanned, s.Rewrapped, s.Failed))
			_ = bar.Set(done)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := Run(ctx, o)
	if bar != nil {
		_ = bar.Finish()
	}
	Report(stdout, s, status)
	switch {
	case err != nil && !errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "rewrap:", err)
		return 1
	case s.Interrupted, s.Failed > 0:
		return 1
	}
	return 0
}

// Report writes a summary (and, with keys, the per-key table) to w.
func Report(w io.Writer, s *Summary, keys bool) {
	verb := "rewrapped"
	if s.DryRun {
		verb = "to rewrap"
	}
	if s.ResumedFrom != "" {
		fmt.Fprintf(w, "resumed after %s\n", s.ResumedFrom)
	}
	fmt.Fprintf(w, "scanned %d, %s %d, skipped %d (already on the active key %d, other projects %d, not encrypted %d, changed meanwhile %d), failed %d, checksums restored %d in %s\n",
		s.Scanned, verb, s.Rewrapped, s.Already+s.OtherProject+s.Plain+s.Changed, s.Already, s.OtherProject, s.Plain, s.Changed,
		s.Failed, s.Checksums, s.Elapsed.Round(time.Millisecond))
	if s.Elapsed > 0 && s.Scanned > 0 {
		fmt.Fprintf(w, "rate %.0f objects/s; I/O: %d directory reads, %d opens, %d xattr reads, %d xattr writes, %d partition locks\n",
			float64(s.Scanned)/s.Elapsed.Seconds(), s.IO.DirReads, s.IO.Opens, s.IO.XattrReads, s.IO.XattrWrites, s.IO.Locks)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: run again (with the same --state-file) to continue")
	}
	reasons := make([]string, 0, len(s.Reasons))
	for r := range s.Reasons {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "failed: %s: %d\n", r, s.Reasons[r])
	}
	for _, e := range s.Examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if !keys && !s.DryRun {
		return
	}
	refs := make([]KeyRef, 0, len(s.Keys))
	for k := range s.Keys {
		refs = append(refs, k)
	}
	sort.Slice(refs, func(a, b int) bool {
		if refs[a].Project != refs[b].Project {
			return refs[a].Project < refs[b].Project
		}
		return refs[a].KeyID < refs[b].KeyID
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tKEY ID\tSTATE\tOBJECTS")
	for _, k := range refs {
		st := "inactive"
		switch a, ok := s.Active[k.Project]; {
		case !ok:
			st = "unknown"
		case a == k.KeyID:
			st = "active"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", k.Project, k.KeyID, st, s.Keys[k])
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "objects on inactive keys: %d\n", s.Objects(true))
}
