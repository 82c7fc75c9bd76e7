package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
)

// quotaResource creates one resource of a quota kind in a project, for the
// i-th creation of worker w; setup (nil: none) makes what the creations
// need first, with no quota set yet.
type quotaResource struct {
	name     string
	resource string
	setup    func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller) (any, error)
	create   func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller, state any, w, i int) error
}

var quotaResources = []quotaResource{
	{name: "secrets", resource: keyservice.QuotaSecrets,
		create: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller, _ any, _, _ int) error {
			_, err := svc.CreateSecret(ctx, caller, keyservice.SecretSpec{Payload: []byte("x"), PayloadContentType: "text/plain"})
			return err
		}},
	{name: "orders", resource: keyservice.QuotaOrders,
		create: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller, _ any, _, _ int) error {
			alg, bits := "aes", 128
			o, err := svc.CreateOrder(ctx, caller, keyservice.OrderSpec{Type: keyservice.OrderTypeKey,
				Meta: keyservice.OrderMeta{Algorithm: &alg, BitLength: &bits}})
			if err == nil && o.Status != keyservice.StatusActive {
				err = fmt.Errorf("order %s is %s: %s", o.ID, o.Status, o.ErrorReason)
			}
			return err
		}},
	{name: "containers", resource: keyservice.QuotaContainers,
		setup: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller) (any, error) {
			return svc.CreateSecret(ctx, caller, keyservice.SecretSpec{Payload: []byte("x"), PayloadContentType: "text/plain"})
		},
		create: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller, state any, _, _ int) error {
			ref := keyservice.ContainerSecret{Name: "s", SecretID: state.(*keyservice.Secret).ID}
			_, err := svc.CreateContainer(ctx, caller, keyservice.ContainerSpec{Type: keyservice.ContainerTypeGeneric,
				Secrets: []keyservice.ContainerSecret{ref}})
			return err
		}},
	{name: "container consumers", resource: keyservice.QuotaConsumers,
		setup: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller) (any, error) {
			return svc.CreateContainer(ctx, caller, keyservice.ContainerSpec{Type: keyservice.ContainerTypeGeneric})
		},
		create: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller, state any, w, i int) error {
			return svc.AddContainerConsumer(ctx, caller, state.(*keyservice.Container),
				keyservice.ConsumerSpec{Name: fmt.Sprintf("c%d-%d", w, i), URL: "http://lb/1"})
		}},
	{name: "secret consumers", resource: keyservice.QuotaConsumers,
		setup: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller) (any, error) {
			return svc.CreateSecret(ctx, caller, keyservice.SecretSpec{Payload: []byte("x"), PayloadContentType: "text/plain"})
		},
		create: func(ctx context.Context, svc *keyservice.Service, caller keyservice.Caller, state any, w, i int) error {
			return svc.AddSecretConsumer(ctx, caller, state.(*keyservice.Secret),
				keyservice.SecretConsumerSpec{Service: "image", ResourceType: "image", ResourceID: fmt.Sprintf("r%d-%d", w, i)})
		}},
}

// TestQuotaUnderConcurrency: many creations of one kind at once, through
// the Service on the real database, never leave a project over its quota
// of that kind, for every quota'd resource (secrets, orders, containers,
// container and secret consumers), whether the quota is the project's own
// (set with SetProjectQuotas while the default is unlimited: the folded
// insert must refuse and the counted path must hold) or the default; a
// project without a quota of its own under an unlimited default gets
// every one. A refusal is Barbican's 403 text. With the quota checked
// before the insert instead of in it, 6-8 of a limit of 5 got in.
func TestQuotaUnderConcurrency(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "k", Key: bytes.Repeat([]byte{1}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, perWorker, limit = 8, 6, 5
	for _, dialect := range []dbconn.Dialect{dbconn.MySQL, dbconn.SQLite} {
		for _, res := range quotaResources {
			for _, tc := range []struct {
				name         string
				defaultLimit int // keyservice.Unlimited or a limit
				projectLimit int // set with SetProjectQuotas when >= Unlimited; -2: none
				want         int // resources the project ends with
			}{
				{"own quota, unlimited default", keyservice.Unlimited, limit, limit},
				{"own quota 0, unlimited default", keyservice.Unlimited, 0, 0},
				{"default quota", limit, -2, limit},
				{"own unlimited over a default", limit, keyservice.Unlimited, workers * perWorker},
				{"no quota at all", keyservice.Unlimited, -2, workers * perWorker},
			} {
				t.Run(string(dialect)+"/"+res.name+"/"+tc.name, func(t *testing.T) {
					ctx := context.Background()
					var store keyservice.Store
					if dialect == dbconn.MySQL {
						db, _ := testenv.MySQL(t)
						store = newStore(t, db, dialect)
					} else {
						store = newStore(t, testenv.SQLite(t), dialect)
					}
					svc, err := keyservice.New(store, ring, keyservice.Options{Quotas: keyservice.Quotas{res.resource: tc.defaultLimit}})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = svc.Close(context.Background()) })
					caller := keyservice.Caller{ProjectID: "pq", UserID: "u"}
					var state any
					if res.setup != nil {
						// Made under an unlimited quota of its own, so that a
						// default of limit does not stop it.
						if err := svc.SetProjectQuotas(ctx, "pq", keyservice.Quotas{res.resource: keyservice.Unlimited}); err != nil {
							t.Fatal(err)
						}
						if state, err = res.setup(ctx, svc, caller); err != nil {
							t.Fatal(err)
						}
						if err := svc.DeleteProjectQuotas(ctx, "pq"); err != nil {
							t.Fatal(err)
						}
					}
					before, err := store.CountResources(ctx, "pq", res.resource, svc.Now())
					if err != nil || before != 0 {
						t.Fatalf("the project holds %d %s before the run (%v)", before, res.resource, err)
					}
					if tc.projectLimit >= keyservice.Unlimited {
						if err := svc.SetProjectQuotas(ctx, "pq", keyservice.Quotas{res.resource: tc.projectLimit}); err != nil {
							t.Fatal(err)
						}
					}
					var wg sync.WaitGroup
					var mu sync.Mutex
					created, refused := 0, 0
					var unexpected []error
					for w := range workers {
						wg.Go(func() {
							for i := range perWorker {
								err := res.create(ctx, svc, caller, state, w, i)
								mu.Lock()
								switch {
								case err == nil:
									created++
								case errors.Is(err, keyservice.ErrForbidden) && err.Error() == quotaText(tc.defaultLimit, tc.projectLimit, res.resource):
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
					n, err := store.CountResources(ctx, "pq", res.resource, svc.Now())
					if err != nil {
						t.Fatal(err)
					}
					if n != tc.want || created != tc.want || refused != workers*perWorker-tc.want {
						t.Fatalf("project holds %d %s (%d created, %d refused by the quota), want %d", n, res.resource, created, refused, tc.want)
					}
				})
			}
		}
	}
}

// quotaText is Barbican's refusal for the limit in force.
func quotaText(defaultLimit, projectLimit int, resource string) string {
	limit := defaultLimit
	if projectLimit >= keyservice.Unlimited {
		limit = projectLimit
	}
	return fmt.Sprintf("Quota reached for project pq. Only %d %s are allowed.", limit, resource)
}
