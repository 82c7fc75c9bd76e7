package manage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/app"
	"opendev.org/x/arca/keyservice/sqlstore"
	"opendev.org/x/arca/migrations"
)

// operator is the identity arca-manage's project-key commands are audited
// under; the OS user is added so that the audit trail names a person.
func operator() keyservice.Caller {
	user := "arca-manage"
	if u := os.Getenv("SUDO_USER"); u != "" {
		user += ":" + u
	} else if u := os.Getenv("USER"); u != "" {
		user += ":" + u
	}
	return keyservice.Caller{UserID: user, RequestID: "arca-manage-" + keyservice.NewID(), Roles: []string{"admin"}}
}

// projectKey runs "project-key rotate|destroy|list --project P".
func projectKey(ctx context.Context, cfg app.Config, sub string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("project-key "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "Keystone project id")
	keyID := fs.String("key", "", "key id (destroy)")
	force := fs.Bool("force", false, "destroy a key deactivated less than [project_keys] active_key_cache_ttl ago (objects acknowledged under it since its rotation become unreadable); never the ACTIVE key")
	limit := fs.Int("limit", 100, "list at most this many keys, newest first")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return ErrUsage
	}
	if !keyservice.ValidProjectID(*project) {
		return errors.New("--project: give the Keystone project id (letters, digits, '-', '_')")
	}
	if sub == "destroy" && *keyID == "" {
		return errors.New("project-key destroy: --key KEY_ID is required (see \"project-key list\")")
	}
	ring, err := app.LoadKeyring(cfg)
	if err != nil {
		return err
	}
	db, dialect, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Check(db, dialect); err != nil {
		return err
	}
	log := logging.New(logging.Options{Debug: cfg.Debug, Format: cfg.LogFormat, Service: "arca-manage", Output: stderr})
	svc, err := keyservice.New(sqlstore.New(db, dialect), ring, keyservice.Options{Logger: log, ProjectKeyProtocol: cfg.CryptoProtocol,
		ActiveKeyCacheTTL: cfg.ActiveKeyCacheTTL})
	if err != nil {
		return err
	}
	defer func() {
		// Write the audit records before the database closes.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := svc.Close(cctx); cerr != nil {
			fmt.Fprintln(stderr, "arca-manage: writing audit records:", cerr)
		}
	}()
	caller := operator()
	switch sub {
	case "rotate":
		k, err := svc.RotateProjectKey(ctx, caller, *project)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "project %s: new active key %s (%s); the previous key stays readable\n", *project, k.ID, k.Algorithm)
		return nil
	case "destroy":
		k, err := svc.LoadProjectKey(ctx, *project, *keyID)
		if err != nil {
			return fmt.Errorf("project %s: %w", *project, err)
		}
		if err := svc.DestroyProjectKey(ctx, caller, k, *force); err != nil {
			return fmt.Errorf("project %s, key %s: %w", *project, k.ID, err)
		}
		fmt.Fprintf(stdout, "project %s: key %s destroyed; objects encrypted with it are unreadable for good\n", *project, k.ID)
		return nil
	default:
		list, total, err := svc.ListProjectKeys(ctx, *project, max(*limit, 1), 0)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY ID\tSTATUS\tALGORITHM\tCREATED\tDEACTIVATED\tDESTROYED")
		for _, k := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Status, k.Algorithm,
				stamp(&k.Created), stamp(k.Deactivated), stamp(k.Destroyed))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if total > len(list) {
			fmt.Fprintf(stdout, "(%d of %d keys shown; --limit to see more)\n", len(list), total)
		}
		return nil
	}
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
