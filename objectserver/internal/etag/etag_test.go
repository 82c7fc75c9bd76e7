package etag

import (
	"bytes"
	"crypto/md5" //nolint:gosec // G501: the reference for Swift's ETag
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"

	"opendev.org/x/arca/objcrypt"
)

var testKey = objcrypt.ProjectKey{ID: "0b9a3e0e-6c8d-4c39-8d6e-1f0a2b3c4d5e", Key: bytes.Repeat([]byte{0x42}, 32)}

func hexMD5(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) } //nolint:gosec // G401: reference

// Sums as objcrypt's Writer observer: every size around the inline and
// pooled segments, both sums against crypto/md5 of what was written.
func TestSumsObserveWriter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 63, 64, 4095, 16 << 10, 16<<10 + 1, 64 << 10, 64<<10 + 5, 200 << 10} {
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(r.Uint32())
		}
		for _, stored := range []bool{false, true} {
			sums := New(stored)
			var out bytes.Buffer
			w, err := objcrypt.NewWriter(&out, testKey, "/AUTH_p/c/o", &objcrypt.WriterOptions{Observer: sums})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ReadFrom(bytes.NewReader(pt)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, want := sums.Plaintext(), hexMD5(pt); got != want {
				t.Fatalf("size %d stored=%v: plaintext MD5 %s, want %s", n, stored, got, want)
			}
			want := ""
			if stored {
				want = hexMD5(out.Bytes())
			}
			if got := sums.Stored(); got != want {
				t.Fatalf("size %d stored=%v: stored MD5 %q, want %q", n, stored, got, want)
			}
		}
	}
}

// benchWriter is objcrypt's encrypt benchmark with the object server's
// observer: one object that keeps growing, 64 KiB per op.
func benchWriter(b *testing.B, stored bool) {
	w, err := objcrypt.NewWriter(io.Discard, testKey, "/AUTH_p/c/o", &objcrypt.WriterOptions{Observer: New(stored)})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	_, _ = w.Write(buf) // starts the pool; steady state is what allocs/op should report
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = w.Close()
}

func BenchmarkWriter(b *testing.B) {
	b.Run("AES128+HMAC+MD5", func(b *testing.B) { benchWriter(b, false) })
	b.Run("AES128+HMAC+MD5+storedMD5", func(b *testing.B) { benchWriter(b, true) })
}
