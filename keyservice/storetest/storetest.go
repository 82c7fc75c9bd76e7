// Package storetest is the conformance suite every keyservice.Store must
// pass. A store's own tests call Run with a function that opens a fresh,
// empty, migrated store; the suite then checks the contract documented on
// keyservice.Store: results, sentinel errors, concurrency (one winner per
// race, compare-and-swap), list filters, sorting and paging, expiry, and
// microsecond UTC time round trips.
//
// It is a test helper: only _test.go files should import it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/keyservice"
)

// Run runs the suite; open is called once per subtest and must return an
// empty store that no other subtest uses.
func Run(t *testing.T, open func(t *testing.T) keyservice.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s keyservice.Store)
	}{
		{"Ping", testPing},
		{"ProjectKEK", testProjectKEK},
		{"ProjectKEKCreateRace", testProjectKEKCreateRace},
		{"ProjectKEKReplaceRace", testProjectKEKReplaceRace},
		{"ListProjectKEKs", testListProjectKEKs},
		{"SecretRoundTrip", testSecretRoundTrip},
		{"SecretPayload", testSecretPayload},
		{"SecretPayloadRace", testSecretPayloadRace},
		{"DeleteSecret", testDeleteSecret},
		{"PurgeExpiredSecrets", testPurgeExpiredSecrets},
		{"Metadata", testMetadata},
		{"ListSecrets", testListSecrets},
		{"ListSecretsPaging", testListSecretsPaging},
		{"ListSecretsInvalid", testListSecretsInvalid},
		{"Orders", testOrders},
		{"ListOrders", testListOrders},
	}
	tests = append(tests, projectKeyTests...)  // projectkeys.go
	tests = append(tests, containerTests...)   // containers.go
	tests = append(tests, aclTests...)         // acls.go
	tests = append(tests, quotaTests...)       // quotas.go
	tests = append(tests, secretStoreTests...) // secretstores.go
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, open(t))
		})
	}
}

// base is a time with nanoseconds and a non-UTC zone: stores must return it
// in UTC, truncated to microseconds.
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))

// us is t as a store returns it.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(us(want)) || got.Location() != time.UTC {
		t.Errorf("%s: got %v (%v), want %v in UTC", what, got, got.Location(), us(want))
	}
}

func testPing(t *testing.T, s keyservice.Store) {
	must(t, s.Ping(ctx(t)))
}

func testProjectKEK(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	_, err := s.GetProjectKEK(c, "p1", "")
	wantErr(t, err, keyservice.ErrNotFound, "GetProjectKEK of an unknown project")

	kek := keyservice.ProjectKEK{ProjectID: "p1", MasterKeyID: "m1", WrappedKEK: []byte{0, 1, 2, 255}, Created: base, Updated: base.Add(time.Second)}
	must(t, s.CreateProjectKEK(c, kek))
	got, err := s.GetProjectKEK(c, "p1", "")
	must(t, err)
	if got.ProjectID != "p1" || got.MasterKeyID != "m1" || string(got.WrappedKEK) != string(kek.WrappedKEK) {
		t.Errorf("GetProjectKEK = %+v", got)
	}
	sameTime(t, "Created", got.Created, base)
	sameTime(t, "Updated", got.Updated, base.Add(time.Second))

	wantErr(t, s.CreateProjectKEK(c, kek), keyservice.ErrConflict, "second CreateProjectKEK")

	next := keyservice.ProjectKEK{ProjectID: "p1", MasterKeyID: "m2", WrappedKEK: []byte("rewrapped"), Updated: base.Add(time.Hour)}
	wantErr(t, s.ReplaceProjectKEK(c, next, "m0"), keyservice.ErrConflict, "ReplaceProjectKEK from a stale master key")
	must(t, s.ReplaceProjectKEK(c, next, "m1"))
	got, err = s.GetProjectKEK(c, "p1", "")
	must(t, err)
	if got.MasterKeyID != "m2" || string(got.WrappedKEK) != "rewrapped" {
		t.Errorf("after replace: %+v", got)
	}
	sameTime(t, "Created after replace", got.Created, base)
	sameTime(t, "Updated after replace", got.Updated, base.Add(time.Hour))
	// Rewrap is safe to run twice: the second attempt sees m2 already.
	wantErr(t, s.ReplaceProjectKEK(c, next, "m1"), keyservice.ErrConflict, "repeated ReplaceProjectKEK")
	// Replacing with identical content is not a miss.
	must(t, s.ReplaceProjectKEK(c, next, "m2"))

	next.ProjectID = "nobody"
	wantErr(t, s.ReplaceProjectKEK(c, next, "m1"), keyservice.ErrNotFound, "ReplaceProjectKEK of an unknown project")
}

const racers = 16

// race runs f in racers goroutines released at once and returns their errors.
func race(f func(i int) error) []error {
	errs := make([]error, racers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range racers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = f(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// oneWinner checks that exactly one racer succeeded and every other got
// ErrConflict, and returns the winner.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, keyservice.ErrConflict):
			t.Fatalf("racer %d: %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer won")
	}
	return winner
}

func testProjectKEKCreateRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	errs := race(func(i int) error {
		return s.CreateProjectKEK(c, keyservice.ProjectKEK{ProjectID: "raced", MasterKeyID: "m1", WrappedKEK: []byte{byte(i)}, Created: base})
	})
	w := oneWinner(t, errs)
	got, err := s.GetProjectKEK(c, "raced", "")
	must(t, err)
	if len(got.WrappedKEK) != 1 || got.WrappedKEK[0] != byte(w) {
		t.Errorf("stored KEK %v is not the winner's (%d)", got.WrappedKEK, w)
	}
}

func testProjectKEKReplaceRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	must(t, s.CreateProjectKEK(c, keyservice.ProjectKEK{ProjectID: "p", MasterKeyID: "old", WrappedKEK: []byte("x"), Created: base}))
	errs := race(func(i int) error {
		return s.ReplaceProjectKEK(c, keyservice.ProjectKEK{ProjectID: "p", MasterKeyID: fmt.Sprintf("new-%d", i), WrappedKEK: []byte{byte(i)}, Updated: base}, "old")
	})
	w := oneWinner(t, errs)
	got, err := s.GetProjectKEK(c, "p", "")
	must(t, err)
	if got.MasterKeyID != fmt.Sprintf("new-%d", w) || got.WrappedKEK[0] != byte(w) {
		t.Errorf("stored %+v, winner %d", got, w)
	}
}

func testListProjectKEKs(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	var want []string
	for i := range 25 {
		p := fmt.Sprintf("project-%02d", (i*7)%25) // inserted out of order
		want = append(want, p)
		must(t, s.CreateProjectKEK(c, keyservice.ProjectKEK{ProjectID: p, MasterKeyID: "m", WrappedKEK: []byte(p), Created: base}))
	}
	slices.Sort(want)
	var got []string
	after := ""
	for range 10 {
		page, err := s.ListProjectKEKs(c, "", after, 10)
		must(t, err)
		if len(page) > 10 {
			t.Fatalf("page of %d, limit 10", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			if string(k.WrappedKEK) != k.ProjectID {
				t.Errorf("KEK of %s: %q", k.ProjectID, k.WrappedKEK)
			}
			got = append(got, k.ProjectID)
		}
		after = page[len(page)-1].ProjectID
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged KEKs %v, want %v", got, want)
	}
}
