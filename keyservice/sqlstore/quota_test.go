package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
)

// TestSecretQuotaUnderConcurrency: many secret creations at once, through
// the Service on the real database, never leave a project over its secrets
// quota, whether the quota is the project's own (set with SetProjectQuotas
// while the default is unlimited: the folded insert must refuse and the
// checked path must hold) or the default; a project without a quota of its
// own under an unlimited default gets every secret.
func TestSecretQuotaUnderConcurrency(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "k", Key: bytes.Repeat([]byte{1}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, perWorker, limit = 8, 6, 5
	for _, dialect := range []dbconn.Dialect{dbconn.MySQL, dbconn.SQLite} {
		for _, tc := range []struct {
			name         string
			defaultLimit int // keyservice.Unlimited or a limit
			projectLimit int // set with SetProjectQuotas when >= Unlimited; -2: none
			want         int // secrets the project ends with
		}{
			{"own quota, unlimited default", keyservice.Unlimited, limit, limit},
			{"own quota 0, unlimited default", keyservice.Unlimited, 0, 0},
			{"default quota", limit, -2, limit},
			{"own unlimited over a default", limit, keyservice.Unlimited, workers * perWorker},
			{"no quota at all", keyservice.Unlimited, -2, workers * perWorker},
		} {
			t.Run(string(dialect)+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				var store keyservice.Store
				if dialect == dbconn.MySQL {
					db, _ := testenv.MySQL(t)
					store = newStore(t, db, dialect)
				} else {
					store = newStore(t, testenv.SQLite(t), dialect)
				}
				svc, err := keyservice.New(store, ring, keyservice.Options{Quotas: keyservice.Quotas{keyservice.QuotaSecrets: tc.defaultLimit}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = svc.Close(context.Background()) })
				if tc.projectLimit >= keyservice.Unlimited {
					if err := svc.SetProjectQuotas(ctx, "pq", keyservice.Quotas{keyservice.QuotaSecrets: tc.projectLimit}); err != nil {
						t.Fatal(err)
					}
				}
				caller := keyservice.Caller{ProjectID: "pq", UserID: "u"}
				var wg sync.WaitGroup
				var mu sync.Mutex
				created, refused := 0, 0
				var unexpected []error
				for range workers {
					wg.Go(func() {
						for range perWorker {
							_, err := svc.CreateSecret(ctx, caller, keyservice.SecretSpec{Payload: []byte("x"), PayloadContentType: "text/plain"})
							mu.Lock()
							switch {
							case err == nil:
								created++
							case errors.Is(err, keyservice.ErrForbidden):
								refused++
							default:
								unexpected = append(unexpected, err)
							}
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if len(unexpected) > 0 {
					t.Fatalf("%d creations failed otherwise than by the quota, first: %v", len(unexpected), unexpected[0])
				}
				n, err := store.CountResources(ctx, "pq", keyservice.QuotaSecrets, svc.Now())
				if err != nil {
					t.Fatal(err)
				}
				if n != tc.want || created != tc.want || refused != workers*perWorker-tc.want {
					t.Fatalf("project holds %d secrets (%d created, %d refused by the quota), want %d", n, created, refused, tc.want)
				}
			})
		}
	}
}
