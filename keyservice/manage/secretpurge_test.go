package manage_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/sqlstore"
)

// TestSecretPurgeExpired types docs/operations.md's commands: the dry run
// counts the expired secrets, --before 720h removes those expired more
// than 30 days ago, the default (now) the rest of the expired ones, and a
// secret that has not expired, or never will, stays. A cut-off in the
// future or a bad one is refused, and removes nothing.
func TestSecretPurgeExpired(t *testing.T) {
	dbPath, run := sqliteManage(t)
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ids := map[string]string{}
	for name, exp := range map[string]time.Duration{"old-1": -40 * 24 * time.Hour, "old-2": -31 * 24 * time.Hour, "recent": -time.Hour, "live": time.Hour, "never": 0} {
		sec := &keyservice.Secret{ID: uuid.NewString(), ProjectID: "p", CreatorID: "u", Name: name, SecretType: keyservice.SecretTypeOpaque,
			Status: keyservice.StatusActive, Created: now.Add(-50 * 24 * time.Hour), Updated: now.Add(-50 * 24 * time.Hour)}
		if exp != 0 {
			e := now.Add(exp)
			sec.Expiration = &e
		}
		if err := store.CreateSecret(context.Background(), sec); err != nil {
			t.Fatal(err)
		}
		ids[name] = sec.ID
	}
	left := func() string {
		var names []string
		for _, n := range []string{"old-1", "old-2", "recent", "live", "never"} {
			if _, err := store.GetSecret(context.Background(), ids[n]); err == nil {
				names = append(names, n)
			}
		}
		return strings.Join(names, " ")
	}
	for _, bad := range [][]string{{"--before", "2999-01-01"}, {"--before", "soon"}, {"--batch", "-1"}, {"extra"}} {
		if out, err := run(append([]string{"secret", "purge-expired"}, bad...)...); err == nil {
			t.Errorf("secret purge-expired %v: accepted: %s", bad, out)
		}
	}
	steps := []struct {
		args      []string
		out, left string
	}{
		{[]string{"--dry-run"}, "3 secrets expired before ", "old-1 old-2 recent live never"},
		{[]string{"--before", "720h"}, "2 secrets expired before ", "recent live never"},
		{nil, "1 secrets expired before ", "live never"},
		{nil, "0 secrets expired before ", "live never"},
	}
	for _, s := range steps {
		out, err := run(append([]string{"secret", "purge-expired"}, s.args...)...)
		if err != nil || !strings.HasPrefix(out, s.out) {
			t.Fatalf("secret purge-expired %v: %v %q, want %q...", s.args, err, out, s.out)
		}
		if got := left(); got != s.left {
			t.Fatalf("after secret purge-expired %v: %q left, want %q", s.args, got, s.left)
		}
	}
}
