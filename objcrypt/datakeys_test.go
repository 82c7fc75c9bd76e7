package objcrypt

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestDataKeysOpen: an object opened with its DataKeys reads as without
// them, ETag keys included, and the keys are the ones NewReader derives
// (a tampered segment still fails).
func TestDataKeysOpen(t *testing.T) {
	for _, alg := range []Algorithm{AES128CBC, AES256CBC} {
		pt := payload(150_000, 3)
		stored, m := seal(t, pt, testKey, testPath, &WriterOptions{Algorithm: alg, SegmentSize: 64 << 10})
		dk, err := OpenDataKeys(testKey, m.KeyID, testPath, m.WrappedKey, m.Algorithm)
		if err != nil {
			t.Fatal(err)
		}
		opts := &ReaderOptions{KeyID: m.KeyID, WrappedKey: m.WrappedKey, ETagKeys: true, DataKeys: dk}
		got, err := open(stored, testKey, testPath, 0, -1, opts)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%v: with DataKeys: %v (equal %v)", alg, err, bytes.Equal(got, pt))
		}
		// The ETag keys are the same as derived: what one seals, the
		// other opens.
		r1, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, opts)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, &ReaderOptions{ETagKeys: true})
		if err != nil {
			t.Fatal(err)
		}
		// Both run the same cipher layers: DataKeys must not cost the
		// AES-NI pipeline nor the paired MACs (pads) of a derived key.
		if (r1.keys.fast == nil) != (r2.keys.fast == nil) || (r1.keys.pads == nil) != (r2.keys.pads == nil) ||
			(r1.keys.block == nil) != (r2.keys.block == nil) {
			t.Fatalf("%v: with DataKeys fast %v pads %v block %v, derived fast %v pads %v block %v", alg,
				r1.keys.fast != nil, r1.keys.pads != nil, r1.keys.block != nil,
				r2.keys.fast != nil, r2.keys.pads != nil, r2.keys.block != nil)
		}
		const etag = "0123456789abcdef0123456789abcdef"
		sealed, err := r1.ETagKeys().EncryptETag(etag, testPath, detRand(4))
		if err != nil {
			t.Fatal(err)
		}
		if e, err := r2.ETagKeys().OpenETag(sealed, testPath); err != nil || e != etag {
			t.Fatalf("%v: ETag sealed with DataKeys' ETag keys opens as %q, %v", alg, e, err)
		}
		// The keys are copied: wiping them after NewReader returned does
		// not disturb the reader.
		r3, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, opts)
		if err != nil {
			t.Fatal(err)
		}
		dk.Wipe()
		var out bytes.Buffer
		if _, err := out.ReadFrom(r3); err != nil || !bytes.Equal(out.Bytes(), pt) {
			t.Fatalf("%v: reader after Wipe: %v", alg, err)
		}
		// Integrity is checked as ever.
		dk, _ = OpenDataKeys(testKey, m.KeyID, testPath, m.WrappedKey, m.Algorithm)
		bad := bytes.Clone(stored)
		bad[len(bad)/2] ^= 1
		if _, err := open(bad, testKey, testPath, 0, -1, &ReaderOptions{DataKeys: dk}); !errors.Is(err, ErrTampered) {
			t.Fatalf("%v: tampered object with DataKeys: %v, want ErrTampered", alg, err)
		}
	}
}

// TestDataKeysSharedCiphers: the ciphers OpenDataKeys builds are shared by
// every Clone and Reader and never written: Readers on eight goroutines
// read the object at once, each wiping its Clone while the others read
// (run with -race), and the original still opens it afterwards.
func TestDataKeysSharedCiphers(t *testing.T) {
	pt := payload(70_000, 8)
	stored, m := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: 16 << 10})
	dk, err := OpenDataKeys(testKey, m.KeyID, testPath, m.WrappedKey, m.Algorithm)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		c := dk.Clone()
		go func() {
			r, err := NewReaderBytes(stored, testKey, testPath, &ReaderOptions{ETagKeys: true, DataKeys: c, Parallelism: 2})
			c.Wipe()
			if err != nil {
				errs <- err
				return
			}
			var out bytes.Buffer
			if _, err := out.ReadFrom(r); err != nil || !bytes.Equal(out.Bytes(), pt) {
				errs <- fmt.Errorf("a reader sharing the ciphers: %v, %d bytes", err, out.Len())
				return
			}
			errs <- r.Close()
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, err := open(stored, testKey, testPath, 0, -1, &ReaderOptions{DataKeys: dk}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("the original after its clones were wiped: %v", err)
	}
	if _, _, err := (&DataKeys{}).objectKeys(nil, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("DataKeys not from OpenDataKeys: %v, want ErrInvalid", err)
	}
}

