package objcrypt

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzECReader mutates a sealed archive and its recorded length and
// fragment count: the reader and the verifier never panic, and whatever
// the reader returns is a piece of the archive that was written (a
// mutated archive that opened whole would be a forgery).
func FuzzECReader(f *testing.F) {
	archive := synthArchive(2, 3, 40, 10, 4)
	stored, m := sealEC(f, archive, testKey, testPath, 7)
	f.Add(stored, m.Length, m.Fragments, int64(0), int64(len(stored)))
	f.Add(stored[:len(stored)-1], m.Length, m.Fragments, int64(120), int64(7))
	empty, _ := sealEC(f, nil, testKey, testPath, 8)
	f.Add(empty, int64(0), int64(0), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, length, fragments, off, n int64) {
		md := ECMetadata{KeyID: m.KeyID, WrappedKey: m.WrappedKey, Length: length, Fragments: fragments, MAC: m.MAC}
		authentic := bytes.Equal(b, stored) && length == m.Length && fragments == m.Fragments
		r, err := NewECReader(bytes.NewReader(b), int64(len(b)), testKey, testPath, md)
		if err == nil {
			if !authentic && !(len(b) == 0 && length == 0 && fragments == 0) {
				// the archive MAC binds length and count: only they, with
				// other bytes, may get this far
				if length != m.Length || fragments != m.Fragments {
					t.Fatal("archive MAC accepted another length or count")
				}
			}
			if err := r.Range(off, n); err == nil {
				var out bytes.Buffer
				_, rerr := io.Copy(&out, r)
				got := out.Bytes()
				start := min(max(off, 0), int64(len(archive)))
				if len(got) > 0 && !bytes.Equal(got, archive[start:start+int64(min(len(got), len(archive)-int(start)))]) {
					t.Fatalf("returned %d bytes that are not the archive's", len(got))
				}
				if rerr == nil && !authentic && int64(len(got)) == m.Length && len(b) != 0 {
					t.Fatal("a mutated archive opened whole")
				}
			}
		}
		if v, err := NewECVerifier(testKey, testPath, md); err == nil {
			_, err = v.Write(b)
			if err == nil {
				err = v.Close()
			}
			if err == nil && !authentic && len(b) != 0 {
				t.Fatal("verifier accepted a mutated archive")
			}
		}
	})
}

// FuzzECWriter feeds arbitrary bytes as a fragment archive: the writer
// never panics, and what it accepts reads back byte for byte.
func FuzzECWriter(f *testing.F) {
	f.Add(synthArchive(1, 2, 16, 4, 1))
	f.Add(synthArchive(0, 1, 0, 0, 1))
	f.Add([]byte("not a fragment"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		w, err := NewECWriter(&out, testKey, testPath, nil, detRand(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(in); err != nil {
			return
		}
		if err := w.Close(); err != nil {
			return
		}
		got, err := openEC(out.Bytes(), testKey, testPath, w.Metadata(), 0, int64(len(in)))
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("accepted archive does not read back: %v", err)
		}
	})
}

// FuzzUpgradeToEC seals arbitrary bytes as an objcrypt stream and
// upgrades it: it never panics, fails with the package's errors on what
// is not a fragment archive, and what it accepts reads back through the
// EC reader byte for byte, with the MD5s and length of what was written.
func FuzzUpgradeToEC(f *testing.F) {
	f.Add(synthArchive(1, 3, 600, 4, 1))
	f.Add([]byte{})
	f.Add([]byte("not a fragment"))
	f.Fuzz(func(t *testing.T, in []byte) {
		stream, m := seal(t, in, testKey, testPath, &WriterOptions{SegmentSize: MinSegmentSize})
		var out bytes.Buffer
		up, err := UpgradeToEC(&out, bytes.NewReader(stream), int64(len(stream)), testKey, testPath, &m)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		got, err := openEC(out.Bytes(), testKey, testPath, up.EC, 0, int64(len(in)))
		if err != nil || !bytes.Equal(got, in) || up.EC.Length != int64(len(in)) || up.PlainMD5 != md5hex(in) || up.StoredMD5 != md5hex(out.Bytes()) {
			t.Fatalf("accepted stream does not read back: %v", err)
		}
	})
}
