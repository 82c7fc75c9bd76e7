// Package manage implements arca-manage's commands: schema migrations and
// master-key rotation and rewrap. It is a package, not code in main, so the
// commands are tested the way operators run them.
package manage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/app"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/hsm"
	"opendev.org/x/arca/migrations"
)

// ErrUsage reports a command line that names no known command.
var ErrUsage = errors.New("usage")

// Run executes one arca-manage command.
func Run(ctx context.Context, configFiles, args []string, stdout, stderr io.Writer) error {
	// arca-manage reads arca-api's files and refuses them for the same
	// reason: a password that other local accounts can read is theirs.
	// Refused rather than warned about, as the master key file is: the fix
	// is one chmod, and a tool that works on an exposed credential hides
	// the exposure from the operator most likely to fix it.
	if len(args) > 0 {
		if err := app.CheckCredentialFiles(configFiles); err != nil {
			return err
		}
	}
	if len(args) >= 1 && args[0] == "register" {
		return register(ctx, configFiles, args[1:], stdout)
	}
	if len(args) >= 1 && args[0] == "audit" {
		return audit(ctx, configFiles, args[1:], stdout, stderr) // audit.go
	}
	if len(args) < 2 {
		return ErrUsage
	}
	cmd, rest := args[0]+" "+args[1], args[2:]
	switch cmd {
	case "kek rotate":
		return kekRotate(configFiles, rest, stdout)
	case "db upgrade", "db version", "db downgrade", "db force", "kek rewrap",
		"project-key rotate", "project-key destroy", "project-key list", "secret purge-expired":
	default:
		return ErrUsage
	}
	cfg, err := app.LoadConfig(configFiles...)
	if err != nil {
		return err
	}
	switch cmd {
	case "db upgrade":
		return dbUpgrade(ctx, cfg, stdout)
	case "db version":
		return dbVersion(ctx, cfg, stdout)
	case "db downgrade":
		return dbDowngrade(ctx, cfg, rest, stdout)
	case "db force":
		return dbForce(ctx, cfg, rest, stdout)
	case "project-key rotate", "project-key destroy", "project-key list":
		return projectKey(ctx, cfg, args[1], rest, stdout, stderr) // projectkeys.go
	case "secret purge-expired":
		return secretPurgeExpired(ctx, cfg, rest, stdout, stderr) // secrets.go
	default:
		return kekRewrap(ctx, cfg, stdout, stderr)
	}
}

func dbUpgrade(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	db, dialect, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Up(ctx, db, dialect); err != nil {
		return fmt.Errorf("db upgrade: %w", err)
	}
	v, _, err := migrations.Version(db, dialect)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database schema is at version %d (%s)\n", v, dialect)
	return nil
}

func dbVersion(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	db, dialect, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	v, dirty, err := migrations.Version(db, dialect)
	if err != nil {
		return err
	}
	state := "clean"
	if dirty {
		state = "dirty: a migration failed half-way; see \"arca-manage db force\""
	}
	fmt.Fprintf(stdout, "schema version %d (%s), this build needs %d\n", v, state, migrations.Latest(dialect))
	return nil
}

func dbDowngrade(ctx context.Context, cfg app.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("db downgrade", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "confirm that every table and all data are to be dropped")
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	if !*yes {
		return errors.New("db downgrade drops every table and all secrets: rerun with --yes to confirm")
	}
	db, dialect, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Down(ctx, db, dialect); err != nil {
		return fmt.Errorf("db downgrade: %w", err)
	}
	fmt.Fprintln(stdout, "database schema removed")
	return nil
}

// dbForce marks the schema as being at a version without running anything:
// the way out of a "dirty" schema after a migration was interrupted. On
// MySQL each migration is one DDL statement, so the operator checks whether
// it took effect and forces the version before or after it.
func dbForce(ctx context.Context, cfg app.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("db force", flag.ContinueOnError)
	version := fs.Uint("version", 0, "the version the schema is actually at")
	if err := fs.Parse(args); err != nil || *version == 0 {
		return ErrUsage
	}
	db, dialect, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if *version > migrations.Latest(dialect) {
		return fmt.Errorf("version %d is beyond this build's latest (%d)", *version, migrations.Latest(dialect))
	}
	if err := migrations.Force(ctx, db, dialect, *version); err != nil {
		return fmt.Errorf("db force: %w", err)
	}
	fmt.Fprintf(stdout, "schema marked as version %d; run \"arca-manage db upgrade\" to continue\n", *version)
	return nil
}

