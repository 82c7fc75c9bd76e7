// Command arca-manage is the operator's tool for arca-api:
//
//	arca-manage [--config-file F] db upgrade|version|downgrade
//	arca-manage [--config-file F] kek rotate [--master-key-file F]
//	arca-manage [--config-file F] kek rewrap
//	arca-manage [--config-file F] project-key list|rotate|destroy --project P
//	arca-manage [--config-file F] register --url URL [--region R] [--replace]
//	arca-manage [--config-file F] audit list --project P [--since T] [--format table|json]
//	arca-manage [--config-file F] audit export [--project P] [--since T] [--output F]
//	arca-manage [--config-file F] audit prune --before T [--batch N] [--dry-run]
//	arca-manage [--config-file F] secret purge-expired [--before T] [--batch N] [--dry-run]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"opendev.org/x/arca/internal/config"

	"opendev.org/x/arca/keyservice/manage"
)

const usage = `usage: arca-manage [--config-file FILE]... COMMAND

commands:
  db upgrade               apply every pending schema migration
  db version               print the schema version and the version this build needs
  db downgrade --yes       revert every migration (destroys all data)
  db force --version N     mark a dirty schema (interrupted migration) as being at version N
  kek rotate [--master-key-file F]
                           add a new active master key to the key file
  kek rewrap               reseal every project KEK with the active master key
                           (online, resumable, safe to run twice)
  project-key list|rotate --project P
  project-key destroy --project P --key KEY_ID [--force]
                           a project's data keys: history, a new active key, crypto-shredding
                           (docs/project-keys.md; audited as arca-manage)
  audit list --project P [--since T] [--format table|json] [--limit N]
  audit export [--project P] [--since T] [--output FILE]
                           the key audit trail (creates, rotations, destroys, payload reads,
                           secret decrypts) as CADF-like JSON lines (docs/operations.md)
  audit prune --before T [--batch N] [--dry-run]
                           remove the audit records written before T (a time, a date or an
                           age such as 2160h), a batch at a time, while arca-api runs
  secret purge-expired [--before T] [--batch N] [--dry-run]
                           remove the secrets that expired before T (default now), with
                           their metadata, ACLs, consumers and container references
  register [--url URL] [--internal-url URL] [--admin-url URL] [--region R] [--replace]
                           create the key-manager service and endpoints in the Keystone
                           catalog (credentials: OS_* environment, else [keystone_authtoken])
`

func main() {
	var files config.StringList
	flag.Var(&files, "config-file", "oslo-style configuration file (repeatable)")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	flag.Parse()
	if len(files) == 0 {
		files = config.StringList{"/etc/arca/arca.conf"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := manage.Run(ctx, files, flag.Args(), os.Stdout, os.Stderr)
	if errors.Is(err, manage.ErrUsage) {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "arca-manage:", err)
		os.Exit(1)
	}
}
