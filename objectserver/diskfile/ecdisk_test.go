package diskfile

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"opendev.org/x/arca/objectserver/ringhash"
)

func intp(i int) *int { return &i }

// TestGatherEC holds the rules of Swift 2.30's ECDiskFileManager
// (_process_ondisk_files, get_ondisk_files) on hash directories.
func TestGatherEC(t *testing.T) {
	const t1, t2, t3 = "0000000001.00000", "0000000002.00000", "0000000003.00000"
	for _, tc := range []struct {
		name     string
		files    []string
		q        ecQuery
		data     string // chosen, "" for none
		durable  string
		ts       string
		obsolete []string
		frags    map[string][]int
	}{
		{name: "durable", files: []string{t1 + "#2#d.data"}, data: t1 + "#2#d.data", durable: t1,
			frags: map[string][]int{t1: {2}}},
		{name: "non-durable only: nothing without preferences", files: []string{t1 + "#2.data"},
			frags: map[string][]int{t1: {2}}},
		{name: "non-durable with empty preferences", files: []string{t1 + "#2.data"}, q: ecQuery{hasPrefs: true},
			data: t1 + "#2.data", frags: map[string][]int{t1: {2}}},
		{name: "newer non-durable beside durable: durable served", files: []string{t1 + "#2#d.data", t2 + "#2.data"},
			data: t1 + "#2#d.data", durable: t1, frags: map[string][]int{t1: {2}, t2: {2}}},
		{name: "preferences pick the newer non-durable", files: []string{t1 + "#2#d.data", t2 + "#2.data"},
			q: ecQuery{hasPrefs: true}, data: t2 + "#2.data", durable: t1, frags: map[string][]int{t1: {2}, t2: {2}}},
		{name: "preferences exclude an index", files: []string{t1 + "#1#d.data", t1 + "#4#d.data"},
			q:    ecQuery{hasPrefs: true, prefs: []FragPref{{Timestamp: mustTS(t1), Exclude: []int{4}}}},
			data: t1 + "#1#d.data", durable: t1, frags: map[string][]int{t1: {1, 4}}},
		{name: "preferences exclude all at a timestamp: next", files: []string{t1 + "#1#d.data", t2 + "#3.data"},
			q:    ecQuery{hasPrefs: true, prefs: []FragPref{{Timestamp: mustTS(t2), Exclude: []int{3}}}},
			data: t1 + "#1#d.data", durable: t1, frags: map[string][]int{t1: {1}, t2: {3}}},
		{name: "without preferences the highest index", files: []string{t1 + "#1#d.data", t1 + "#4#d.data"},
			data: t1 + "#4#d.data", durable: t1, frags: map[string][]int{t1: {1, 4}}},
		{name: "one durable marks its set", files: []string{t1 + "#1#d.data", t1 + "#4.data"},
			data: t1 + "#4.data", durable: t1, frags: map[string][]int{t1: {1, 4}}},
		{name: "frag index asked", files: []string{t1 + "#1#d.data", t1 + "#4#d.data"}, q: ecQuery{fragIndex: intp(1)},
			data: t1 + "#1#d.data", durable: t1, frags: map[string][]int{t1: {1, 4}}},
		{name: "older data than durable is obsolete", files: []string{t1 + "#1#d.data", t2 + "#1#d.data"},
			data: t2 + "#1#d.data", durable: t2, obsolete: []string{t1 + "#1#d.data"}, frags: map[string][]int{t2: {1}}},
		{name: "legacy .durable", files: []string{t1 + "#1.data", t1 + ".durable"},
			data: t1 + "#1.data", durable: t1, frags: map[string][]int{t1: {1}}},
		{name: "tombstone newer than data", files: []string{t1 + "#1#d.data", t2 + ".ts"},
			ts: t2, obsolete: []string{t1 + "#1#d.data"}},
		{name: "data newer than tombstone", files: []string{t1 + ".ts", t2 + "#1#d.data"},
			data: t2 + "#1#d.data", durable: t2, obsolete: []string{t1 + ".ts"}, frags: map[string][]int{t2: {1}}},
		{name: "meta newer than durable data", files: []string{t1 + "#1#d.data", t3 + ".meta"},
			data: t1 + "#1#d.data", durable: t1, frags: map[string][]int{t1: {1}}},
		{name: "bad names are not data", files: []string{t1 + ".data", t1 + "#x.data", t1 + "#9.data", t1 + "#1#e.data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.nfrags = 6
			st := gatherEC(tc.files, tc.q)
			got := ""
			if st.data != nil {
				got = st.data.name
			}
			if got != tc.data {
				t.Errorf("data %q, want %q", got, tc.data)
			}
			gotDurable := ""
			if st.durableTS != nil {
				gotDurable = st.durableTS.Internal()
			}
			if gotDurable != tc.durable {
				t.Errorf("durable %q, want %q", gotDurable, tc.durable)
			}
			gotTS := ""
			if st.ts != nil {
				gotTS = st.ts.ts.Internal()
			}
			if gotTS != tc.ts {
				t.Errorf("tombstone %q, want %q", gotTS, tc.ts)
			}
			slices.Sort(st.obsolete)
			if !reflect.DeepEqual(st.obsolete, tc.obsolete) {
				t.Errorf("obsolete %v, want %v", st.obsolete, tc.obsolete)
			}
			frags := map[string][]int{}
			for _, set := range st.fragSets {
				for _, f := range set {
					frags[f.ts.Internal()] = append(frags[f.ts.Internal()], f.frag)
				}
			}
			if len(tc.frags) == 0 {
				tc.frags = map[string][]int{}
			}
			if !reflect.DeepEqual(frags, tc.frags) {
				t.Errorf("fragments %v, want %v", frags, tc.frags)
			}
		})
	}
}

