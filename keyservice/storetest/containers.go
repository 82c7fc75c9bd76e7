package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/keyservice"
)

// containerTests are the conformance cases of containers and container
// consumers; Run appends them to its list.
var containerTests = []struct {
	name string
	f    func(t *testing.T, s keyservice.Store)
}{
	{"ContainerRoundTrip", testContainerRoundTrip},
	{"ContainerMissingSecret", testContainerMissingSecret},
	{"ContainerSecrets", testContainerSecrets},
	{"ContainerCascades", testContainerCascades},
	{"ListContainers", testListContainers},
	{"ContainerConsumers", testContainerConsumers},
}

func newContainer(project string, refs ...keyservice.ContainerSecret) *keyservice.Container {
	return &keyservice.Container{
		ID: uuid.NewString(), ProjectID: project, CreatorID: "user-1", Name: "c", Type: keyservice.ContainerTypeGeneric,
		Status: keyservice.StatusActive, Created: base, Updated: base, Secrets: refs,
	}
}

func testContainerRoundTrip(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	a, b := newSecret("p"), newSecret("p")
	must(t, s.CreateSecret(c, a))
	must(t, s.CreateSecret(c, b))
	ct := newContainer("p", keyservice.ContainerSecret{Name: "public_key", SecretID: a.ID}, keyservice.ContainerSecret{Name: "private_key", SecretID: b.ID})
	ct.Type = keyservice.ContainerTypeRSA
	must(t, s.CreateContainer(c, ct))
	wantErr(t, s.CreateContainer(c, ct), keyservice.ErrConflict, "second CreateContainer with the same id")

	got, err := s.GetContainer(c, ct.ID)
	must(t, err)
	if got.ProjectID != "p" || got.CreatorID != "user-1" || got.Name != "c" || got.Type != keyservice.ContainerTypeRSA || got.Status != keyservice.StatusActive {
		t.Fatalf("GetContainer = %+v", got)
	}
	sameTime(t, "Created", got.Created, base)
	sameTime(t, "Updated", got.Updated, base)
	want := fmt.Sprint([]keyservice.ContainerSecret{{Name: "private_key", SecretID: b.ID}, {Name: "public_key", SecretID: a.ID}})
	if fmt.Sprint(got.Secrets) != want {
		t.Errorf("references %v, want %v (ordered by name)", got.Secrets, want)
	}
	if got.Consumers == nil || len(got.Consumers) != 0 {
		t.Errorf("consumers %v, want an empty list", got.Consumers)
	}
	// Unnamed container, no references.
	empty := newContainer("p")
	empty.Name = ""
	must(t, s.CreateContainer(c, empty))
	got, err = s.GetContainer(c, empty.ID)
	must(t, err)
	if got.Name != "" || got.Secrets == nil || len(got.Secrets) != 0 {
		t.Errorf("empty container %+v", got)
	}
	_, err = s.GetContainer(c, uuid.NewString())
	wantErr(t, err, keyservice.ErrNotFound, "GetContainer of an unknown id")
}

func testContainerMissingSecret(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	a := newSecret("p")
	must(t, s.CreateSecret(c, a))
	ct := newContainer("p", keyservice.ContainerSecret{Name: "a", SecretID: a.ID}, keyservice.ContainerSecret{Name: "b", SecretID: uuid.NewString()})
	wantErr(t, s.CreateContainer(c, ct), keyservice.ErrNotFound, "container referencing a missing secret")
	// All or nothing: the container itself was not stored.
	_, err := s.GetContainer(c, ct.ID)
	wantErr(t, err, keyservice.ErrNotFound, "GetContainer after a failed create")
}

