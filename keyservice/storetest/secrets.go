package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"opendev.org/x/arca/keyservice"
)

func newSecret(project string) *keyservice.Secret {
	return &keyservice.Secret{
		ID: uuid.NewString(), ProjectID: project, CreatorID: "user-1", SecretType: keyservice.SecretTypeOpaque,
		Status: keyservice.StatusActive, Created: base, Updated: base,
	}
}

func testSecretRoundTrip(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	exp := base.Add(365 * 24 * time.Hour)
	full := &keyservice.Secret{
		ID: uuid.NewString(), ProjectID: "p", CreatorID: "u", Name: "ünïcode name ✓", SecretType: keyservice.SecretTypeSymmetric,
		Algorithm: "aes", BitLength: 256, Mode: "cbc", Status: keyservice.StatusActive, Expiration: &exp,
		Created: base, Updated: base.Add(time.Microsecond), PayloadContentType: "application/octet-stream",
		Payload: []byte{0, 0xff, 'a', 0},
	}
	must(t, s.CreateSecret(c, full))
	got, err := s.GetSecret(c, full.ID)
	must(t, err)
	if got.ID != full.ID || got.ProjectID != "p" || got.CreatorID != "u" || got.Name != full.Name ||
		got.SecretType != "symmetric" || got.Algorithm != "aes" || got.BitLength != 256 || got.Mode != "cbc" ||
		got.Status != "ACTIVE" || got.PayloadContentType != "application/octet-stream" || string(got.Payload) != string(full.Payload) {
		t.Errorf("GetSecret = %+v", got)
	}
	sameTime(t, "Created", got.Created, base)
	sameTime(t, "Updated", got.Updated, base.Add(time.Microsecond))
	if got.Expiration == nil {
		t.Fatal("Expiration lost")
	}
	sameTime(t, "Expiration", *got.Expiration, exp)
	// CreateSecret normalises the caller's struct to what was stored.
	if !full.Created.Equal(got.Created) || !full.Expiration.Equal(*got.Expiration) {
		t.Errorf("caller's struct not normalised: %v %v", full.Created, *full.Expiration)
	}

	bare := newSecret("p")
	must(t, s.CreateSecret(c, bare))
	got, err = s.GetSecret(c, bare.ID)
	must(t, err)
	if got.Name != "" || got.Algorithm != "" || got.BitLength != 0 || got.Mode != "" || got.Expiration != nil ||
		got.HasPayload() || got.PayloadContentType != "" {
		t.Errorf("secret without optional fields: %+v", got)
	}

	dup := newSecret("other")
	dup.ID = full.ID
	wantErr(t, s.CreateSecret(c, dup), keyservice.ErrConflict, "CreateSecret with a used id")
	_, err = s.GetSecret(c, uuid.NewString())
	wantErr(t, err, keyservice.ErrNotFound, "GetSecret of an unknown id")

	// GetSecret does not hide expired secrets: that is the service's call.
	past := base.Add(-time.Hour)
	old := newSecret("p")
	old.Created, old.Updated = past.Add(-time.Hour), past.Add(-time.Hour)
	old.Expiration = &past
	must(t, s.CreateSecret(c, old))
	_, err = s.GetSecret(c, old.ID)
	must(t, err)
}

func testSecretPayload(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	later := base.Add(90 * time.Second)
	must(t, s.SetSecretPayload(c, sec.ID, "text/plain", []byte("sealed"), later))
	got, err := s.GetSecret(c, sec.ID)
	must(t, err)
	if !got.HasPayload() || string(got.Payload) != "sealed" || got.PayloadContentType != "text/plain" {
		t.Errorf("after SetSecretPayload: %+v", got)
	}
	sameTime(t, "Updated", got.Updated, later)
	sameTime(t, "Created", got.Created, base)

	wantErr(t, s.SetSecretPayload(c, sec.ID, "text/plain", []byte("again"), later), keyservice.ErrConflict, "second SetSecretPayload")
	got, err = s.GetSecret(c, sec.ID)
	must(t, err)
	if string(got.Payload) != "sealed" {
		t.Errorf("payload overwritten: %q", got.Payload)
	}
	wantErr(t, s.SetSecretPayload(c, uuid.NewString(), "text/plain", []byte("x"), later), keyservice.ErrNotFound, "SetSecretPayload of an unknown secret")

	with := newSecret("p")
	with.Payload, with.PayloadContentType = []byte("one-step"), "application/octet-stream"
	must(t, s.CreateSecret(c, with))
	wantErr(t, s.SetSecretPayload(c, with.ID, "text/plain", []byte("x"), later), keyservice.ErrConflict, "SetSecretPayload of a one-step secret")
}

func testSecretPayloadRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	errs := race(func(i int) error {
		return s.SetSecretPayload(c, sec.ID, "application/octet-stream", []byte{byte(i)}, base)
	})
	w := oneWinner(t, errs)
	got, err := s.GetSecret(c, sec.ID)
	must(t, err)
	if len(got.Payload) != 1 || got.Payload[0] != byte(w) {
		t.Errorf("payload %v is not the winner's (%d)", got.Payload, w)
	}
}

func testDeleteSecret(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	must(t, s.ReplaceSecretMetadata(c, sec.ID, map[string]string{"a": "1", "b": "2"}))
	keep := newSecret("p")
	must(t, s.CreateSecret(c, keep))
	must(t, s.AddSecretMetadatum(c, keep.ID, "a", "kept"))

	must(t, s.DeleteSecret(c, sec.ID))
	_, err := s.GetSecret(c, sec.ID)
	wantErr(t, err, keyservice.ErrNotFound, "GetSecret after delete")
	wantErr(t, s.DeleteSecret(c, sec.ID), keyservice.ErrNotFound, "second DeleteSecret")
	_, err = s.GetSecretMetadata(c, sec.ID)
	wantErr(t, err, keyservice.ErrNotFound, "GetSecretMetadata after delete")

	// The metadata went with it: a secret re-created under the same id
	// starts empty.
	again := newSecret("p")
	again.ID = sec.ID
	must(t, s.CreateSecret(c, again))
	md, err := s.GetSecretMetadata(c, sec.ID)
	must(t, err)
	if len(md) != 0 {
		t.Errorf("metadata survived the delete: %v", md)
	}
	md, err = s.GetSecretMetadata(c, keep.ID)
	must(t, err)
	if md["a"] != "kept" {
		t.Errorf("another secret's metadata: %v", md)
	}
}

func testMetadata(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	missing := uuid.NewString()
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))

	md, err := s.GetSecretMetadata(c, sec.ID)
	must(t, err)
	if md == nil || len(md) != 0 {
		t.Errorf("metadata of a new secret: %#v", md)
	}

	checkMD := func(want map[string]string) {
		t.Helper()
		got, err := s.GetSecretMetadata(c, sec.ID)
		must(t, err)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("metadata %v, want %v", got, want)
		}
	}
	must(t, s.ReplaceSecretMetadata(c, sec.ID, map[string]string{"geo": "eu", "owner": "Ünïcode ✓", "empty": ""}))
	checkMD(map[string]string{"geo": "eu", "owner": "Ünïcode ✓", "empty": ""})
	must(t, s.ReplaceSecretMetadata(c, sec.ID, map[string]string{"geo": "us"}))
	checkMD(map[string]string{"geo": "us"})

	steps := []struct {
		name string
		op   func() error
		want error
	}{
		{"add new", func() error { return s.AddSecretMetadatum(c, sec.ID, "tier", "gold") }, nil},
		{"add existing", func() error { return s.AddSecretMetadatum(c, sec.ID, "tier", "silver") }, keyservice.ErrConflict},
		{"add to unknown secret", func() error { return s.AddSecretMetadatum(c, missing, "k", "v") }, keyservice.ErrNotFound},
		{"update existing", func() error { return s.UpdateSecretMetadatum(c, sec.ID, "geo", "ap") }, nil},
		{"update to the same value", func() error { return s.UpdateSecretMetadatum(c, sec.ID, "geo", "ap") }, nil},
		{"update absent key", func() error { return s.UpdateSecretMetadatum(c, sec.ID, "nope", "v") }, keyservice.ErrNotFound},
		{"update on unknown secret", func() error { return s.UpdateSecretMetadatum(c, missing, "geo", "v") }, keyservice.ErrNotFound},
		{"delete existing", func() error { return s.DeleteSecretMetadatum(c, sec.ID, "tier") }, nil},
		{"delete again", func() error { return s.DeleteSecretMetadatum(c, sec.ID, "tier") }, keyservice.ErrNotFound},
		{"delete on unknown secret", func() error { return s.DeleteSecretMetadatum(c, missing, "geo") }, keyservice.ErrNotFound},
		{"replace on unknown secret", func() error { return s.ReplaceSecretMetadata(c, missing, map[string]string{"a": "b"}) }, keyservice.ErrNotFound},
		{"get of unknown secret", func() error { _, err := s.GetSecretMetadata(c, missing); return err }, keyservice.ErrNotFound},
	}
	for _, st := range steps {
		err := st.op()
		if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
			t.Fatalf("%s: got %v, want %v", st.name, err, st.want)
		}
	}
	checkMD(map[string]string{"geo": "ap"})
	must(t, s.ReplaceSecretMetadata(c, sec.ID, nil))
	checkMD(map[string]string{})
	// The failed replace created nothing.
	_, err = s.GetSecretMetadata(c, missing)
	wantErr(t, err, keyservice.ErrNotFound, "metadata of the unknown secret")
}

