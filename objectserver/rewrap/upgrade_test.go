package rewrap

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// Objects written before ETags and metadata were encrypted are upgraded
// in place: on an old key (rewrapped and upgraded) and on the active key
// (upgraded only); objects of the new format beside them are untouched,
// and every one reads back with its ETag and metadata.
func TestRewrapUpgradesOldFormat(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	meta := map[string]string{"X-Object-Meta-Color": "ochre-secret"}
	if err := rewraptest.PutLegacyObject(m, keys, "p1", "old-key", body(1), meta); err != nil {
		t.Fatal(err)
	}
	active := keys.Rotate("p1")
	if err := rewraptest.PutLegacyObject(m, keys, "p1", "active-key", body(2), meta); err != nil {
		t.Fatal(err)
	}
	putObject(t, m, keys, "p1", "new-format", body(3), meta)
	s := run(t, m, keys, nil)
	if s.Rewrapped != 2 || s.Already != 1 || s.Failed != 0 {
		t.Fatalf("run: %+v", s)
	}
	for i, name := range []string{"old-key", "active-key", "new-format"} {
		_, o := readObject(t, m, keys, "p1", name)
		for k, v := range o.DataMetadata {
			if strings.Contains(v, "ochre-secret") || strings.EqualFold(k, sysmeta.Prefix+sysmeta.PlaintextEtag) || sysmeta.IsUserMeta(k) {
				t.Errorf("%s: %s = %q after the upgrade", name, k, v)
			}
		}
		cm, err := sysmeta.Parse(o.DataMetadata)
		if err != nil || cm.IsLegacy() || cm.KeyID != active {
			t.Fatalf("%s: %+v, %v", name, cm, err)
		}
		pk, _ := keys.KeyMaterial(context.Background(), "p1", active)
		key := objcrypt.ProjectKey{ID: active, Key: pk}
		path := o.Metadata["name"]
		ek, err := objcrypt.OpenETagKeys(&cm.Metadata, key, path)
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(body(i + 1))
		want := hex.EncodeToString(sum[:])
		if got, err := ek.OpenETag(cm.SealedEtag, path); err != nil || got != want || !ek.MatchETagMAC(cm.EtagMAC, want) {
			t.Errorf("%s: ETag %q, %v", name, got, err)
		}
		um, sealed, err := sysmeta.OpenUserMeta(o.DataMetadata, path, sysmeta.DataSet, func(string) (*objcrypt.MetaKey, error) {
			return objcrypt.NewMetaKey(key)
		})
		if err != nil || !sealed || len(um) != 1 || um["X-Object-Meta-Color"] != "ochre-secret" {
			t.Errorf("%s: user metadata %v, %v, %v", name, um, sealed, err)
		}
	}
	if s := run(t, m, keys, nil); s.Rewrapped != 0 || s.Already != 3 {
		t.Fatalf("second run: %+v", s)
	}
}

// An old-format object records its ETag in the clear, and the upgrade
// seals it: an ETag edited on disk (someone with the disks) must not come
// out of the upgrade authenticated. The job reads the object, finds that
// its plaintext's MD5 is not the one recorded, and leaves it as it is;
// the object whose ETag is genuine beside it is upgraded.
func TestRewrapUpgradeRefusesForgedEtag(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	forgedSum := md5.Sum([]byte("attacker chosen"))
	forged := hex.EncodeToString(forgedSum[:])
	if err := rewraptest.PutLegacyObject(m, keys, "p1", "forged", body(1), map[string]string{sysmeta.Prefix + sysmeta.PlaintextEtag: forged}); err != nil {
		t.Fatal(err)
	}
	if err := rewraptest.PutLegacyObject(m, keys, "p1", "genuine", body(2), nil); err != nil {
		t.Fatal(err)
	}
	s := run(t, m, keys, nil)
	if s.Rewrapped != 1 || s.Failed != 1 || s.Reasons["legacy ETag"] != 1 || s.IO.UpgradeReads != 2 {
		t.Fatalf("run: %+v", s)
	}
	_, o := readObject(t, m, keys, "p1", "forged")
	cm, err := sysmeta.Parse(o.DataMetadata)
	if err != nil || !cm.IsLegacy() || cm.PlaintextEtag != forged || cm.SealedEtag != "" {
		t.Fatalf("the forged object after the run: %+v, %v", cm, err)
	}
	_, o = readObject(t, m, keys, "p1", "genuine")
	if cm, err := sysmeta.Parse(o.DataMetadata); err != nil || cm.IsLegacy() {
		t.Fatalf("the genuine object after the run: %+v, %v", cm, err)
	}
}
