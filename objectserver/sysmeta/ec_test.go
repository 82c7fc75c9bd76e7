package sysmeta

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"testing"

	"opendev.org/x/arca/objcrypt"
)

// TestECRecord: an archive in the EC layout is recorded and parsed back
// whole; a record missing a field, with a stream's field, or with an
// unknown layout is refused.
func TestECRecord(t *testing.T) {
	key := objcrypt.ProjectKey{ID: "0b9a3e0e-6c8d-4c39-8d6e-1f0a2b3c4d5e", Key: bytes.Repeat([]byte{0x42}, 32)}
	w, err := objcrypt.NewECWriter(io.Discard, key, "/AUTH_p/c/o", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := w.Metadata()
	o := &Object{Metadata: objcrypt.Metadata{KeyID: m.KeyID, WrappedKey: m.WrappedKey}, EC: &m, SealedEtag: "sealed", EtagMAC: "mac"}
	rec := o.Map()
	got, err := Parse(rec)
	if err != nil {
		t.Fatal(err)
	}
	e := got.ECMetadata()
	if e == nil || e.KeyID != m.KeyID || !bytes.Equal(e.WrappedKey, m.WrappedKey) || e.Length != 0 || e.Fragments != 0 || !bytes.Equal(e.MAC, m.MAC) || got.SealedEtag != "sealed" {
		t.Fatalf("parsed %+v", got)
	}
	for _, c := range []struct {
		name   string
		change func(map[string]string)
	}{
		{"unknown layout", func(r map[string]string) { r[Prefix+Layout] = "ec2" }},
		{"no archive MAC", func(r map[string]string) { delete(r, Prefix+EcMac) }},
		{"short archive MAC", func(r map[string]string) { r[Prefix+EcMac] = "AAAA" }},
		{"negative count", func(r map[string]string) { r[Prefix+EcFragments] = "-1" }},
		{"no sealed ETag", func(r map[string]string) { delete(r, Prefix+Etag) }},
		{"a stream's version", func(r map[string]string) { r[Prefix+Version] = "1" }},
		{"a plaintext ETag", func(r map[string]string) { r[Prefix+PlaintextEtag] = "d41d8cd98f00b204e9800998ecf8427e" }},
		{"no key id", func(r map[string]string) { delete(r, Prefix+KeyID) }},
	} {
		r := maps.Clone(rec)
		c.change(r)
		if _, err := Parse(r); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if !errors.Is(err, objcrypt.ErrInvalid) && !errors.Is(err, objcrypt.ErrUnsupported) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
