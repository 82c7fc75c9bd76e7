package rewrap_test

import (
	"crypto/md5"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// toOldFormat rewrites, on every node, the .data and .meta files of obj
// as a release before metadata encryption wrote them: the plaintext ETag
// in sysmeta, the user metadata in the clear, nothing sealed. The values
// are the ones the test set (no key is needed to write them).
func toOldFormat(t *testing.T, s *stack, name, etag string, dataMeta, postMeta map[string]string) int {
	t.Helper()
	files := 0
	for _, n := range s.Nodes {
		_ = filepath.WalkDir(filepath.Join(n.Devices, n.Device, "objects"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !strings.HasSuffix(p, ".data") {
				return nil
			}
			if values := rawValues(t, p); values["name"] != name {
				return nil
			}
			rewriteRaw(t, p, func(v map[string]string) {
				for _, k := range []string{sysmeta.Etag, sysmeta.EtagMac, sysmeta.UserMeta, sysmeta.MetaKeyID} {
					delete(v, sysmeta.Prefix+k)
				}
				v[sysmeta.Prefix+sysmeta.PlaintextEtag] = etag
				maps.Copy(v, dataMeta)
			})
			metas, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*.meta"))
			for _, m := range metas {
				rewriteRaw(t, m, func(v map[string]string) {
					delete(v, sysmeta.TransientUserMeta)
					delete(v, sysmeta.TransientMetaKeyID)
					maps.Copy(v, postMeta)
				})
			}
			files += 1 + len(metas)
			return nil
		})
	}
	return files
}

func rawValues(t *testing.T, p string) map[string]string {
	t.Helper()
	m, err := pickle.StringMap(testenv.SwiftMetadataPickle(t, p))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return m
}

func rewriteRaw(t *testing.T, p string, edit func(map[string]string)) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	v := maps.Clone(raw.Values)
	edit(v)
	np, err := pickle.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := diskfile.ReplacePickle(f, raw, np); err != nil {
		t.Fatal(err)
	}
}

// TestMixedClusterRealStack: a cluster holding an object in the format
// before metadata encryption (plaintext ETag and user metadata in its
// .data, a POST's metadata in the clear in its .meta, as the earlier
// release wrote them) beside an object in the new format serves both alike
// through the proxy: ETag, metadata, conditional requests. status counts
// the old .meta in the clear; the rewrap upgrades the .data and the .meta
// in place, after which no value is in the clear on any node and both
// objects still read the same.
func TestMixedClusterRealStack(t *testing.T) {
	s := newStack(t)
	cont := "/mixed-" + testenv.RandomHex(t, 4)
	s.must("PUT", cont, nil, nil, 201)
	bodies := map[string][]byte{"old": []byte("written by the earlier release " + testenv.RandomHex(t, 8)), "new": []byte("written by this one " + testenv.RandomHex(t, 8))}
	colors := map[string]string{"old": "ochre-" + testenv.RandomHex(t, 6), "new": "teal-" + testenv.RandomHex(t, 6)}
	posted := map[string]string{"old": "posted-" + testenv.RandomHex(t, 6), "new": "posted-" + testenv.RandomHex(t, 6)}
	etags := map[string]string{}
	for o, b := range bodies {
		sum := md5.Sum(b)
		etags[o] = hex.EncodeToString(sum[:])
		s.must("PUT", cont+"/"+o, b, map[string]string{"X-Object-Meta-Color": colors[o]}, 201)
		s.must("POST", cont+"/"+o, nil, map[string]string{"X-Object-Meta-Posted": posted[o]}, 202)
	}
	name := "/AUTH_" + s.Project + cont + "/old"
	if n := toOldFormat(t, s, name, etags["old"], map[string]string{"X-Object-Meta-Color": colors["old"]},
		map[string]string{"X-Object-Meta-Posted": posted["old"]}); n != 2*len(s.Nodes) {
		t.Fatalf("rewrote %d files of the old object, want a .data and a .meta on each of %d nodes", n, len(s.Nodes))
	}
	serves := func(when string) {
		t.Helper()
		for o := range bodies {
			code, h, b, err := s.do("GET", cont+"/"+o, nil, nil)
			if err != nil || code != 200 || string(b) != string(bodies[o]) || h.Get("Etag") != etags[o] || h.Get("X-Object-Meta-Posted") != posted[o] {
				t.Fatalf("%s: GET %s: %d %v ETag %s Posted %q", when, o, code, err, h.Get("Etag"), h.Get("X-Object-Meta-Posted"))
			}
			for _, c := range []struct {
				hdr, val string
				want     int
			}{{"If-Match", etags[o], 200}, {"If-Match", "0123456789abcdef0123456789abcdef", 412}, {"If-None-Match", `"` + etags[o] + `"`, 304}} {
				if code, _, _, err := s.do("HEAD", cont+"/"+o, nil, map[string]string{c.hdr: c.val}); err != nil || code != c.want {
					t.Errorf("%s: HEAD %s with %s %s: %d %v, want %d", when, o, c.hdr, c.val, code, err, c.want)
				}
			}
		}
	}
	serves("mixed")
	for _, n := range s.Nodes {
		out, err := s.rewrap(n, "status")
		if err != nil || !strings.Contains(out, ".meta files on inactive keys: 0, in the clear: 1") {
			t.Fatalf("status on %s: %v\n%s", n.Device, err, out)
		}
		if out, err := s.rewrap(n); err != nil || !strings.Contains(out, ".meta files: resealed 0 from older keys, 1 from the clear") {
			t.Fatalf("rewrap on %s: %v\n%s", n.Device, err, out)
		}
		if out, err := s.rewrap(n, "status"); err != nil || !strings.Contains(out, ".meta files on inactive keys: 0, in the clear: 0") {
			t.Fatalf("status after the rewrap on %s: %v\n%s", n.Device, err, out)
		}
	}
	var secrets []testenv.Secret
	for o := range bodies {
		secrets = append(secrets, testenv.MD5Secrets(o, etags[o])...)
		secrets = append(secrets, testenv.Secret{Name: o + " color", Value: colors[o]}, testenv.Secret{Name: o + " posted", Value: posted[o]})
	}
	var roots []string
	for _, n := range s.Nodes {
		roots = append(roots, n.Devices)
	}
	for _, f := range testenv.ScanAtRest(t, roots, secrets).Found {
		t.Errorf("after the rewrap: %v", f)
	}
	serves("upgraded")
}
