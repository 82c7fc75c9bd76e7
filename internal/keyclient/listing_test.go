package keyclient

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objcrypt"
)

func TestListingKeyCachedAndClassified(t *testing.T) {
	f, _, c := newFake(t, Options{MaterialTTL: time.Hour, ErrorTTL: time.Millisecond})
	ctx := context.Background()
	for range 50 {
		k, err := c.ListingKey(ctx, "p1", "k1")
		if err != nil || !bytes.Equal(k, bytes.Repeat([]byte("l"), 32)) {
			t.Fatalf("ListingKey = %q, %v", k, err)
		}
	}
	if n := f.requests.Load(); n != 1 {
		t.Fatalf("%d requests for 50 calls, want 1", n)
	}
	// Listing keys and material are cached apart: one never answers for
	// the other.
	if m, err := c.KeyMaterial(ctx, "p1", "k1"); err != nil || bytes.Equal(m, bytes.Repeat([]byte("l"), 32)) {
		t.Fatalf("material answered from the listing cache: %q, %v", m, err)
	}
	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusGone, ErrDestroyed}, {http.StatusNotFound, ErrNotFound},
		{http.StatusForbidden, ErrDenied}, {http.StatusServiceUnavailable, ErrUnavailable},
	} {
		id := "k" + http.StatusText(tc.status)[:2]
		f.force("/v1/project-keys/"+id+"/listing-key", tc.status)
		if _, err := c.ListingKey(ctx, "p1", id); !errors.Is(err, tc.want) {
			t.Errorf("%d: %v, want %v", tc.status, err, tc.want)
		}
	}
	if _, err := c.ListingKey(ctx, "p1", "../payload"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a key id that bends the URL: %v", err)
	}
	c.Purge()
	before := f.requests.Load()
	if _, err := c.ListingKey(ctx, "p1", "k1"); err != nil || f.requests.Load() != before+1 {
		t.Fatalf("after Purge: %v, %d requests", err, f.requests.Load()-before)
	}
}

// Against a real arca-api: the listing key is the one derived from the
// key's material, and the client never sees the material for it.
func TestRealListingKey(t *testing.T) {
	dbURL, _ := mariaDB(t)
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL})
	c, err := New(Options{NoAuth: true, Endpoint: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	project := newProject()
	k, err := c.ActiveKey(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.KeyMaterial(ctx, project, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := objcrypt.DeriveListingKey(objcrypt.ProjectKey{ID: k.ID, Key: m})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ListingKey(ctx, project, k.ID)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ListingKey = %x, %v; want %x", got, err, want)
	}
	if _, err := c.ListingKey(ctx, newProject(), k.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another project's key: %v", err)
	}
}
