package diskfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"opendev.org/x/arca/objectserver/ringhash"
)

func newManager(t *testing.T) *Manager {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "d1"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Manager{Devices: dir, ReclaimAge: 7 * 24 * time.Hour, Hasher: ringhash.Hasher{Prefix: "p", Suffix: "s"}, NoFsync: true}
}

func put(t *testing.T, d *DiskFile, name string, body string, meta map[string]string) {
	t.Helper()
	w, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.File().WriteString(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), name, meta); err != nil {
		t.Fatal(err)
	}
}

func TestTimestamps(t *testing.T) {
	tests := []struct{ in, normal, internal string }{
		{"1700000000.12345", "1700000000.12345", "1700000000.12345"},
		{"1700000000.123456", "1700000000.12346", "1700000000.12346"},
		{"1", "0000000001.00000", "0000000001.00000"},
		{"1700000000.00000_000000000000000a", "1700000000.00000", "1700000000.00000_000000000000000a"},
	}
	for _, tc := range tests {
		ts, err := ParseTimestamp(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if ts.Normal() != tc.normal || ts.Internal() != tc.internal {
			t.Errorf("%s: normal %s internal %s", tc.in, ts.Normal(), ts.Internal())
		}
	}
	for _, bad := range []string{"", "x", "-1", "1e30", "NaN", "1_zz", "1_"} {
		if _, err := ParseTimestamp(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	meta, _ := ParseTimestamp("1700000001.00000")
	if got := MetaName(meta, &meta); got != "1700000001.00000+0" {
		t.Errorf("MetaName = %s", got)
	}
	m, c, err := parseMetaName("1700000001.00000+0")
	if err != nil || m != meta || *c != meta {
		t.Errorf("parseMetaName: %v %v %v", m, c, err)
	}
}

// TestTimestampFormsAsFmt: the strconv-built forms are fmt's, for every
// kind of value (padding, wide seconds, offsets, negative values).
func TestTimestampFormsAsFmt(t *testing.T) {
	for _, ts := range []Timestamp{
		{}, {Raw: 1}, {Raw: 99999}, {Raw: 100000}, {Raw: 170000000012345}, {Raw: maxRaw},
		{Raw: 1 << 62}, {Raw: 170000000012345, Offset: 10}, {Raw: 5, Offset: 1<<63 - 1},
		{Raw: -1}, {Raw: -170000000012345, Offset: 3}, {Raw: 7, Offset: -2},
	} {
		normal := fmt.Sprintf("%010d.%05d", ts.Raw/100000, ts.Raw%100000)
		internal, short := normal, normal
		if ts.Offset != 0 {
			internal = fmt.Sprintf("%s_%016x", normal, ts.Offset)
			short = fmt.Sprintf("%s_%x", normal, ts.Offset)
		}
		if got := ts.Normal(); got != normal {
			t.Errorf("%+v: Normal %q, want %q", ts, got, normal)
		}
		if got := ts.Internal(); got != internal {
			t.Errorf("%+v: Internal %q, want %q", ts, got, internal)
		}
		if got := ts.Short(); got != short {
			t.Errorf("%+v: Short %q, want %q", ts, got, short)
		}
	}
}

func TestGather(t *testing.T) {
	tests := []struct {
		files          []string
		data, meta, ts string
		ctype          string
		obsolete       []string
	}{
		{files: []string{"1.00000.data"}, data: "1.00000.data"},
		{files: []string{"1.00000.data", "2.00000.ts"}, ts: "2.00000.ts", obsolete: []string{"1.00000.data"}},
		{files: []string{"3.00000.data", "2.00000.ts", "1.00000.data"}, data: "3.00000.data", obsolete: []string{"1.00000.data", "2.00000.ts"}},
		{files: []string{"1.00000.data", "2.00000.meta", "3.00000.meta"}, data: "1.00000.data", meta: "3.00000.meta", obsolete: []string{"2.00000.meta"}},
		{files: []string{"1.00000.data", "2.00000+0.meta", "3.00000.meta"}, data: "1.00000.data", meta: "3.00000.meta", ctype: "2.00000+0.meta"},
		{files: []string{"2.00000.data", "1.00000.meta"}, data: "2.00000.data", obsolete: []string{"1.00000.meta"}},
		{files: []string{"junk", "1.00000.data"}, data: "1.00000.data"},
	}
	for _, tc := range tests {
		st := gather(tc.files)
		name := func(f *fileInfo) string {
			if f == nil {
				return ""
			}
			return f.name
		}
		sort.Strings(st.obsolete)
		sort.Strings(tc.obsolete)
		if name(st.data) != tc.data || name(st.meta) != tc.meta || name(st.ts) != tc.ts || name(st.ctype) != tc.ctype ||
			!reflect.DeepEqual(st.obsolete, tc.obsolete) {
			t.Errorf("%v: data %q meta %q ts %q ctype %q obsolete %v", tc.files, name(st.data), name(st.meta), name(st.ts), name(st.ctype), st.obsolete)
		}
	}
}

func TestPutOpenPostDelete(t *testing.T) {
	m := newManager(t)
	d, err := m.Object("d1", "7", 0, "AUTH_a", "c", "o/ü")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
	put(t, d, "1700000000.00000.data", "hello", map[string]string{
		"X-Timestamp": "1700000000.00000", "Content-Length": "5", "ETag": "5d41402abc4b2a76b9719d911017c592",
		"Content-Type": "text/plain", "X-Object-Meta-Color": "bl\xc3\xbce", "X-Object-Sysmeta-Arca-Key-Id": "k1",
	})
	o, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	if o.Metadata["X-Object-Meta-Color"] != "bl\xc3\xbce" || o.Metadata["name"] != "/AUTH_a/c/o/ü" || o.Size != 5 {
		t.Fatalf("metadata %v size %d", o.Metadata, o.Size)
	}
	o.Close()
	// a POST with a new content type replaces user metadata, keeps sysmeta
	ts2, _ := ParseTimestamp("1700000001.00000")
	put(t, d, MetaName(ts2, &ts2)+".meta", "", map[string]string{
		"X-Timestamp": ts2.Internal(), "X-Object-Meta-Size": "L", "Content-Type": "image/png", "Content-Type-Timestamp": ts2.Internal(),
	})
	o, err = d.Open()
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	want := map[string]string{
		"name": "/AUTH_a/c/o/ü", "X-Timestamp": "1700000001.00000", "Content-Length": "5", "ETag": "5d41402abc4b2a76b9719d911017c592",
		"Content-Type": "image/png", "Content-Type-Timestamp": "1700000001.00000", "X-Object-Meta-Size": "L", "X-Object-Sysmeta-Arca-Key-Id": "k1",
	}
	if !reflect.DeepEqual(o.Metadata, want) {
		t.Fatalf("merged metadata\n got %v\nwant %v", o.Metadata, want)
	}
	hashes, err := m.GetHashes(context.Background(), "d1", "7", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	suffix := d.Hash[29:]
	// md5("1700000001.00000.meta1700000000.00000.data1700000001.00000_ctype") as Swift computes it
	if hashes[suffix] != "2ca296ca515ca58c7ed742943e1a9bac" {
		t.Fatalf("hashes %v", hashes)
	}
	now := FromTime(time.Now())
	put(t, d, now.Internal()+".ts", "", map[string]string{"X-Timestamp": now.Internal()})
	_, err = d.Open()
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Tombstone == nil || *nf.Tombstone != now {
		t.Fatalf("after delete: %v", err)
	}
	names, _ := listDir(d.Dir())
	if len(names) != 1 {
		t.Fatalf("files left: %v", names)
	}
}

func TestQuarantineBadChecksum(t *testing.T) {
	m := newManager(t)
	d, _ := m.Object("d1", "1", 0, "a", "c", "o")
	put(t, d, "1700000000.00000.data", "x", map[string]string{"X-Timestamp": "1700000000.00000", "Content-Length": "1"})
	names, _ := listDir(d.Dir())
	f := filepath.Join(d.Dir(), names[0])
	if err := setxattrPath(f, metadataChecksumKey, "0000"); err != nil {
		t.Fatal(err)
	}
	_, err := d.Open()
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Quarantined == "" {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.Devices, "d1", "quarantined", "objects", d.Hash)); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceChecks(t *testing.T) {
	m := newManager(t)
	for _, dev := range []string{"nope", "..", "a/b", ""} {
		if _, err := m.Object(dev, "1", 0, "a", "c", "o"); !errors.Is(err, ErrDeviceUnavailable) {
			t.Errorf("device %q: %v", dev, err)
		}
	}
	m.MountCheck = true
	if _, err := m.Object("d1", "1", 0, "a", "c", "o"); !errors.Is(err, ErrDeviceUnavailable) {
		t.Errorf("mount_check on a plain dir: %v", err)
	}
}
