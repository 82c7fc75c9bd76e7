package objectserver_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objcrypt"
)

// openHash opens a listing's sealed hash of the object name in container
// cont with the demo user's own token: a project's readers may read its
// listing keys (the filter does this for every client). The private proxy
// here has no filter in front: its listings show the sealed values, which
// is what the container databases hold.
func (s *stack) openHash(cont, name, field, token string) string {
	s.t.Helper()
	id, ok := objcrypt.ListingTokenKeyID(token)
	if !ok {
		s.t.Fatalf("%s/%s: listing %s is not sealed: %q", cont, name, field, token)
	}
	req, err := http.NewRequest(http.MethodGet, s.API.URL+"/v1/project-keys/"+url.PathEscape(id)+"/listing-key", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	lk, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("listing key %s: %d %s", id, resp.StatusCode, lk)
	}
	c, err := objcrypt.NewListingCipher(id, lk)
	if err != nil {
		s.t.Fatal(err)
	}
	v, err := c.Open(token, "/AUTH_"+s.Project+"/"+cont+"/"+name, field)
	if err != nil {
		s.t.Fatalf("%s/%s: %v", cont, name, err)
	}
	return v
}

// assertSealedListing fails when the raw listing shows any of md5s.
func (s *stack) assertSealedListing(listing []byte, md5s ...string) {
	s.t.Helper()
	for _, m := range md5s {
		if m != "" && strings.Contains(string(listing), m) {
			s.t.Fatalf("listing shows the plaintext MD5 %s: %.300s", m, listing)
		}
	}
}

// assertContainerDBsSealed scans the stack's container servers' devices
// (databases as files and as rows, their .pending files of queued
// updates) and fails on any of md5s, in any encoding: the container
// updates carried them sealed.
func (s *stack) assertContainerDBsSealed(cont string, md5s ...string) {
	s.t.Helper()
	var secrets []testenv.Secret
	for _, m := range md5s {
		if m != "" {
			secrets = append(secrets, testenv.MD5Secrets("MD5 "+m, m)...)
		}
	}
	r := testenv.ScanAtRest(s.t, []string{testenv.StackSwiftDevices(s.t)}, secrets)
	for _, f := range r.Found {
		s.t.Errorf("container %s: %v", cont, f)
	}
	if r.Databases == 0 {
		s.t.Fatalf("container %s: no database scanned", cont)
	}
	s.t.Logf("container %s: %d databases scanned for %d MD5s", cont, r.Databases, len(md5s))
}

// sloEtag is an SLO manifest's ETag: the MD5 of its segments' ETags.
func sloEtag(segs []string) string { return md5sum([]byte(strings.Join(segs, ""))) }
