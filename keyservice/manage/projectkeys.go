package manage

import (
	"context"
	"database/sql"
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

// openStore opens the configured database, checks that its schema is
// current and returns the store over it; the caller closes the database.
func openStore(ctx context.Context, cfg app.Config) (*sql.DB, *sqlstore.Store, error) {
	db, dialect, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := migrations.Check(db, dialect); err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	store, err := sqlstore.New(db, dialect)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return db, store, nil
}

// projectKeyOptions are the flags of "project-key".
type projectKeyOptions struct {
	project string
	keyID   string
	force   bool
	limit   int
}

// projectKey runs "project-key rotate|destroy|list --project P".
func projectKey(ctx context.Context, cfg app.Config, sub string, args []string, stdout, stderr io.Writer) error {
	o, err := parseProjectKeyArgs(sub, args, stderr)
	if err != nil {
		return err
	}
	keys, err := app.OpenMasterKeys(cfg)
	if err != nil {
		return err
	}
	defer keys.Close()
	db, store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log := logging.New(logging.Options{Debug: cfg.Debug, Format: cfg.LogFormat, Service: "arca-manage", Output: stderr})
	svc, err := keyservice.New(store, keys.Keys, keyservice.Options{Logger: log, ProjectKeyProtocol: cfg.CryptoProtocol,
		ActiveKeyCacheTTL: cfg.ActiveKeyCacheTTL, SecretStores: keys.Stores})
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
	switch sub {
	case "rotate":
		return rotateProjectKey(ctx, svc, o, stdout)
	case "destroy":
		return destroyProjectKey(ctx, svc, o, stdout)
	default:
		return listProjectKeys(ctx, svc, o, stdout)
	}
}

// parseProjectKeyArgs reads and checks the flags of "project-key sub".
func parseProjectKeyArgs(sub string, args []string, stderr io.Writer) (projectKeyOptions, error) {
	var o projectKeyOptions
	fs := flag.NewFlagSet("project-key "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.project, "project", "", "Keystone project id")
	fs.StringVar(&o.keyID, "key", "", "key id (destroy)")
	fs.BoolVar(&o.force, "force", false, "destroy a key deactivated less than [project_keys] active_key_cache_ttl ago (objects acknowledged under it since its rotation become unreadable); never the ACTIVE key")
	fs.IntVar(&o.limit, "limit", 100, "list at most this many keys, newest first")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return o, ErrUsage
	}
	if !keyservice.ValidProjectID(o.project) {
		return o, errors.New("--project: give the Keystone project id (letters, digits, '-', '_')")
	}
	if sub == "destroy" && o.keyID == "" {
		return o, errors.New("project-key destroy: --key KEY_ID is required (see \"project-key list\")")
	}
	return o, nil
}

func rotateProjectKey(ctx context.Context, svc *keyservice.Service, o projectKeyOptions, stdout io.Writer) error {
	k, err := svc.RotateProjectKey(ctx, operator(), o.project)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "project %s: new active key %s (%s); the previous key stays readable\n", o.project, k.ID, k.Algorithm)
	return nil
}

func destroyProjectKey(ctx context.Context, svc *keyservice.Service, o projectKeyOptions, stdout io.Writer) error {
	k, err := svc.LoadProjectKey(ctx, o.project, o.keyID)
	if err != nil {
		return fmt.Errorf("project %s: %w", o.project, err)
	}
	if err := svc.DestroyProjectKey(ctx, operator(), k, o.force); err != nil {
		return fmt.Errorf("project %s, key %s: %w", o.project, k.ID, err)
	}
	fmt.Fprintf(stdout, "project %s: key %s destroyed; objects encrypted with it are unreadable for good\n", o.project, k.ID)
	return nil
}

func listProjectKeys(ctx context.Context, svc *keyservice.Service, o projectKeyOptions, stdout io.Writer) error {
	list, total, err := svc.ListProjectKeys(ctx, o.project, max(o.limit, 1), 0)
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

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