// listFixture creates the secrets the list tests query and returns them by
// label. Project "p" has the live ones; "q" is another project; some of
// "p"'s have expired by now.
func listFixture(t *testing.T, s keyservice.Store) (map[string]*keyservice.Secret, time.Time) {
	c := ctx(t)
	now := base.Add(100 * time.Hour)
	soon, past := now.Add(time.Hour), now.Add(-time.Hour)
	specs := []struct {
		label, name, alg, mode, typ string
		bits                        int
		created                     time.Duration // after base
		exp                         *time.Time
		project                     string
	}{
		{"a", "alpha", "aes", "cbc", keyservice.SecretTypeSymmetric, 256, 1 * time.Hour, nil, "p"},
		{"b", "beta", "aes", "gcm", keyservice.SecretTypeSymmetric, 128, 2 * time.Hour, &soon, "p"},
		{"c", "gamma", "rsa", "", keyservice.SecretTypePrivate, 2048, 3 * time.Hour, nil, "p"},
		{"d", "", "", "", keyservice.SecretTypeOpaque, 0, 4 * time.Hour, nil, "p"},
		{"e", "alphabet", "AES", "CBC", keyservice.SecretTypeSymmetric, 256, 5 * time.Hour, nil, "p"},
		{"expired", "alpha", "aes", "cbc", keyservice.SecretTypeSymmetric, 256, 6 * time.Hour, &past, "p"},
		{"expiring-now", "alpha", "aes", "cbc", keyservice.SecretTypeSymmetric, 256, 7 * time.Hour, &now, "p"},
		{"other-project", "alpha", "aes", "cbc", keyservice.SecretTypeSymmetric, 256, 8 * time.Hour, nil, "q"},
	}
	out := map[string]*keyservice.Secret{}
	for _, sp := range specs {
		sec := newSecret(sp.project)
		sec.Name, sec.Algorithm, sec.Mode, sec.SecretType, sec.BitLength = sp.name, sp.alg, sp.mode, sp.typ, sp.bits
		sec.Created = base.Add(sp.created)
		sec.Updated = sec.Created.Add(10 * time.Hour)
		sec.Expiration = sp.exp
		must(t, s.CreateSecret(c, sec))
		out[sp.label] = sec
	}
	return out, now
}

func labels(byLabel map[string]*keyservice.Secret, list []*keyservice.Secret) []string {
	out := []string{}
	for _, sec := range list {
		for l, want := range byLabel {
			if want.ID == sec.ID {
				out = append(out, l)
			}
		}
	}
	return out
}

