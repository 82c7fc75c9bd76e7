package pickle

import (
	"maps"
	"os"
	"strings"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"py3-metadata.pkl", "py3-hashes.pkl", "py3-proto0.pkl"} {
		if data, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(data)
		}
	}
	f.Add(MustEncode(map[string]any{"a": []any{int64(1), nil, true, 2.5}, "b": Bytes("x")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode (plain data only).
		if _, err := Encode(v); err != nil {
			if _, big := v.(interface{ IsInt64() bool }); !big {
				t.Logf("re-encode %T: %v", v, err)
			}
		}
	})
}

// FuzzStringMap checks the fast path of StringMap against the general
// decoder: whenever the fast path accepts an input, both agree.
func FuzzStringMap(f *testing.F) {
	for _, name := range []string{"py3-metadata.pkl", "py3-hashes.pkl", "py3-proto0.pkl"} {
		if data, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(data)
		}
	}
	f.Add(MustEncode(map[string]string{}))
	f.Add(MustEncode(map[string]string{"Content-Length": "4096", "name": "/a/c/o", "long": strings.Repeat("x", 300)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := stringMapFast(data)
		if !ok {
			return
		}
		slow, err := stringMapSlow(data)
		if err != nil {
			t.Fatalf("fast path accepted what the decoder refuses: %v", err)
		}
		if !maps.Equal(fast, slow) {
			t.Fatalf("fast %v, decoder %v", fast, slow)
		}
	})
}