// TestDataKeysBinding: DataKeys opened from anything else than the object
// being read are never used. Were the binding not checked, each case
// would read another object's keys: a wrong key would open (the first
// case: material changed under the same id), or the object would fail
// its MACs where it reads fine.
func TestDataKeysBinding(t *testing.T) {
	pt := payload(10_000, 5)
	stored, m := seal(t, pt, testKey, testPath, nil)
	other, mo := seal(t, pt, testKey, testPath, &WriterOptions{Rand: detRand(9)}) // same path and key, another data key
	_ = other
	if bytes.Equal(m.WrappedKey, mo.WrappedKey) {
		t.Fatal("two objects with one wrapped key")
	}
	dk, err := OpenDataKeys(testKey, m.KeyID, testPath, m.WrappedKey, m.Algorithm)
	if err != nil {
		t.Fatal(err)
	}
	// Another material under the same key id must not open the object,
	// DataKeys or not.
	changed := ProjectKey{ID: testKey.ID, Key: bytes.Repeat([]byte{0x43}, 32)}
	if _, err := open(stored, changed, testPath, 0, -1, &ReaderOptions{DataKeys: dk}); !errors.Is(err, ErrKeyUnwrap) {
		t.Fatalf("another material with DataKeys of the right one: %v, want ErrKeyUnwrap", err)
	}
	// Another key id: ErrWrongKey, as without.
	if _, err := open(stored, ProjectKey{ID: "other", Key: testKey.Key}, testPath, 0, -1, &ReaderOptions{DataKeys: dk}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("another key id with DataKeys: %v, want ErrWrongKey", err)
	}
	// Another object's keys (same path and project key): ignored, the
	// object reads with its own.
	dko, err := OpenDataKeys(testKey, mo.KeyID, testPath, mo.WrappedKey, mo.Algorithm)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(stored, testKey, testPath, 0, -1, &ReaderOptions{DataKeys: dko}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("another object's DataKeys: %v", err)
	}
	// The same wrapped key moved to another path: the keys opened for the
	// first path are not used, and the unwrap fails as ever.
	if _, err := open(stored, testKey, "/AUTH_p/c/moved", 0, -1, &ReaderOptions{DataKeys: dk}); !errors.Is(err, ErrKeyUnwrap) {
		t.Fatalf("moved object with the first path's DataKeys: %v, want ErrKeyUnwrap", err)
	}
	// Another algorithm than the header's: ignored.
	dka, err := OpenDataKeys(testKey, m.KeyID, testPath, m.WrappedKey, AES128CBC+AES256CBC-m.Algorithm)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(stored, testKey, testPath, 0, -1, &ReaderOptions{DataKeys: dka}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("DataKeys of another algorithm: %v", err)
	}
	// Wiped keys: ignored.
	dk.Wipe()
	if got, err := open(stored, testKey, testPath, 0, -1, &ReaderOptions{DataKeys: dk}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("wiped DataKeys: %v", err)
	}
	// OpenDataKeys fails as the reader does.
	if _, err := OpenDataKeys(changed, m.KeyID, testPath, m.WrappedKey, m.Algorithm); !errors.Is(err, ErrKeyUnwrap) {
		t.Fatalf("OpenDataKeys with another material: %v", err)
	}
	if _, err := OpenDataKeys(testKey, "other", testPath, m.WrappedKey, m.Algorithm); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("OpenDataKeys with another key id: %v", err)
	}
}

// TestDataKeysRef: every input changes the binding (a length prefix keeps
// fields from running into each other).
func TestDataKeysRef(t *testing.T) {
	w := bytes.Repeat([]byte{1}, wrappedLen)
	base := DataKeysRef(testKey, testKey.ID, testPath, w, AES256CBC)
	w2 := bytes.Clone(w)
	w2[0] ^= 1
	for name, ref := range map[string][32]byte{
		"material": DataKeysRef(ProjectKey{ID: testKey.ID, Key: bytes.Repeat([]byte{0x43}, 32)}, testKey.ID, testPath, w, AES256CBC),
		"id":       DataKeysRef(ProjectKey{ID: "x", Key: testKey.Key}, "x", testPath, w, AES256CBC),
		"path":     DataKeysRef(testKey, testKey.ID, testPath+"x", w, AES256CBC),
		"wrapped":  DataKeysRef(testKey, testKey.ID, testPath, w2, AES256CBC),
		"alg":      DataKeysRef(testKey, testKey.ID, testPath, w, AES128CBC),
		"shifted":  DataKeysRef(ProjectKey{ID: testKey.ID[1:], Key: testKey.Key}, testKey.ID[1:], string(testKey.ID[0])+testPath, w, AES256CBC),
	} {
		if ref == base {
			t.Errorf("changing the %s leaves the binding", name)
		}
	}
}