func testListSecrets(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	fx, now := listFixture(t, s)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	tests := []struct {
		name string
		f    keyservice.SecretFilter
		want []string
	}{
		{"all live, by created", keyservice.SecretFilter{}, []string{"a", "b", "c", "d", "e"}},
		{"name exact", keyservice.SecretFilter{Name: "alpha"}, []string{"a"}},
		{"name pattern", keyservice.SecretFilter{Name: "alpha%"}, []string{"a", "e"}},
		{"name underscore", keyservice.SecretFilter{Name: "b_ta"}, []string{"b"}},
		{"name escaped wildcard", keyservice.SecretFilter{Name: `alpha\%`}, []string{}},
		{"algorithm, ASCII case-insensitive", keyservice.SecretFilter{Algorithm: "aes"}, []string{"a", "b", "e"}},
		{"mode", keyservice.SecretFilter{Mode: "cbc"}, []string{"a", "e"}},
		{"bits", keyservice.SecretFilter{BitLength: 256}, []string{"a", "e"}},
		{"secret type", keyservice.SecretFilter{SecretType: keyservice.SecretTypePrivate}, []string{"c"}},
		{"combined", keyservice.SecretFilter{Algorithm: "aes", BitLength: 128, SecretType: keyservice.SecretTypeSymmetric}, []string{"b"}},
		{"created gt", keyservice.SecretFilter{Created: []keyservice.TimeCondition{{Op: keyservice.CmpGT, Time: at(3 * time.Hour)}}}, []string{"d", "e"}},
		{"created gte", keyservice.SecretFilter{Created: []keyservice.TimeCondition{{Op: keyservice.CmpGTE, Time: at(3 * time.Hour)}}}, []string{"c", "d", "e"}},
		{"created range", keyservice.SecretFilter{Created: []keyservice.TimeCondition{
			{Op: keyservice.CmpGT, Time: at(1 * time.Hour)}, {Op: keyservice.CmpLT, Time: at(4 * time.Hour)}}}, []string{"b", "c"}},
		{"created equal, to the microsecond", keyservice.SecretFilter{Created: []keyservice.TimeCondition{{Op: keyservice.CmpEQ, Time: at(2 * time.Hour)}}}, []string{"b"}},
		{"created equal, a microsecond off", keyservice.SecretFilter{Created: []keyservice.TimeCondition{{Op: keyservice.CmpEQ, Time: at(2*time.Hour + time.Microsecond)}}}, []string{}},
		{"updated lte", keyservice.SecretFilter{Updated: []keyservice.TimeCondition{{Op: keyservice.CmpLTE, Time: at(12 * time.Hour)}}}, []string{"a", "b"}},
		{"expiration gt", keyservice.SecretFilter{Expiration: []keyservice.TimeCondition{{Op: keyservice.CmpGT, Time: now}}}, []string{"b"}},
		{"sort name desc", keyservice.SecretFilter{Sort: []keyservice.SortKey{{Field: "name", Desc: true}}}, []string{"c", "b", "e", "a", "d"}},
		{"sort bits then created desc", keyservice.SecretFilter{Sort: []keyservice.SortKey{{Field: "bit_length"}, {Field: "created", Desc: true}}},
			[]string{"d", "b", "e", "a", "c"}},
		{"sort expiration desc (NULLs sort lowest)", keyservice.SecretFilter{Sort: []keyservice.SortKey{{Field: "expiration", Desc: true}, {Field: "created"}}},
			[]string{"b", "a", "c", "d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.ProjectID, f.Now, f.Limit = "p", now, 100
			list, total, err := s.ListSecrets(c, f)
			must(t, err)
			got := labels(fx, list)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if total != len(list) {
				t.Errorf("total %d, %d listed", total, len(list))
			}
			for _, sec := range list {
				if sec.Expired(now) || sec.ProjectID != "p" {
					t.Errorf("listed %+v", sec)
				}
			}
		})
	}
	// Without Now the store uses the clock: these expirations are far past.
	list, total, err := s.ListSecrets(c, keyservice.SecretFilter{ProjectID: "q", Limit: 10})
	must(t, err)
	if total != 1 || len(list) != 1 {
		t.Errorf("project q: %d of %d", len(list), total)
	}
	list, total, err = s.ListSecrets(c, keyservice.SecretFilter{ProjectID: "nobody", Limit: 10, Now: now})
	must(t, err)
	if total != 0 || len(list) != 0 {
		t.Errorf("unknown project: %d of %d", len(list), total)
	}
}