func mustTS(s string) Timestamp {
	ts, err := ParseTimestamp(s)
	if err != nil {
		panic(err)
	}
	return ts
}

func TestParseFragPrefs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		n       int
		wantErr bool
	}{
		{"", 0, false},
		{"not json", 0, false},
		{"null", 0, false},
		{"[]", 0, false},
		{`[{"timestamp": "0000000001.00000", "exclude": [1, 2]}]`, 1, false},
		{`[{"timestamp": 1.5, "exclude": []}]`, 1, false},
		{`{"a": 1}`, 0, true},
		{`[{"timestamp": "x", "exclude": []}]`, 0, true},
		{`[{"timestamp": "0000000001.00000"}]`, 0, true},
		{`[{"timestamp": "0000000001.00000", "exclude": [-1]}]`, 0, true},
		{`[1]`, 0, true},
	} {
		p, err := ParseFragPrefs(tc.in, 0)
		if (err != nil) != tc.wantErr || (err == nil && len(p) != tc.n) {
			t.Errorf("%q: %v %v", tc.in, p, err)
		}
	}
}

func FuzzParseFragPrefs(f *testing.F) {
	f.Add(`[{"timestamp": "0000000001.00000", "exclude": [1, 2]}]`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseFragPrefs(s, 6)
		if err != nil && p != nil {
			t.Fatal("preferences with an error")
		}
		q := ecQuery{nfrags: 6, prefs: p, hasPrefs: true}
		_ = gatherEC([]string{"0000000001.00000#1#d.data", "0000000002.00000#3.data"}, q)
	})
}

func FuzzGatherEC(f *testing.F) {
	f.Add("0000000001.00000#1#d.data", "0000000002.00000.ts", "0000000001.00000.durable")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		st := gatherEC([]string{a, b, c}, ecQuery{nfrags: 6, hasPrefs: true})
		if st.data != nil && st.data.frag < 0 {
			t.Fatalf("data without a fragment index: %+v", st.data)
		}
	})
}