// kekRotate makes a new master key the active one. With the file backend
// it appends a key to the key file, rewritten atomically (temp file, fsync,
// rename) with mode 0600; an absent file is created, which is how the first
// key is made. With master_key_backend = pkcs11 (and no --master-key-file)
// the key is generated inside the token and never leaves it.
func kekRotate(configFiles, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("kek rotate", flag.ContinueOnError)
	path := fs.String("master-key-file", "", "master key file (default: [crypto] master_key_file)")
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	if *path == "" {
		cfg, err := app.LoadConfig(configFiles...)
		if err != nil {
			return err
		}
		if cfg.MasterKeyBackend == "pkcs11" {
			return rotateTokenKey(cfg, stdout)
		}
		if os.Getenv("ARCA_MASTER_KEYS") != "" {
			// arca-api takes its keys from the variable before the file: a
			// key added to the file would never be loaded, and a rewrap run
			// without the variable would move every KEK onto it.
			return errors.New("kek rotate: the master keys come from ARCA_MASTER_KEYS, not from [crypto] master_key_file: " +
				"write a new key to a file of its own (kek rotate --master-key-file F), add its line to the variable " +
				"wherever arca-api reads it, restart arca-api, then run kek rewrap with the same variable")
		}
		*path = cfg.MasterKeyFile
	}
	id, err := RotateMasterKeyFile(*path, rand.Reader, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "master key %s added to %s and now active; run \"arca-manage kek rewrap\" to move project KEKs to it\n", id, *path)
	return nil
}

// rotateTokenKey generates a master key inside the PKCS#11 token.
func rotateTokenKey(cfg app.Config, stdout io.Writer) error {
	tok, err := hsm.Open(cfg.PKCS11)
	if err != nil {
		return fmt.Errorf("kek rotate: %w", err)
	}
	defer tok.Close()
	id, err := tok.GenerateKey(time.Now())
	if err != nil {
		return fmt.Errorf("kek rotate: %w", err)
	}
	fmt.Fprintf(stdout, "master key %s generated in PKCS#11 token %q (sensitive, not extractable) and now active; "+
		"run \"arca-manage kek rewrap\" to move project KEKs to it\n", id, cfg.PKCS11.TokenLabel)
	return nil
}

// RotateMasterKeyFile adds a fresh master key to the file at path and
// returns its id.
func RotateMasterKeyFile(path string, random io.Reader, now time.Time) (string, error) {
	// One rotation at a time: two that read the file before either wrote
	// it would each write the old keys and their own, and the second
	// rename would drop the first's key, with whatever KEKs arca-api had
	// sealed under it meanwhile. The lock is a file beside the key file
	// (the key file itself is replaced by rename).
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return "", fmt.Errorf("master key file: %w", err)
	}
	defer unlock()
	var existing []byte
	if _, err := os.Stat(path); err == nil {
		if _, err := envelope.LoadKeyringFile(path); err != nil {
			return "", fmt.Errorf("refusing to rotate: %w", err)
		}
		if existing, err = os.ReadFile(path); err != nil {
			return "", fmt.Errorf("reading master key file: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("master key file: %w", err)
	}
	key := make([]byte, envelope.KeySize)
	if _, err := io.ReadFull(random, key); err != nil {
		return "", fmt.Errorf("generating master key: %w", err)
	}
	id := "mk-" + now.UTC().Format("20060102T150405Z")
	for n := 2; bytes.Contains(existing, []byte(id+" ")); n++ {
		id = fmt.Sprintf("mk-%s-%d", now.UTC().Format("20060102T150405Z"), n)
	}
	content := existing
	if len(content) == 0 {
		content = []byte("# Arca master keys: \"<id> <base64 key>\" per line; the last line is the active key.\n")
	} else if !bytes.HasSuffix(content, []byte("\n")) {
		content = append(content, '\n')
	}
	content = append(content, envelope.FormatKey(envelope.MasterKey{ID: id, Key: key})...)
	if err := writeFileAtomic(path, content, 0o600); err != nil {
		return "", err
	}
	return id, nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return fmt.Errorf("writing master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing master key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing master key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing master key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// kekRewrap reseals every project KEK with the active master key.
func kekRewrap(ctx context.Context, cfg app.Config, stdout, stderr io.Writer) error {
	keys, err := app.OpenMasterKeys(cfg)
	if err != nil {
		return err
	}
	defer keys.Close()
	ring := keys.Keys
	db, store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log := logging.New(logging.Options{Debug: cfg.Debug, Format: cfg.LogFormat, Service: "arca-manage", Output: stderr})
	svc, err := keyservice.New(store, ring, keyservice.Options{Logger: log, SecretStores: keys.Stores})
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("rewrapping project KEKs"), progressbar.OptionShowCount())
	}
	res, err := svc.RewrapKEKs(ctx, 500, func(r keyservice.RewrapResult) {
		if bar != nil {
			_ = bar.Set(r.Scanned)
		}
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	to := "master key " + ring.ActiveID()
	if keys.Stores != nil {
		to = "the active master key of their secret store"
	}
	fmt.Fprintf(stdout, "project KEKs: %d scanned, %d rewrapped to %s, %d already current\n",
		res.Scanned, res.Rewrapped, to, res.Skipped)
	if err != nil {
		return fmt.Errorf("kek rewrap stopped (rerun to continue): %w", err)
	}
	if res.Rewrapped == 0 && res.Scanned > 0 {
		fmt.Fprintln(stdout, strings.TrimSpace("nothing to do: every project KEK is sealed by the active master key"))
	}
	return nil
}

// lockFile takes an exclusive flock on path (created 0600 if missing) and
// returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