func testListSecretsPaging(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	const n = 23
	var want []string
	for i := range n {
		sec := newSecret("p")
		// Pairs share a creation time: the id must break the tie.
		sec.Created = base.Add(time.Duration(i/2) * time.Second)
		sec.Updated = sec.Created
		must(t, s.CreateSecret(c, sec))
		want = append(want, sec.ID)
	}
	// Expected order: created, then id.
	byID := map[string]int{}
	for i, id := range want {
		byID[id] = i / 2
	}
	slices.SortFunc(want, func(a, b string) int {
		if byID[a] != byID[b] {
			return byID[a] - byID[b]
		}
		if a < b {
			return -1
		}
		return 1
	})
	var got []string
	for offset := 0; offset < n+5; offset += 5 {
		list, total, err := s.ListSecrets(c, keyservice.SecretFilter{ProjectID: "p", Limit: 5, Offset: offset, Now: base})
		must(t, err)
		if total != n {
			t.Fatalf("total %d, want %d", total, n)
		}
		if wantLen := max(0, min(5, n-offset)); len(list) != wantLen {
			t.Fatalf("offset %d: %d secrets, want %d", offset, len(list), wantLen)
		}
		for _, sec := range list {
			got = append(got, sec.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages in order\n%v\nwant\n%v", got, want)
	}
}

func testListSecretsInvalid(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	for _, f := range []keyservice.SecretFilter{
		{Sort: []keyservice.SortKey{{Field: "payload"}}},
		{Sort: []keyservice.SortKey{{Field: "name; DROP TABLE secrets"}}},
		{Created: []keyservice.TimeCondition{{Op: "like", Time: base}}},
	} {
		f.ProjectID, f.Limit = "p", 10
		_, _, err := s.ListSecrets(c, f)
		wantErr(t, err, keyservice.ErrInvalid, fmt.Sprintf("ListSecrets(%+v)", f))
	}
	// Patterns are values, never SQL.
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	list, total, err := s.ListSecrets(c, keyservice.SecretFilter{ProjectID: "p", Name: "' OR 1=1 --", Limit: 10})
	must(t, err)
	if total != 0 || len(list) != 0 {
		t.Errorf("injection matched %d", total)
	}
}

// testPurgeExpiredSecrets: the secrets that expired before the cut go,
// with their metadata and container references; a secret expiring at the
// cut or later, or never, stays. The dry run counts without removing.
func testPurgeExpiredSecrets(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	cut := base.Add(time.Hour)
	at := func(d time.Duration) *time.Time { e := cut.Add(d); return &e }
	var expired []*keyservice.Secret
	for i := range 5 {
		sec := newSecret("purge")
		sec.Expiration = at(-time.Duration(i+1) * time.Minute)
		must(t, s.CreateSecret(c, sec))
		must(t, s.AddSecretMetadatum(c, sec.ID, "k", "v"))
		expired = append(expired, sec)
	}
	atCut, later, never := newSecret("purge"), newSecret("purge"), newSecret("purge")
	atCut.Expiration, later.Expiration = at(0), at(time.Minute)
	for _, sec := range []*keyservice.Secret{atCut, later, never} {
		must(t, s.CreateSecret(c, sec))
	}
	ct := newContainer("purge", keyservice.ContainerSecret{Name: "gone", SecretID: expired[0].ID}, keyservice.ContainerSecret{Name: "kept", SecretID: later.ID})
	must(t, s.CreateContainer(c, ct))

	n, err := s.PurgeExpiredSecrets(c, cut, 0, true)
	must(t, err)
	if n != 5 {
		t.Fatalf("dry run counted %d expired secrets, want 5", n)
	}
	if _, err := s.GetSecret(c, expired[0].ID); err != nil {
		t.Fatalf("the dry run removed a secret: %v", err)
	}
	n, err = s.PurgeExpiredSecrets(c, cut, 2, false) // three batches
	must(t, err)
	if n != 5 {
		t.Fatalf("purged %d secrets, want 5", n)
	}
	for _, sec := range expired {
		_, err := s.GetSecret(c, sec.ID)
		wantErr(t, err, keyservice.ErrNotFound, "GetSecret of a purged secret")
		_, err = s.GetSecretMetadata(c, sec.ID)
		wantErr(t, err, keyservice.ErrNotFound, "GetSecretMetadata of a purged secret")
	}
	for _, sec := range []*keyservice.Secret{atCut, later, never} {
		if _, err := s.GetSecret(c, sec.ID); err != nil {
			t.Errorf("a secret not expired before the cut was removed: %v", err)
		}
	}
	got, err := s.GetContainer(c, ct.ID)
	must(t, err)
	if len(got.Secrets) != 1 || got.Secrets[0].SecretID != later.ID {
		t.Errorf("container references after the purge: %+v", got.Secrets)
	}
	if n, err := s.PurgeExpiredSecrets(c, cut, 0, false); err != nil || n != 0 {
		t.Errorf("a second purge: %d, %v", n, err)
	}
}