func testContainerSecrets(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	a := newSecret("p")
	must(t, s.CreateSecret(c, a))
	ct := newContainer("p")
	must(t, s.CreateContainer(c, ct))
	later := base.Add(time.Minute)
	ref := keyservice.ContainerSecret{Name: "one", SecretID: a.ID}
	must(t, s.AddContainerSecret(c, ct.ID, ref, later))
	wantErr(t, s.AddContainerSecret(c, ct.ID, ref, later), keyservice.ErrConflict, "same reference twice")
	// The same secret under another name is another reference.
	must(t, s.AddContainerSecret(c, ct.ID, keyservice.ContainerSecret{Name: "two", SecretID: a.ID}, later))
	wantErr(t, s.AddContainerSecret(c, ct.ID, keyservice.ContainerSecret{Name: "x", SecretID: uuid.NewString()}, later),
		keyservice.ErrNotFound, "reference to a missing secret")
	wantErr(t, s.AddContainerSecret(c, uuid.NewString(), ref, later), keyservice.ErrNotFound, "reference in a missing container")
	got, err := s.GetContainer(c, ct.ID)
	must(t, err)
	if len(got.Secrets) != 2 {
		t.Fatalf("references %v", got.Secrets)
	}
	sameTime(t, "Updated after add", got.Updated, later)

	must(t, s.RemoveContainerSecret(c, ct.ID, ref, later.Add(time.Minute)))
	wantErr(t, s.RemoveContainerSecret(c, ct.ID, ref, later), keyservice.ErrNotFound, "removing a removed reference")
	got, err = s.GetContainer(c, ct.ID)
	must(t, err)
	if len(got.Secrets) != 1 || got.Secrets[0].Name != "two" {
		t.Fatalf("references after remove %v", got.Secrets)
	}
	sameTime(t, "Updated after remove", got.Updated, later.Add(time.Minute))
}

func testContainerCascades(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	a, b := newSecret("p"), newSecret("p")
	must(t, s.CreateSecret(c, a))
	must(t, s.CreateSecret(c, b))
	ct := newContainer("p", keyservice.ContainerSecret{Name: "a", SecretID: a.ID}, keyservice.ContainerSecret{Name: "b", SecretID: b.ID})
	must(t, s.CreateContainer(c, ct))
	must(t, s.PutContainerConsumer(c, &keyservice.ContainerConsumer{ContainerID: ct.ID, ProjectID: "p", Name: "lb", URL: "http://lb/1"}))

	// Deleting a secret takes it out of the container.
	must(t, s.DeleteSecret(c, a.ID))
	got, err := s.GetContainer(c, ct.ID)
	must(t, err)
	if len(got.Secrets) != 1 || got.Secrets[0].SecretID != b.ID {
		t.Fatalf("references after secret delete %v", got.Secrets)
	}
	// Deleting the container leaves the secrets alone and drops consumers.
	must(t, s.DeleteContainer(c, ct.ID))
	wantErr(t, s.DeleteContainer(c, ct.ID), keyservice.ErrNotFound, "second DeleteContainer")
	_, err = s.GetSecret(c, b.ID)
	must(t, err)
	_, total, err := s.ListContainerConsumers(c, ct.ID, 10, 0)
	must(t, err)
	if total != 0 {
		t.Errorf("%d consumers survived their container", total)
	}
	// A container re-created under the same id starts empty.
	again := newContainer("p")
	again.ID = ct.ID
	must(t, s.CreateContainer(c, again))
	got, err = s.GetContainer(c, ct.ID)
	must(t, err)
	if len(got.Secrets) != 0 || len(got.Consumers) != 0 {
		t.Errorf("re-created container %+v", got)
	}
}