// TestMakeDurable writes a fragment archive, opens it only with
// preferences until MakeDurable, then as any object.
func TestMakeDurable(t *testing.T) {
	devices := t.TempDir()
	if err := os.MkdirAll(filepath.Join(devices, "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Devices: devices, ReclaimAge: time.Hour, Hasher: ringhash.Hasher{Prefix: "p"}, NoFsync: true, ECFragments: map[int]int{1: 6}}
	d, err := m.Object("sda", "0", 1, "a", "c", "o")
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	ts := mustTS("0000000005.00000")
	if err := w.Commit(t.Context(), ECFileName(ts, 2, false), map[string]string{"X-Timestamp": ts.Internal(), "X-Object-Sysmeta-Ec-Frag-Index": "2", "Content-Length": "0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(); err == nil {
		t.Fatal("non-durable fragment opened without preferences")
	}
	d.EC = &ECOptions{HasPrefs: true}
	obj, err := d.Open()
	if err != nil || obj.DurableTS != nil || obj.FragIndex != 2 {
		t.Fatalf("with preferences: %+v %v", obj, err)
	}
	obj.Close()
	if err := d.MakeDurable(ts, 2); err != nil {
		t.Fatal(err)
	}
	d.EC = nil
	obj, err = d.Open()
	if err != nil || obj.DurableTS == nil || obj.DurableTS.Compare(ts) != 0 {
		t.Fatalf("durable: %+v %v", obj, err)
	}
	obj.Close()
	// A fragment whose metadata names another index is not served.
	names, _ := os.ReadDir(d.Dir())
	if len(names) != 1 || names[0].Name() != ECFileName(ts, 2, true) {
		t.Fatalf("files %v", names)
	}
	if err := os.Rename(filepath.Join(d.Dir(), names[0].Name()), filepath.Join(d.Dir(), ECFileName(ts, 3, true))); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(); err == nil {
		t.Fatal("fragment archive renamed to another index opened")
	}
}

// TestCurrentDataEC: the rewrap walk finds an EC object's durable
// fragment archive (so a rotation reaches EC objects too), not a newer
// non-durable one, and nothing for an object with only non-durable ones.
func TestCurrentDataEC(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"0000000001.00000#2#d.data"}, "0000000001.00000#2#d.data"},
		{[]string{"0000000001.00000#2#d.data", "0000000002.00000#2.data"}, "0000000001.00000#2#d.data"},
		{[]string{"0000000002.00000#2.data"}, ""},
		{[]string{"0000000001.00000#2#d.data", "0000000002.00000.ts"}, ""},
		{[]string{"0000000001.00000.data"}, "0000000001.00000.data"},
	} {
		dir := t.TempDir()
		for _, f := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := CurrentData(dir); err != nil || got != tc.want {
			t.Errorf("%v: %q %v, want %q", tc.files, got, err, tc.want)
		}
	}
}

// TestLiveDataEC: the rewrap walk finds every fragment archive of an EC
// object newer than its newest tombstone (several indexes, a non-durable
// one beside or without a durable one), newest first, and a replicated
// object's current .data alone.
func TestLiveDataEC(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  []string
	}{
		{[]string{"0000000001.00000#2#d.data"}, []string{"0000000001.00000#2#d.data"}},
		{
			[]string{"0000000001.00000#2#d.data", "0000000001.00000#4#d.data", "0000000002.00000#3.data", "0000000002.00000.meta"},
			[]string{"0000000002.00000#3.data", "0000000001.00000#2#d.data", "0000000001.00000#4#d.data"},
		},
		{[]string{"0000000002.00000#2.data"}, []string{"0000000002.00000#2.data"}},
		{[]string{"0000000001.00000#2#d.data", "0000000002.00000.ts"}, nil},
		{[]string{"0000000001.00000#2#d.data", "0000000002.00000.ts", "0000000003.00000#1.data"}, []string{"0000000003.00000#1.data"}},
		{[]string{"0000000001.00000.data", "0000000002.00000.data"}, []string{"0000000002.00000.data"}},
		{[]string{"0000000001.00000.data", "0000000002.00000.ts"}, nil},
		{nil, nil},
	} {
		dir := t.TempDir()
		for _, f := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got, err := LiveData(dir)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%v: %q %v, want %q", tc.files, got, err, tc.want)
		}
	}
}
