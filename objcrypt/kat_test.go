package objcrypt

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// cipherLayers returns the segment states a reader or writer could use for
// key: the AES-NI pipeline where the CPU has one, and the standard library.
func cipherLayers(t *testing.T, key []byte) map[string]*segState {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*segState{"stdlib": newSegState(&objectKeys{block: block})}
	if f := newFastCBC(key); f != nil {
		out["aesni"] = newSegState(&objectKeys{block: block, fast: f})
	}
	return out
}

// NIST SP 800-38A, appendix F.2.1-F.2.6 (CBC-AES128 and CBC-AES256).
func TestNISTCBC(t *testing.T) {
	iv := unhex("000102030405060708090a0b0c0d0e0f")
	pt := unhex("6bc1bee22e409f96e93d7e117393172a" + "ae2d8a571e03ac9c9eb76fac45af8e51" +
		"30c81c46a35ce411e5fbc1191a0a52ef" + "f69f2445df4f9b17ad2b417be66c3710")
	vectors := []struct{ name, key, ct string }{
		{"CBC-AES128", "2b7e151628aed2a6abf7158809cf4f3c",
			"7649abac8119b246cee98e9b12e9197d" + "5086cb9b507219ee95db113a917678b2" +
				"73bed6b8e3c1743b7116e69e22229516" + "3ff1caa1681fac09120eca307586e1a7"},
		{"CBC-AES256", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
			"f58c4c04d6e5f1ba779eabfb5f7bfbd6" + "9cfc4e967edb808d679f777bc6702c7d" +
				"39f23369a9d9bacfa530e26304231461" + "b2eb05e2c39be9fcda6c19078c6a9d1b"},
	}
	for _, v := range vectors {
		layers := cipherLayers(t, unhex(v.key))
		t.Logf("%s: %d cipher layers", v.name, len(layers))
		for layer, s := range layers {
			ct := unhex(v.ct)
			got := make([]byte, len(pt))
			s.cbcEncrypt(got, pt, iv)
			if !bytes.Equal(got, ct) {
				t.Errorf("%s %s encrypt: %x", v.name, layer, got)
			}
			s.cbcDecrypt(got, ct, iv)
			if !bytes.Equal(got, pt) {
				t.Errorf("%s %s decrypt: %x", v.name, layer, got)
			}
			// In place, as seal uses it.
			copy(got, pt)
			s.cbcEncrypt(got, got, iv)
			if !bytes.Equal(got, ct) {
				t.Errorf("%s %s encrypt in place: %x", v.name, layer, got)
			}
		}
	}
}

// The AES-NI layer against the standard library over every length up to
// a few pipelines, and around the VAES decryption's groups of 32 blocks
// up to a segment, odd alignments included; decryption in place too.
func TestCBCLayersAgree(t *testing.T) {
	lengths := []int{63, 64, 65, 95, 96, 97, 127, 128, 200, 4096, 4097}
	for b := range 41 {
		lengths = append(lengths, b)
	}
	for _, keyLen := range []int{16, 32} {
		layers := cipherLayers(t, payload(keyLen, 77))
		ref := layers["stdlib"]
		iv := payload(16, 78)
		for _, blocks := range lengths {
			src := payload(16*blocks+1, uint64(blocks))[1:] // misaligned on purpose
			want := make([]byte, len(src))
			ref.cbcEncrypt(want, src, iv)
			back := make([]byte, len(src))
			for name, s := range layers {
				got := make([]byte, len(src))
				s.cbcEncrypt(got, src, iv)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s encrypt %d blocks", name, blocks)
				}
				s.cbcDecrypt(back, want, iv)
				if !bytes.Equal(back, src) {
					t.Fatalf("%s decrypt %d blocks", name, blocks)
				}
				inPlace := bytes.Clone(want)
				s.cbcDecrypt(inPlace, inPlace, iv)
				if !bytes.Equal(inPlace, src) {
					t.Fatalf("%s decrypt %d blocks in place", name, blocks)
				}
			}
		}
	}
}
