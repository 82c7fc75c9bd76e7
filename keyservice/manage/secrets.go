package manage

import (
	"context"
	"errors"
	"flag"
	"io"

	"opendev.org/x/arca/keyservice/app"
)

// secretPurgeExpired runs "secret purge-expired [--before T] [--batch N]
// [--dry-run]", Arca's counterpart of barbican-manage db clean
// --soft-delete-expired-secrets: expired secrets are invisible to every
// route, their owners cannot delete them (404), and they no longer count
// against the secrets quota (as in Barbican), so without a purge a project
// could keep adding rows without bound. The purge removes them with their
// metadata, ACLs, consumers and container references. --before defaults
// to now; a time in the future is refused (those secrets are live).
func secretPurgeExpired(ctx context.Context, cfg app.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secret purge-expired", flag.ContinueOnError)
	fs.SetOutput(stderr)
	beforeArg := fs.String("before", "", "remove the secrets that expired before T: RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02, UTC) or an age (720h); default now")
	batch := fs.Int("batch", 0, "secrets removed per transaction (0: 1000)")
	dryRun := fs.Bool("dry-run", false, "count the secrets instead of removing them")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return ErrUsage
	}
	if *batch < 0 {
		return errors.New("secret purge-expired: --batch must be 0 (1000) or more")
	}
	before, err := cutoff("secret purge-expired", *beforeArg, "those secrets have not expired")
	if err != nil {
		return err
	}
	db, store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := store.PurgeExpiredSecrets(ctx, before, *batch, *dryRun)
	return reportRemoval(stdout, "secret purge-expired", "secrets expired", n, before, *dryRun, err)
}
