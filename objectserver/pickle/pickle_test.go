package pickle

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

func TestDecodePython3Files(t *testing.T) {
	tests := []struct {
		file string
		want any
	}{
		{"py3-metadata.pkl", map[string]any{
			"name":            "/AUTH_t/c/o ü",
			"X-Timestamp":     "1700000000.12345",
			"Content-Length":  "12",
			"ETag":            "d41d8cd98f00b204e9800998ecf8427e",
			"X-Object-Meta-X": "\xc3\x83\xc2\xbc",
		}},
		{"py3-hashes.pkl", map[string]any{
			"abc": "d41d8cd98f00b204e9800998ecf8427e", "fff": nil, "valid": true, "updated": 1700000000.5,
		}},
		{"py3-proto0.pkl", map[string]any{
			"op": "PUT", "account": "a", "headers": map[string]any{"x-size": "0"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	values := []any{
		map[string]string{"name": "/a/c/o", "Content-Length": "0", "X-Object-Meta-Long": string(bytes.Repeat([]byte("x"), 300))},
		map[string]any{"abc": nil, "valid": true, "updated": 1.25, "n": int64(-5), "big": int64(1 << 40), "l": []any{int64(1), "x"}},
		map[string]any{"b": Bytes("\x00\xff"), "u": Unicode("ü")},
	}
	for _, v := range values {
		data, err := Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		// Normalise the expectation the way Decode reports values.
		want := map[string]any{}
		switch m := v.(type) {
		case map[string]string:
			for k, x := range m {
				want[k] = x
			}
		case map[string]any:
			for k, x := range m {
				switch y := x.(type) {
				case Bytes:
					want[k] = string(y)
				case Unicode:
					want[k] = string(y)
				default:
					want[k] = x
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip: got %#v want %#v", got, want)
		}
	}
}

func TestEncodeDeterministic(t *testing.T) {
	m := map[string]string{"b": "1", "a": "2", "c": "3"}
	a, _ := Encode(m)
	for range 20 {
		b, _ := Encode(m)
		if !bytes.Equal(a, b) {
			t.Fatal("encoding not deterministic")
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	bad := [][]byte{
		nil,
		[]byte("\x80\x02"),
		[]byte("cos\nsystem\n(S'ls'\ntR."), // a call to anything but _codecs.encode
		[]byte("\x80\x02}q\x00(U\x01a\x85q\x01u."), // truncated / bad SETITEMS
		bytes.Repeat([]byte("("), 1000),
	}
	for _, b := range bad {
		if _, err := Decode(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) err = %v, want ErrInvalid", b, err)
		}
	}
	if _, err := StringMap(MustEncode([]any{"x"})); !errors.Is(err, ErrInvalid) {
		t.Errorf("StringMap of a list: %v", err)
	}
}

// TestPythonReadsOurPickles checks with the real interpreter, when present,
// that Swift's read_metadata idiom (pickle.loads(encoding='bytes')) and
// plain pickle.loads both read what we write.
func TestPythonReadsOurPickles(t *testing.T) {
	// The interpreter Swift runs on, never a pyenv shim ahead on PATH.
	const py = "/usr/bin/python3"
	testenv.RequireTools(t, py)
	data := MustEncode(map[string]string{"name": "/a/c/o ü", "X-Timestamp": "1700000000.00000"})
	cmd := exec.Command(py, "-c", `import pickle,sys
d = pickle.loads(sys.stdin.buffer.read(), encoding='bytes')
assert d[b'name'].decode('utf8') == '/a/c/o \u00fc', d
assert d[b'X-Timestamp'] == b'1700000000.00000', d
print('ok')`)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	data = MustEncode(map[Unicode]any{"op": Unicode("PUT"), "obj": Unicode("o ü"), "headers": map[Unicode]any{"x-size": Unicode("3")}})
	cmd = exec.Command(py, "-c", `import pickle,sys
d = pickle.loads(sys.stdin.buffer.read())
assert d == {'op': 'PUT', 'obj': 'o \u00fc', 'headers': {'x-size': '3'}}, d
print('ok')`)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
}

func TestFragHashesRoundTrip(t *testing.T) {
	for _, fh := range []FragHashes{{}, {-1: "a"}, {-1: "a", 0: "b", 13: "c"}, {300: "d"}} {
		data, err := Encode(map[string]any{"abc": fh})
		if err != nil {
			t.Fatal(err)
		}
		v, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := AsFragHashes(v.(map[string]any)["abc"])
		if !ok || len(got) != len(fh) {
			t.Fatalf("%v: %v %v", fh, got, ok)
		}
		for k, want := range fh {
			if got[k] != want {
				t.Fatalf("%v: %v", fh, got)
			}
		}
	}
	if _, ok := AsFragHashes(map[string]any{"x": "y"}); ok {
		t.Fatal("a dict of other keys read as FragHashes")
	}
}

// TestStringMapFastAllocs: an object's metadata decodes with a fixed
// number of allocations (the string holding every value, the map sized
// once), not one more per value.
func TestStringMapFastAllocs(t *testing.T) {
	m := map[string]string{"name": "/AUTH_a/c/o", "Content-Type": "text/plain", "X-Timestamp": "1700000000.00000",
		"ETag": "d41d8cd98f00b204e9800998ecf8427e", "Content-Length": "4096", "X-Object-Meta-Color": "blue",
		"long": strings.Repeat("x", 300)}
	for i := range 14 {
		m[fmt.Sprintf("X-Object-Sysmeta-Test-%d", i)] = strings.Repeat("v", i)
	}
	data := MustEncode(m)
	if got, ok := stringMapFast(data); !ok || !maps.Equal(got, m) {
		t.Fatalf("fast path: %v %v", ok, got)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = stringMapFast(data) }); n > 6 {
		t.Fatalf("%v allocations for %d values", n, len(m))
	}
}

// memoBomb is a pickle of a dict {"abc": list}, the list nesting levels
// deep, each level width memo references (BINGET) to the level below:
// len(memoBomb(w, l)) is about 2*w*l bytes, and it expands to w^l values.
func memoBomb(width, levels int) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x02}q\xffX\x03\x00\x00\x00abcX\x01\x00\x00\x00xq\x000")
	for i := 1; i <= levels; i++ {
		b.WriteString("](")
		for range width {
			b.Write([]byte{'h', byte(i - 1)})
		}
		b.Write([]byte{'e', 'q', byte(i)})
		if i < levels {
			b.WriteString("0")
		}
	}
	b.WriteString("s.")
	return b.Bytes()
}

// TestMemoReferencesBounded: references to a shared list are copies once
// decoded, so a few hundred bytes of nested references expanded to
// hundreds of MiB (8 KiB to more than any memory) for whoever can write a
// file's metadata xattr or a partition's hashes.pkl. They are refused once
// they would exceed maxValues; a small shared structure still decodes.
func TestMemoReferencesBounded(t *testing.T) {
	if v, err := Decode(memoBomb(3, 3)); err != nil {
		t.Fatalf("a small shared structure: %v", err)
	} else if l, ok := v.(map[string]any)["abc"].([]any); !ok || len(l) != 3 {
		t.Fatalf("a small shared structure decoded as %v", v)
	}
	for _, c := range []struct{ width, levels int }{{60, 4}, {1000, 4}, {250, 5}} {
		data := memoBomb(c.width, c.levels)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Decode(data)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%d bytes expanding to %d^%d values: %v", len(data), c.width, c.levels, err)
		}
		if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 256 {
			t.Errorf("%d bytes expanding to %d^%d values: %d MiB allocated before the refusal", len(data), c.width, c.levels, mb)
		}
		if _, err := StringMap(data); !errors.Is(err, ErrInvalid) {
			t.Errorf("StringMap of %d bytes expanding to %d^%d values: %v", len(data), c.width, c.levels, err)
		}
	}
}
