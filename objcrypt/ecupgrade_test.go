package objcrypt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"testing"
)

// TestUpgradeToEC: an archive stored as an objcrypt stream (the layout
// before the EC layout; several stream segments, one, none) becomes the
// same archive in the EC layout: the EC reader returns it byte for byte,
// every range included, the stored bytes have its length and valid
// headers, the data key is the stream's (the sealed ETag still opens,
// a Rewrap of the stream's metadata applies), and the MD5s are right.
func TestUpgradeToEC(t *testing.T) {
	for _, tc := range []struct {
		name             string
		frags, stride, n int
		alg              Algorithm
	}{
		{"empty", 0, 0, 0, AES256CBC},
		{"one byte", 1, 2, 2, AES256CBC},
		{"segment and 1 byte", 2, 2048, 2, AES256CBC},
		{"many stream segments", 9, 1500, 700, AES256CBC},
		{"AES-128 key", 3, 1024, 2, AES128CBC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testKey
			if tc.alg == AES128CBC {
				key = testKey16
			}
			archive := synthArchive(4, tc.frags, tc.stride, tc.n, 21)
			w := &bytes.Buffer{}
			ow, err := NewWriter(w, key, testPath, &WriterOptions{Algorithm: tc.alg, SegmentSize: MinSegmentSize, Rand: detRand(3)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ow.Write(archive); err != nil {
				t.Fatal(err)
			}
			if err := ow.Close(); err != nil {
				t.Fatal(err)
			}
			stream, m := w.Bytes(), ow.Metadata()
			sealed, err := ow.ETagKeys().EncryptETag(md5hex(archive), testPath, detRand(4))
			if err != nil {
				t.Fatal(err)
			}
			// rewrapped first, as an archive on an old key is: the metadata's
			// key id and wrapped key supersede the stream header's
			newKey := ProjectKey{ID: "new-key", Key: bytes.Repeat([]byte{0x55}, 32)}
			if err := Rewrap(&m, key, newKey, testPath, detRand(5)); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			up, err := UpgradeToEC(&out, bytes.NewReader(stream), int64(len(stream)), newKey, testPath, &m)
			if err != nil {
				t.Fatal(err)
			}
			stored := out.Bytes()
			if len(stored) != len(archive) || up.EC.Length != int64(len(archive)) || up.EC.Fragments != int64(tc.frags) {
				t.Fatalf("stored %d bytes, record %+v; archive %d bytes, %d fragments", len(stored), up.EC, len(archive), tc.frags)
			}
			if up.PlainMD5 != md5hex(archive) || up.StoredMD5 != md5hex(stored) {
				t.Fatalf("MD5s %s %s, want %s %s", up.PlainMD5, up.StoredMD5, md5hex(archive), md5hex(stored))
			}
			if up.EC.KeyID != newKey.ID || !bytes.Equal(up.EC.WrappedKey, m.WrappedKey) {
				t.Fatal("the record does not keep the archive's wrapped data key")
			}
			if want := map[bool]int{true: -1, false: 4}[tc.frags == 0]; up.FragIndex != want {
				t.Fatalf("fragment index %d, want %d", up.FragIndex, want)
			}
			if got, err := up.ETagKeys.OpenETag(sealed, testPath); err != nil || got != md5hex(archive) {
				t.Fatalf("the stream's sealed ETag under the upgraded archive's keys: %q %v", got, err)
			}
			if tc.frags > 0 && checkECHeader(stored) != nil {
				t.Fatal("stored archive: invalid first header")
			}
			got, err := openEC(stored, newKey, testPath, up.EC, 0, int64(len(archive)))
			if err != nil || !bytes.Equal(got, archive) {
				t.Fatalf("read back: %v", err)
			}
			for off := 0; off < len(archive); off += max(1, len(archive)/13) {
				got, err := openEC(stored, newKey, testPath, up.EC, int64(off), 3001)
				if err != nil || !bytes.Equal(got, archive[off:min(len(archive), off+3001)]) {
					t.Fatalf("range at %d: %v", off, err)
				}
			}
			// the EC layout's keystream is not the stream's
			if tc.stride >= 64 && bytes.Contains(stream, stored[ECHeaderLen:ECHeaderLen+32]) {
				t.Fatal("the EC payload ciphertext appears in the stream")
			}
		})
	}
}

// TestUpgradeToECRefuses: a stream that does not open whole (a flipped
// byte anywhere, a cut, the wrong key or path) or whose plaintext is not
// a fragment archive is refused with the package's typed errors.
func TestUpgradeToECRefuses(t *testing.T) {
	archive := synthArchive(2, 5, 1500, 40, 8)
	stream, m := seal(t, archive, testKey, testPath, &WriterOptions{SegmentSize: MinSegmentSize})
	up := func(stream []byte, key ProjectKey, path string, m Metadata) error {
		_, err := UpgradeToEC(&bytes.Buffer{}, bytes.NewReader(stream), int64(len(stream)), key, path, &m)
		return err
	}
	for _, at := range []int{0, len(stream) / 3, len(stream) / 2, len(stream) - 60, len(stream) - 1} {
		b := bytes.Clone(stream)
		b[at] ^= 0x10
		if err := up(b, testKey, testPath, m); err == nil || !typed(err) {
			t.Errorf("byte %d of %d flipped: %v", at, len(stream), err)
		}
	}
	if err := up(stream[:len(stream)-100], testKey, testPath, m); err == nil || !typed(err) {
		t.Errorf("cut stream: %v", err)
	}
	if err := up(stream, ProjectKey{ID: testKey.ID, Key: bytes.Repeat([]byte{1}, 32)}, testPath, m); err == nil || !typed(err) {
		t.Errorf("wrong key: %v", err)
	}
	if err := up(stream, testKey, "/AUTH_p/c/other", m); err == nil || !typed(err) {
		t.Errorf("other path: %v", err)
	}
	for name, pt := range map[string][]byte{
		"not fragments":       bytes.Repeat([]byte("plain bytes "), 500),
		"fragments then junk": append(bytes.Clone(archive), 1, 2, 3),
		"two indexes":         append(synthArchive(2, 2, 1500, 1500, 1), synthArchive(3, 1, 1500, 10, 1)...),
	} {
		s, sm := seal(t, pt, testKey, testPath, nil)
		if err := up(s, testKey, testPath, sm); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
