package manage

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/app"
	"opendev.org/x/arca/keyservice/sqlstore"
)

// auditOptions are the flags of "audit list|export".
type auditOptions struct {
	sub     string // list or export
	project string
	since   time.Time
	format  string
	output  string
	limit   int
}

// audit runs "audit list|export": the key audit trail as AuditEvents
// (keyservice/auditexport.go, docs/operations.md), read-only; and "audit
// prune", which removes old records (auditPrune).
func audit(ctx context.Context, configFiles, args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "prune" {
		return auditPrune(ctx, configFiles, args[1:], stdout, stderr)
	}
	o, err := parseAuditArgs(args, stderr)
	if err != nil {
		return err
	}
	db, store, err := openAuditStore(ctx, configFiles)
	if err != nil {
		return err
	}
	defer db.Close()
	out := stdout
	var file *os.File
	if o.sub == "export" && o.output != "-" {
		file, err = os.OpenFile(o.output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		defer file.Close()
		out = file
	}
	n, err := writeAudit(ctx, store, o, out)
	if err != nil {
		return err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		fmt.Fprintf(stderr, "%d audit records written to %s\n", n, o.output)
	}
	return nil
}

// parseAuditArgs reads and checks the subcommand and flags of "audit".
func parseAuditArgs(args []string, stderr io.Writer) (auditOptions, error) {
	if len(args) < 1 || (args[0] != "list" && args[0] != "export") {
		return auditOptions{}, ErrUsage
	}
	o := auditOptions{sub: args[0]}
	fs := flag.NewFlagSet("audit "+o.sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.project, "project", "", "Keystone project id (list: required; export: all projects when empty)")
	sinceArg := fs.String("since", "", "only records at or after T: RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02, UTC) or an age (24h)")
	fs.StringVar(&o.format, "format", "table", "list output: table or json (JSON lines, as export)")
	fs.StringVar(&o.output, "output", "-", "export: file to write (created 0600), - for stdout")
	fs.IntVar(&o.limit, "limit", 0, "list: at most this many records (0: all)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		return auditOptions{}, ErrUsage
	}
	if o.sub == "list" && !keyservice.ValidProjectID(o.project) {
		return auditOptions{}, errors.New("audit list: --project P is required (the Keystone project id); use audit export for every project")
	}
	if o.project != "" && !keyservice.ValidProjectID(o.project) {
		return auditOptions{}, errors.New("--project: give the Keystone project id (letters, digits, '-', '_')")
	}
	if o.format != "table" && o.format != "json" {
		return auditOptions{}, errors.New("--format: table or json")
	}
	since, err := parseTime("--since", *sinceArg, time.Now())
	if err != nil {
		return auditOptions{}, err
	}
	o.since = since
	return o, nil
}

// writeAudit pages through the selected records and writes them to out, as
// a table or as JSON lines; it returns how many it wrote.
func writeAudit(ctx context.Context, store keyservice.AuditStore, o auditOptions, out io.Writer) (int, error) {
	bw := bufio.NewWriter(out)
	var tw *tabwriter.Writer
	if o.sub == "list" && o.format == "table" {
		tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tACTION\tOUTCOME\tREASON\tTARGET\tINITIATOR\tREQUEST")
	}
	enc := json.NewEncoder(bw)
	q := keyservice.KeyAuditQuery{ProjectID: o.project, Since: o.since, Limit: 1000}
	n := 0
	for {
		recs, err := store.ScanKeyAudit(ctx, q)
		if err != nil {
			return n, err
		}
		for _, r := range recs {
			if o.limit > 0 && n >= o.limit {
				break
			}
			ev := keyservice.AuditEventOf(r)
			if tw != nil {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s (%s)\t%s\n", ev.ID, ev.EventTime, ev.Action, ev.Outcome,
					dash(ev.Reason), ev.Target.Type, dash(ev.Target.ID), dash(ev.Initiator.ID), ev.Initiator.Type, ev.RequestID)
			} else if err := enc.Encode(ev); err != nil {
				return n, fmt.Errorf("audit %s: %w", o.sub, err)
			}
			n++
		}
		if len(recs) < q.Limit || (o.limit > 0 && n >= o.limit) {
			break
		}
		q.AfterID = recs[len(recs)-1].ID
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return n, err
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit %s: %w", o.sub, err)
	}
	return n, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseTime reads --since or --before: RFC 3339, a UTC date, or an age
// before now.
func parseTime(flagName, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: give RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or an age (24h)", flagName, v)
}

// auditPrune runs "audit prune --before T [--batch N] [--dry-run]": the
// retention of key_audit. At thousands of audited reads a second the table
// grows by millions of rows an hour, and arca-api refuses key reads it
// cannot record: a disk filled by old audit rows stops the key service.
// Operators export what they keep (audit export) and prune the rest, from
// cron, while arca-api runs.
func auditPrune(ctx context.Context, configFiles, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit prune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	beforeArg := fs.String("before", "", "remove the records written before T: RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02, UTC) or an age (2160h); required")
	batch := fs.Int("batch", 0, "records removed per statement (0: 10000)")
	dryRun := fs.Bool("dry-run", false, "count the records instead of removing them")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return ErrUsage
	}
	if *beforeArg == "" {
		return errors.New("audit prune: --before T is required (an age such as 2160h keeps 90 days)")
	}
	if *batch < 0 {
		return errors.New("audit prune: --batch must be 0 (10000) or more")
	}
	before, err := cutoff("audit prune", *beforeArg, "that would remove the records being written now")
	if err != nil {
		return err
	}
	db, store, err := openAuditStore(ctx, configFiles)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := store.PruneKeyAudit(ctx, before, *batch, *dryRun)
	return reportRemoval(stdout, "audit prune", "audit records written", n, before, *dryRun, err)
}

// cutoff reads the --before of a removal command (audit prune, secret
// purge-expired): a time, a date or an age, now when empty; a time in the
// future is refused, with why.
func cutoff(cmd, arg, whyNotFuture string) (time.Time, error) {
	now := time.Now()
	if arg == "" {
		return now, nil
	}
	before, err := parseTime("--before", arg, now)
	if err != nil {
		return time.Time{}, err
	}
	if before.After(now) {
		return time.Time{}, fmt.Errorf("%s: --before %s is in the future: %s", cmd, before.UTC().Format(time.RFC3339), whyNotFuture)
	}
	return before, nil
}

// reportRemoval prints what a removal command removed (or, with
// --dry-run, would remove): "N <what> before T removed"; with err, how
// many went before it failed.
func reportRemoval(stdout io.Writer, cmd, what string, n int64, before time.Time, dryRun bool, err error) error {
	cut := before.UTC().Format(time.RFC3339)
	if err != nil {
		return fmt.Errorf("%s: %d %s before %s removed, then: %w", cmd, n, what, cut, err)
	}
	if dryRun {
		fmt.Fprintf(stdout, "%d %s before %s would be removed\n", n, what, cut)
		return nil
	}
	fmt.Fprintf(stdout, "%d %s before %s removed\n", n, what, cut)
	return nil
}

// openAuditStore reads arca-api's configuration and opens its database,
// for the audit commands.
func openAuditStore(ctx context.Context, configFiles []string) (*sql.DB, *sqlstore.Store, error) {
	cfg, err := app.LoadConfig(configFiles...)
	if err != nil {
		return nil, nil, err
	}
	return openStore(ctx, cfg)
}
