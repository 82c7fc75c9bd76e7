package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/keyservice"
)

// quotaTests are the conformance cases of secret consumers, project
// quotas and resource counts; Run appends them.
var quotaTests = []struct {
	name string
	f    func(t *testing.T, s keyservice.Store)
}{
	{"SecretConsumers", testSecretConsumers},
	{"ProjectQuotas", testProjectQuotas},
	{"CountResources", testCountResources},
}

func testSecretConsumers(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	sc := &keyservice.SecretConsumer{SecretID: sec.ID, ProjectID: "p", Service: "image", ResourceType: "image", ResourceID: "r1", Created: base, Updated: base}
	must(t, s.PutSecretConsumer(c, sc))
	again := *sc
	again.Updated = base.Add(time.Hour)
	must(t, s.PutSecretConsumer(c, &again))
	must(t, s.PutSecretConsumer(c, &keyservice.SecretConsumer{SecretID: sec.ID, ProjectID: "p", Service: "volume", ResourceType: "volume", ResourceID: "r2", Created: base.Add(time.Second)}))
	wantErr(t, s.PutSecretConsumer(c, &keyservice.SecretConsumer{SecretID: uuid.NewString(), ProjectID: "p", Service: "a", ResourceType: "b", ResourceID: "c"}),
		keyservice.ErrNotFound, "consumer of a missing secret")
	list, total, err := s.ListSecretConsumers(c, sec.ID, 10, 0)
	must(t, err)
	if total != 2 || len(list) != 2 || list[0].Service != "image" || list[1].Service != "volume" {
		t.Fatalf("consumers %+v", list)
	}
	sameTime(t, "consumer created", list[0].Created, base)
	sameTime(t, "consumer updated", list[0].Updated, base.Add(time.Hour))
	_, total, err = s.ListSecretConsumers(c, sec.ID, 0, 0)
	must(t, err)
	if total != 2 {
		t.Errorf("count only: %d", total)
	}
	must(t, s.RemoveSecretConsumer(c, sec.ID, "image", "image", "r1"))
	wantErr(t, s.RemoveSecretConsumer(c, sec.ID, "image", "image", "r1"), keyservice.ErrNotFound, "removing a removed consumer")
	must(t, s.DeleteSecret(c, sec.ID))
	_, total, err = s.ListSecretConsumers(c, sec.ID, 10, 0)
	must(t, err)
	if total != 0 {
		t.Errorf("%d consumers outlived their secret", total)
	}
}

func testProjectQuotas(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	_, err := s.GetProjectQuotas(c, "p")
	wantErr(t, err, keyservice.ErrNotFound, "quotas of an unconfigured project")
	must(t, s.SetProjectQuotas(c, &keyservice.ProjectQuotas{ProjectID: "p", Quotas: keyservice.Quotas{"secrets": 5, "cas": 0}, Created: base}))
	got, err := s.GetProjectQuotas(c, "p")
	must(t, err)
	if fmt.Sprint(got.Quotas) != "map[cas:0 secrets:5]" {
		t.Fatalf("quotas %v", got.Quotas)
	}
	sameTime(t, "quotas created", got.Created, base)
	// Replacing drops what is not given and keeps the creation time.
	must(t, s.SetProjectQuotas(c, &keyservice.ProjectQuotas{ProjectID: "p", Quotas: keyservice.Quotas{"orders": -1}, Created: base.Add(time.Hour), Updated: base.Add(time.Hour)}))
	must(t, s.SetProjectQuotas(c, &keyservice.ProjectQuotas{ProjectID: "p", Quotas: keyservice.Quotas{"orders": -1}, Created: base.Add(time.Hour), Updated: base.Add(time.Hour)}))
	got, err = s.GetProjectQuotas(c, "p")
	must(t, err)
	if fmt.Sprint(got.Quotas) != "map[orders:-1]" {
		t.Fatalf("replaced quotas %v", got.Quotas)
	}
	sameTime(t, "quotas created after replace", got.Created, base)
	must(t, s.SetProjectQuotas(c, &keyservice.ProjectQuotas{ProjectID: "a", Quotas: keyservice.Quotas{}}))
	list, total, err := s.ListProjectQuotas(c, 1, 1)
	must(t, err)
	if total != 2 || len(list) != 1 || list[0].ProjectID != "p" {
		t.Fatalf("list %d %+v", total, list)
	}
	must(t, s.DeleteProjectQuotas(c, "p"))
	wantErr(t, s.DeleteProjectQuotas(c, "p"), keyservice.ErrNotFound, "second delete")
}

func testCountResources(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	now := base.Add(time.Hour)
	live, expired := newSecret("p"), newSecret("p")
	past := base
	expired.Expiration = &past
	must(t, s.CreateSecret(c, live))
	must(t, s.CreateSecret(c, expired))
	must(t, s.CreateSecret(c, newSecret("q")))
	must(t, s.CreateOrder(c, &keyservice.Order{ID: uuid.NewString(), ProjectID: "p", Type: "key", Status: "ACTIVE"}))
	ct := newContainer("p")
	must(t, s.CreateContainer(c, ct))
	must(t, s.PutContainerConsumer(c, &keyservice.ContainerConsumer{ContainerID: ct.ID, ProjectID: "p", Name: "n", URL: "u"}))
	must(t, s.PutSecretConsumer(c, &keyservice.SecretConsumer{SecretID: live.ID, ProjectID: "p", Service: "a", ResourceType: "b", ResourceID: "c"}))
	must(t, s.PutSecretConsumer(c, &keyservice.SecretConsumer{SecretID: live.ID, ProjectID: "q", Service: "a", ResourceType: "b", ResourceID: "d"}))
	for resource, want := range map[string]int{"secrets": 1, "orders": 1, "containers": 1, "consumers": 2, "cas": 0} {
		n, err := s.CountResources(c, "p", resource, now)
		must(t, err)
		if n != want {
			t.Errorf("%s: %d, want %d", resource, n, want)
		}
	}
	_, err := s.CountResources(c, "p", "keys", now)
	wantErr(t, err, keyservice.ErrInvalid, "count of an unknown resource")
}
