package objcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// metaKAT is one known-answer vector of testdata/metadata_kat.json: the
// inputs, the nonce the randomness gives, and the expected encodings.
type metaKAT struct {
	Kind    string `json:"kind"` // "etag" or "meta"
	Key     string `json:"key"`  // hex: the data key (etag) or project key (meta)
	KeyID   string `json:"key_id,omitempty"`
	Path    string `json:"path"`
	Name    string `json:"name,omitempty"`
	Value   string `json:"value"` // the ETag or the metadata value
	Nonce   string `json:"nonce"` // hex, 12 bytes
	Sealed  string `json:"sealed"`
	ETagMAC string `json:"etag_mac,omitempty"`
}

func loadMetaKATs(t *testing.T) []metaKAT {
	t.Helper()
	b, err := os.ReadFile("testdata/metadata_kat.json")
	if err != nil {
		t.Fatal(err)
	}
	var v []metaKAT
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v) < 4 {
		t.Fatalf("only %d vectors", len(v))
	}
	return v
}

// specETag computes a sealed ETag and its MAC from SPEC.md's text with
// the standard library alone, independently of the package's code.
func specETag(t *testing.T, dataKey []byte, path, etag string, nonce []byte) (string, string) {
	t.Helper()
	ek, _ := hkdf.Key(sha256.New, dataKey, nil, "arca objcrypt v1 etag key", 32)
	mk, _ := hkdf.Key(sha256.New, dataKey, nil, "arca objcrypt v1 etag mac key", 32)
	blk, _ := aes.NewCipher(ek)
	g, _ := cipher.NewGCM(blk)
	md5, _ := hex.DecodeString(etag)
	ct := g.Seal(append([]byte(nil), nonce...), nonce, md5, []byte("arca objcrypt v1 etag"+path))
	m := hmac.New(sha256.New, mk)
	m.Write([]byte(etag))
	return base64.RawStdEncoding.EncodeToString(ct), base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// specMeta computes a sealed metadata value from SPEC.md's text.
func specMeta(t *testing.T, projectKey []byte, keyID, path, name, value string, nonce []byte) string {
	t.Helper()
	k, _ := hkdf.Key(sha256.New, projectKey, nil, "arca objcrypt v1 metadata key", 32)
	blk, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(blk)
	aad := []byte("arca objcrypt v1 metadata value")
	aad = append(aad, byte(len(keyID)))
	aad = append(aad, keyID...)
	aad = append(aad, byte(len(path)>>8), byte(len(path)))
	aad = append(aad, path...)
	aad = append(aad, byte(len(name)>>8), byte(len(name)))
	aad = append(aad, strings.ToLower(name)...)
	ct := g.Seal(append([]byte(nil), nonce...), nonce, []byte(value), aad)
	return "arca1:" + base64.RawStdEncoding.EncodeToString(ct)
}

// The vectors pin the encodings byte for byte: the package's output and
// an independent computation from SPEC.md must both give them.
func TestMetadataKAT(t *testing.T) {
	for i, v := range loadMetaKATs(t) {
		key, nonce := unhex(v.Key), unhex(v.Nonce)
		switch v.Kind {
		case "etag":
			ek, err := newETagKeys(key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ek.EncryptETag(v.Value, v.Path, bytes.NewReader(nonce))
			if err != nil || got != v.Sealed {
				t.Errorf("vector %d: EncryptETag = %q, %v; want %q", i, got, err, v.Sealed)
			}
			if mac := ek.ETagMAC(v.Value); mac != v.ETagMAC {
				t.Errorf("vector %d: ETagMAC = %q, want %q", i, mac, v.ETagMAC)
			}
			if s, m := specETag(t, key, v.Path, v.Value, nonce); s != v.Sealed || m != v.ETagMAC {
				t.Errorf("vector %d: SPEC computation %q %q", i, s, m)
			}
			if pt, err := ek.OpenETag(v.Sealed, v.Path); err != nil || pt != v.Value {
				t.Errorf("vector %d: OpenETag = %q, %v", i, pt, err)
			}
		case "meta":
			mk, err := NewMetaKey(ProjectKey{ID: v.KeyID, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			got, err := mk.SealMetaValue(v.Path, v.Name, v.Value, bytes.NewReader(nonce))
			if err != nil || got != v.Sealed {
				t.Errorf("vector %d: SealMetaValue = %q, %v; want %q", i, got, err, v.Sealed)
			}
			if s := specMeta(t, key, v.KeyID, v.Path, v.Name, v.Value, nonce); s != v.Sealed {
				t.Errorf("vector %d: SPEC computation %q", i, s)
			}
			if pt, err := mk.OpenMetaValue(v.Path, v.Name, v.Sealed); err != nil || pt != v.Value {
				t.Errorf("vector %d: OpenMetaValue = %q, %v", i, pt, err)
			}
			if len(v.Sealed) != SealedMetaLen(len(v.Value)) {
				t.Errorf("vector %d: SealedMetaLen %d, sealed %d", i, SealedMetaLen(len(v.Value)), len(v.Sealed))
			}
		default:
			t.Fatalf("vector %d: kind %q", i, v.Kind)
		}
	}
}

const testETag = "d41d8cd98f00b204e9800998ecf8427e"

// A sealed ETag opens only for its own object and path, and the MAC
// matches exactly the ETag's string.
func TestETagTamper(t *testing.T) {
	w, err := NewWriter(&bytes.Buffer{}, testKey, testPath, &WriterOptions{Rand: detRand(1)})
	if err != nil {
		t.Fatal(err)
	}
	ek := w.ETagKeys()
	sealed, err := ek.EncryptETag(testETag, testPath, detRand(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 59 {
		t.Errorf("sealed ETag is %d characters", len(sealed))
	}
	if got, err := ek.OpenETag(sealed, testPath); err != nil || got != testETag {
		t.Fatalf("OpenETag = %q, %v", got, err)
	}
	other, _ := NewWriter(&bytes.Buffer{}, testKey, testPath, &WriterOptions{Rand: detRand(3)})
	flipped := []byte(sealed)
	flipped[20] ^= 0x01
	for name, open := range map[string]func() (string, error){
		"other path":   func() (string, error) { return ek.OpenETag(sealed, testPath+"x") },
		"other object": func() (string, error) { return other.ETagKeys().OpenETag(sealed, testPath) },
		"altered":      func() (string, error) { return ek.OpenETag(string(flipped), testPath) },
		"truncated":    func() (string, error) { return ek.OpenETag(sealed[:58], testPath) },
		"empty":        func() (string, error) { return ek.OpenETag("", testPath) },
		"not base64":   func() (string, error) { return ek.OpenETag(strings.Repeat("*", 59), testPath) },
	} {
		if got, err := open(); !errors.Is(err, ErrMetadataTampered) || !errors.Is(err, ErrTampered) || got != "" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	mac := ek.ETagMAC(testETag)
	if !ek.MatchETagMAC(mac, testETag) {
		t.Error("MAC does not match its ETag")
	}
	for _, c := range []string{strings.ToUpper(testETag), `"` + testETag + `"`, testETag[1:], "", "*"} {
		if ek.MatchETagMAC(mac, c) {
			t.Errorf("MAC matches %q", c)
		}
	}
	if ek.MatchETagMAC("", testETag) || ek.MatchETagMAC(mac[:42], testETag) {
		t.Error("a malformed stored MAC matches")
	}
	if other.ETagKeys().MatchETagMAC(mac, testETag) {
		t.Error("another object's keys match the MAC")
	}
	for _, bad := range []string{"", "xyz", strings.ToUpper(testETag), testETag + "00"} {
		if _, err := ek.EncryptETag(bad, testPath, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("EncryptETag(%q): %v", bad, err)
		}
	}
}

// The data key behind a Writer's ETag keys is the one a Reader and
// OpenETagKeys find, and OpenETagKeys fails as NewReader does.
func TestETagKeysAgree(t *testing.T) {
	stored, m := seal(t, payload(100, 1), testKey, testPath, &WriterOptions{Rand: detRand(4)})
	w, _ := NewWriter(&bytes.Buffer{}, testKey, testPath, &WriterOptions{Rand: detRand(4)})
	sealed, err := w.ETagKeys().EncryptETag(testETag, testPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, &ReaderOptions{ETagKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.ETagKeys().OpenETag(sealed, testPath); err != nil || got != testETag {
		t.Errorf("Reader's keys: %q, %v", got, err)
	}
	ok, err := OpenETagKeys(&m, testKey, testPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ok.OpenETag(sealed, testPath); err != nil || got != testETag {
		t.Errorf("OpenETagKeys: %q, %v", got, err)
	}
	if _, err := OpenETagKeys(&m, testKey, "/AUTH_p/c/other"); !errors.Is(err, ErrKeyUnwrap) {
		t.Errorf("other path: %v", err)
	}
	if _, err := OpenETagKeys(&m, testKey16, testPath); !errors.Is(err, ErrWrongKey) {
		t.Errorf("other key: %v", err)
	}
	r2, _ := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, nil)
	if r2.ETagKeys() != nil {
		t.Error("ETag keys derived without being asked for")
	}
}

// A sealed value opens only for its key, path and name (any case).
func TestMetaValueTamper(t *testing.T) {
	mk, err := NewMetaKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	const name = "X-Object-Meta-Color"
	sealed, err := mk.SealMetaValue(testPath, name, "blue", detRand(5))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mk.OpenMetaValue(testPath, strings.ToLower(name), sealed); err != nil || got != "blue" {
		t.Fatalf("OpenMetaValue = %q, %v", got, err)
	}
	otherID, _ := NewMetaKey(ProjectKey{ID: "another-id", Key: testKey.Key})
	otherKey, _ := NewMetaKey(testKey16)
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 0x01
	for what, open := range map[string]func() (string, error){
		"other path":   func() (string, error) { return mk.OpenMetaValue("/AUTH_p/c/o2", name, sealed) },
		"other name":   func() (string, error) { return mk.OpenMetaValue(testPath, "X-Object-Meta-Colour", sealed) },
		"other key id": func() (string, error) { return otherID.OpenMetaValue(testPath, name, sealed) },
		"other key":    func() (string, error) { return otherKey.OpenMetaValue(testPath, name, sealed) },
		"altered":      func() (string, error) { return mk.OpenMetaValue(testPath, name, string(flipped)) },
		"plaintext":    func() (string, error) { return mk.OpenMetaValue(testPath, name, "blue") },
		"short":        func() (string, error) { return mk.OpenMetaValue(testPath, name, MetaValuePrefix+"AAAA") },
		"padded":       func() (string, error) { return mk.OpenMetaValue(testPath, name, sealed+"=") },
	} {
		if got, err := open(); !errors.Is(err, ErrMetadataTampered) || got != "" {
			t.Errorf("%s: %q, %v", what, got, err)
		}
	}
	for _, c := range []struct{ path, name string }{{"", name}, {testPath, ""}} {
		if _, err := mk.SealMetaValue(c.path, c.name, "v", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("SealMetaValue(%q, %q): %v", c.path, c.name, err)
		}
	}
	if _, err := NewMetaKey(ProjectKey{ID: "x", Key: []byte{1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("short project key: %v", err)
	}
	// Empty and the largest Swift value round-trip; two seals differ.
	for _, v := range []string{"", strings.Repeat("é", 128)} {
		s1, _ := mk.SealMetaValue(testPath, name, v, nil)
		s2, _ := mk.SealMetaValue(testPath, name, v, nil)
		if s1 == s2 {
			t.Error("two seals of one value are equal")
		}
		if got, err := mk.OpenMetaValue(testPath, name, s1); err != nil || got != v {
			t.Errorf("round trip of %d bytes: %v", len(v), err)
		}
	}
}

func FuzzOpenMetaValue(f *testing.F) {
	mk, err := NewMetaKey(testKey)
	if err != nil {
		f.Fatal(err)
	}
	const name = "x-object-meta-a"
	seed, _ := mk.SealMetaValue(testPath, name, "secret", detRand(6))
	f.Add(seed)
	f.Add(MetaValuePrefix)
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := mk.OpenMetaValue(testPath, name, s)
		if err != nil {
			if !errors.Is(err, ErrMetadataTampered) || got != "" {
				t.Fatalf("untyped failure or output: %q, %v", got, err)
			}
			return
		}
		if s != seed || got != "secret" {
			t.Fatalf("forgery: %q opened to %q", s, got)
		}
	})
}

func FuzzOpenETag(f *testing.F) {
	w, err := NewWriter(&bytes.Buffer{}, testKey, testPath, &WriterOptions{Rand: detRand(7)})
	if err != nil {
		f.Fatal(err)
	}
	ek := w.ETagKeys()
	seed, _ := ek.EncryptETag(testETag, testPath, detRand(8))
	f.Add(seed)
	f.Add("")
	mac := ek.ETagMAC(testETag)
	f.Fuzz(func(t *testing.T, s string) {
		// s as a stored MAC: only the real one matches.
		if ek.MatchETagMAC(s, testETag) && s != mac {
			t.Fatalf("forged MAC %q matches", s)
		}
		got, err := ek.OpenETag(s, testPath)
		if err != nil {
			if !errors.Is(err, ErrMetadataTampered) || got != "" {
				t.Fatalf("untyped failure or output: %q, %v", got, err)
			}
			return
		}
		if s != seed || got != testETag {
			t.Fatalf("forgery: %q opened to %q", s, got)
		}
	})
}

// BenchmarkOpenMetadata is what a HEAD or GET adds to opening an object:
// the ETag keys, the ETag, the metadata key and one sealed set.
func BenchmarkOpenMetadata(b *testing.B) {
	dk := bytes.Repeat([]byte{0x11}, 32)
	ek, _ := newETagKeys(dk)
	sealedETag, _ := ek.EncryptETag(testETag, testPath, nil)
	mk, _ := NewMetaKey(testKey)
	sealedMeta, _ := mk.SealMetaValue(testPath, "x-object-sysmeta-arca-meta", "\x00\x05Color\x00\x04blue", nil)
	b.ReportAllocs()
	for b.Loop() {
		ek, err := newETagKeys(dk)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ek.OpenETag(sealedETag, testPath); err != nil {
			b.Fatal(err)
		}
		mk, err := NewMetaKey(testKey)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mk.OpenMetaValue(testPath, "x-object-sysmeta-arca-meta", sealedMeta); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSysmetaBinding: a sealed middleware sysmeta value opens only for its
// object's ETag key, path and name (any case), and a sealed user metadata
// value of the same form is not one.
func TestSysmetaBinding(t *testing.T) {
	ek, _ := newETagKeys(bytes.Repeat([]byte{0x21}, 32))
	other, _ := newETagKeys(bytes.Repeat([]byte{0x22}, 32))
	mk, _ := NewMetaKey(testKey)
	const name = "X-Object-Sysmeta-Slo-Etag"
	sealed, err := ek.SealSysmeta(testPath, name, testETag, detRand(9))
	if err != nil || !strings.HasPrefix(sealed, MetaValuePrefix) {
		t.Fatalf("%q %v", sealed, err)
	}
	asMeta, _ := mk.SealMetaValue(testPath, name, testETag, detRand(10))
	for _, c := range []struct {
		what             string
		keys             *ETagKeys
		path, name, data string
		ok               bool
	}{
		{"as sealed", ek, testPath, name, sealed, true},
		{"name in another case", ek, testPath, strings.ToLower(name), sealed, true},
		{"another object's key", other, testPath, name, sealed, false},
		{"another path", ek, testPath + "x", name, sealed, false},
		{"another name", ek, testPath, "X-Object-Sysmeta-Symlink-Target-Etag", sealed, false},
		{"a user metadata value", ek, testPath, name, asMeta, false},
	} {
		got, err := c.keys.OpenSysmeta(c.path, c.name, c.data)
		if c.ok != (err == nil) || (c.ok && got != testETag) || (!c.ok && !errors.Is(err, ErrMetadataTampered)) {
			t.Errorf("%s: %q %v", c.what, got, err)
		}
	}
}

func FuzzOpenSysmeta(f *testing.F) {
	ek, _ := newETagKeys(bytes.Repeat([]byte{0x23}, 32))
	const name = "x-object-sysmeta-slo-etag"
	seed, _ := ek.SealSysmeta(testPath, name, testETag, detRand(11))
	f.Add(seed)
	f.Add(MetaValuePrefix)
	f.Add(testETag)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ek.OpenSysmeta(testPath, name, s)
		if err != nil {
			if !errors.Is(err, ErrMetadataTampered) || got != "" {
				t.Fatalf("untyped failure or output: %q, %v", got, err)
			}
			return
		}
		if s != seed || got != testETag {
			t.Fatalf("forgery: %q opened to %q", s, got)
		}
	})
}