func testListContainers(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	var ids []string
	for i := range 5 {
		ct := newContainer("p", keyservice.ContainerSecret{Name: "s", SecretID: sec.ID})
		ct.Name = fmt.Sprintf("box-%d", i)
		ct.Created = base.Add(time.Duration(i) * time.Second)
		if i == 4 {
			ct.Type = keyservice.ContainerTypeCertificate
		}
		must(t, s.CreateContainer(c, ct))
		ids = append(ids, ct.ID)
	}
	must(t, s.CreateContainer(c, newContainer("q")))
	list, total, err := s.ListContainers(c, keyservice.ContainerFilter{ProjectID: "p", Limit: 2, Offset: 1})
	must(t, err)
	if total != 5 || len(list) != 2 || list[0].ID != ids[1] || list[1].ID != ids[2] {
		t.Fatalf("page: total %d, %d items", total, len(list))
	}
	if len(list[0].Secrets) != 1 || list[0].Secrets[0].SecretID != sec.ID {
		t.Errorf("listed container without its references: %+v", list[0])
	}
	for _, tc := range []struct {
		f    keyservice.ContainerFilter
		want int
	}{
		{keyservice.ContainerFilter{ProjectID: "p", Name: "box-3"}, 1},
		{keyservice.ContainerFilter{ProjectID: "p", Name: "BOX-%"}, 5},
		{keyservice.ContainerFilter{ProjectID: "p", Type: keyservice.ContainerTypeCertificate}, 1},
		{keyservice.ContainerFilter{ProjectID: "q"}, 1},
		{keyservice.ContainerFilter{ProjectID: "nobody"}, 0},
	} {
		tc.f.Limit = 10
		list, total, err := s.ListContainers(c, tc.f)
		must(t, err)
		if total != tc.want || len(list) != tc.want {
			t.Errorf("%+v: total %d, %d items, want %d", tc.f, total, len(list), tc.want)
		}
	}
	_, total, err = s.ListContainers(c, keyservice.ContainerFilter{ProjectID: "p", Offset: 99, Limit: 10})
	must(t, err)
	if total != 5 {
		t.Errorf("total past the end %d", total)
	}
}

func testContainerConsumers(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	ct := newContainer("p")
	must(t, s.CreateContainer(c, ct))
	first := &keyservice.ContainerConsumer{ContainerID: ct.ID, ProjectID: "p", Name: "lb", URL: "http://lb/1", Created: base, Updated: base}
	must(t, s.PutContainerConsumer(c, first))
	// Registering again refreshes, it does not duplicate nor fail.
	again := *first
	again.Created, again.Updated = base.Add(time.Hour), base.Add(time.Hour)
	must(t, s.PutContainerConsumer(c, &again))
	must(t, s.PutContainerConsumer(c, &keyservice.ContainerConsumer{ContainerID: ct.ID, ProjectID: "p", Name: "lb", URL: "http://lb/2", Created: base.Add(time.Second)}))
	wantErr(t, s.PutContainerConsumer(c, &keyservice.ContainerConsumer{ContainerID: uuid.NewString(), ProjectID: "p", Name: "x", URL: "y"}),
		keyservice.ErrNotFound, "consumer of a missing container")

	list, total, err := s.ListContainerConsumers(c, ct.ID, 10, 0)
	must(t, err)
	if total != 2 || len(list) != 2 || list[0].URL != "http://lb/1" || list[1].URL != "http://lb/2" {
		t.Fatalf("consumers %+v", list)
	}
	sameTime(t, "consumer created", list[0].Created, base)
	sameTime(t, "consumer updated", list[0].Updated, base.Add(time.Hour))
	page, total, err := s.ListContainerConsumers(c, ct.ID, 1, 1)
	must(t, err)
	if total != 2 || len(page) != 1 || page[0].URL != "http://lb/2" {
		t.Fatalf("consumer page %+v", page)
	}
	got, err := s.GetContainer(c, ct.ID)
	must(t, err)
	if len(got.Consumers) != 2 {
		t.Errorf("container shows %d consumers", len(got.Consumers))
	}
	must(t, s.RemoveContainerConsumer(c, ct.ID, "lb", "http://lb/1"))
	wantErr(t, s.RemoveContainerConsumer(c, ct.ID, "lb", "http://lb/1"), keyservice.ErrNotFound, "removing a removed consumer")
}
