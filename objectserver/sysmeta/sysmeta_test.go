package sysmeta

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"opendev.org/x/arca/objcrypt"
)

// written encrypts payload and returns the Writer's metadata.
func written(t *testing.T, o *objcrypt.WriterOptions) objcrypt.Metadata {
	t.Helper()
	key := objcrypt.ProjectKey{ID: "0b9a3e0e-6c8d-4c39-8d6e-1f0a2b3c4d5e", Key: bytes.Repeat([]byte{0x42}, 32)}
	w, err := objcrypt.NewWriter(io.Discard, key, "/AUTH_p/c/o", o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("the quick brown fox "), 250)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Metadata()
}

func TestMapParse(t *testing.T) {
	md := written(t, &objcrypt.WriterOptions{SegmentSize: 2048, Decorators: []objcrypt.Decorator{objcrypt.Zstd}, Algorithm: objcrypt.AES256CBC})
	obj := Object{Metadata: md, PlaintextEtag: "0123456789abcdef0123456789abcdef"}
	m := obj.Map()
	lower := map[string]string{}
	for k, v := range m {
		lower[strings.ToLower(k)] = v
	}
	back, err := Parse(lower)
	if err != nil {
		t.Fatal(err)
	}
	obj.StoredLength = 0 // Swift's Content-Length says it, not sysmeta
	if fmt.Sprint(*back) != fmt.Sprint(obj) {
		t.Fatalf("metadata round trip:\n%+v\n%+v", *back, obj)
	}
	if back.Layout() != md.Layout() {
		t.Fatal("layout differs")
	}
	for bad, val := range map[string]string{
		Version: "2", Algorithm: "rot13", SegmentSize: "1000", Decorators: "gzip",
		KeyID: "", WrappedKey: "!!", PlaintextLength: "-1",
	} {
		c := map[string]string{}
		for k, v := range m {
			c[k] = v
		}
		c[Prefix+bad] = val
		if _, err := Parse(c); err == nil {
			t.Errorf("%s=bogus accepted", bad)
		}
	}
}

func TestIsArca(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Object-Sysmeta-Arca-Key-Id": true, "x-object-sysmeta-arca-": true, "X-OBJECT-SYSMETA-ARCA-X": true,
		"X-Object-Sysmeta-Other": false, "X-Object-Meta-Arca-Key-Id": false, "": false,
	} {
		if IsArca(name) != want {
			t.Errorf("IsArca(%q) = %v", name, !want)
		}
	}
}
