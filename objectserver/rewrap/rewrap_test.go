package rewrap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

func newNode(t testing.TB) *diskfile.Manager {
	m, err := rewraptest.NewNode(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func body(i int) []byte { return []byte(fmt.Sprintf("object %d %s", i, strings.Repeat("x", i%300))) }

// dataFiles maps each .data file to its size and the suffix hashes to
// compare before and after a rewrap.
func snapshot(t testing.TB, m *diskfile.Manager) (map[string]int64, map[string]string) {
	files := map[string]int64{}
	_ = filepath.Walk(m.Devices, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && (strings.HasSuffix(p, ".data") || strings.HasSuffix(p, ".meta") || strings.HasSuffix(p, ".ts")) {
			files[p] = fi.Size()
		}
		return nil
	})
	all := map[string]string{}
	for p := range 8 {
		h, err := m.GetHashes(context.Background(), "d1", fmt.Sprint(p), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			all[fmt.Sprint(p, "/", k)] = v
		}
	}
	return files, all
}

func run(t testing.TB, m *diskfile.Manager, keys *rewraptest.Keys, mod func(*Options)) *Summary {
	t.Helper()
	o := Options{Devices: m.Devices, Project: "p1", Keys: keys, ChecksumDelay: 1}
	if mod != nil {
		mod(&o)
	}
	s, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return s
}

func TestRewrapMovesEveryObjectAndChangesNothingElse(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	old := keys.Rotate("p1")
	keys.Rotate("p2")
	for i := range 40 {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), map[string]string{"X-Object-Meta-Color": "blü"})
	}
	putObject(t, m, keys, "p2", "other", body(1), nil)
	// a deleted object: a tombstone newer than its .data
	putObject(t, m, keys, "p1", "deleted", body(2), nil)
	df, _ := m.Object("d1", rewraptest.Partition("deleted"), 0, "AUTH_p1", "c", "deleted")
	w, _ := df.Create()
	ts := rewraptest.NextTimestamp()
	if err := w.Commit(context.Background(), ts.Internal()+".ts", map[string]string{"X-Timestamp": ts.Internal()}); err != nil {
		t.Fatal(err)
	}
	keys.Rotate("p1")
	for i := 40; i < 50; i++ {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
	}
	before, hashes := snapshot(t, m)
	metaBefore := map[string]map[string]string{}
	for i := range 50 {
		_, o := readObject(t, m, keys, "p1", fmt.Sprint("o", i))
		metaBefore[fmt.Sprint("o", i)] = o.Metadata
	}

	st := run(t, m, keys, func(o *Options) { o.DryRun = true })
	if st.Rewrapped != 40 || st.Keys[KeyRef{"p1", old}] != 40 || st.Objects(true) != 40 {
		t.Fatalf("dry run: %+v", st)
	}
	s := run(t, m, keys, nil)
	if s.Rewrapped != 40 || s.Already != 10 || s.OtherProject != 1 || s.Failed != 0 || s.Checksums != 40 {
		t.Fatalf("run: %+v", s)
	}
	after, hashes2 := snapshot(t, m)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("files changed:\n%v\n%v", before, after)
	}
	if fmt.Sprint(hashes) != fmt.Sprint(hashes2) {
		t.Fatalf("suffix hashes changed: %v %v", hashes, hashes2)
	}
	if st := run(t, m, keys, func(o *Options) { o.DryRun = true }); st.Objects(true) != 0 || st.Rewrapped != 0 {
		t.Fatalf("status after the run: %+v", st)
	}
	keys.Destroy("p1", old)
	for i := range 50 {
		name := fmt.Sprint("o", i)
		got, o := readObject(t, m, keys, "p1", name)
		if !bytes.Equal(got, body(i)) {
			t.Fatalf("%s reads %q", name, got)
		}
		for k, v := range metaBefore[name] {
			// the user metadata is resealed onto the new key: its sealed form
			// changes, its plaintext (opened by readObject) must not
			resealed := k == sysmeta.Prefix+sysmeta.UserMeta || k == sysmeta.Prefix+sysmeta.MetaKeyID
			if k != sysmeta.Prefix+"Key-Id" && k != sysmeta.Prefix+"Wrapped-Key" && !resealed && o.Metadata[k] != v {
				t.Errorf("%s: %s was %q, is %q", name, k, v, o.Metadata[k])
			}
		}
	}
	// every .data file has its checksum back
	for p := range after {
		if strings.HasSuffix(p, ".data") {
			if _, err := unix.Getxattr(p, "user.swift.metadata_checksum", make([]byte, 64)); err != nil {
				t.Fatalf("%s: no checksum: %v", p, err)
			}
		}
	}
	if s := run(t, m, keys, nil); s.Rewrapped != 0 || s.Checksums != 0 || s.Failed != 0 {
		t.Fatalf("second run: %+v", s)
	}
}

func TestRewrapResumesAfterInterruption(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	old := keys.Rotate("p1")
	for i := range 60 {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
	}
	keys.Rotate("p1")
	stateFile := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	s, err := Run(ctx, Options{Devices: m.Devices, Project: "p1", Keys: keys, ChecksumDelay: 1, StateFile: stateFile,
		Progress: func(done, total int, s *Summary) {
			n++
			if s.Scanned >= 20 {
				cancel()
			}
		}})
	cancel()
	if err == nil || !s.Interrupted || s.Rewrapped == 0 || s.Rewrapped == 60 {
		t.Fatalf("first run: %v %+v", err, s)
	}
	first := s.Rewrapped
	s2 := run(t, m, keys, func(o *Options) { o.StateFile = stateFile })
	if s2.ResumedFrom == "" || s2.Scanned >= 60 || first+s2.Rewrapped != 60 || s2.Failed != 0 {
		t.Fatalf("resumed: first %d, then %+v", first, s2)
	}
	if st := run(t, m, keys, func(o *Options) { o.DryRun = true }); st.Keys[KeyRef{"p1", old}] != 0 {
		t.Fatalf("objects left on the old key: %+v", st)
	}
	// a completed state starts over
	if s3 := run(t, m, keys, func(o *Options) { o.StateFile = stateFile }); s3.ResumedFrom != "" || s3.Scanned != 60 {
		t.Fatalf("after completion: %+v", s3)
	}
}

// TestCrashBetweenSteps leaves a file as a crash after step 2 would (new
// pickle, no checksum): the object server reads it, and the next run
// restores the checksum.
func TestCrashBetweenSteps(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	putObject(t, m, keys, "p1", "o", body(5), nil)
	keys.Rotate("p1")
	j := &job{o: Options{Devices: m.Devices, Project: "p1", Keys: keys, ChecksumDelay: time.Hour, ResellerPrefixes: []string{"AUTH_"}}, s: &Summary{Reasons: map[string]int{}, Keys: map[KeyRef]int{}, Active: map[string]string{}}}
	if err := j.walk(context.Background()); err != nil { // no flush: the crash
		t.Fatal(err)
	}
	if j.s.Rewrapped != 1 || len(j.pending) != 1 {
		t.Fatalf("%+v", j.s)
	}
	if _, err := unix.Getxattr(j.pending[0].path, "user.swift.metadata_checksum", make([]byte, 64)); err == nil {
		t.Fatal("checksum still present")
	}
	if got, _ := readObject(t, m, keys, "p1", "o"); !bytes.Equal(got, body(5)) {
		t.Fatalf("reads %q", got)
	}
	s := run(t, m, keys, nil)
	if s.Already != 1 || s.Checksums != 1 {
		t.Fatalf("repair run: %+v", s)
	}
	if _, err := unix.Getxattr(j.pending[0].path, "user.swift.metadata_checksum", make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
}

func TestRewrapReportsFailures(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	old := keys.Rotate("p1")
	putObject(t, m, keys, "p1", "o", body(1), nil)
	keys.Rotate("p1")
	keys.Destroy("p1", old)
	s := run(t, m, keys, nil)
	if s.Failed != 1 || s.Reasons["old key: key destroyed"] != 1 || s.Keys[KeyRef{"p1", old}] != 1 {
		t.Fatalf("%+v", s)
	}
	var out bytes.Buffer
	Report(&out, s, true)
	if !strings.Contains(out.String(), "failed: old key: key destroyed: 1") || !strings.Contains(out.String(), "objects on inactive keys: 1") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// TestParallelRunKilledAndResumed stops runs with several workers
// mid-way, again and again, and resumes each time from the state file:
// every object is rewrapped exactly once overall, none stays on the old
// key, none is left without its checksum and every one reads.
func TestParallelRunKilledAndResumed(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	old := keys.Rotate("p1")
	const n = 300
	for i := range n {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
	}
	keys.Rotate("p1")
	stateFile := filepath.Join(t.TempDir(), "state.json")
	total, runs := 0, 0
	for stop := 40; ; stop += 60 {
		runs++
		ctx, cancel := context.WithCancel(context.Background())
		s, err := Run(ctx, Options{Devices: m.Devices, Project: "p1", Keys: keys, ChecksumDelay: time.Millisecond,
			StateFile: stateFile, Workers: 3,
			Progress: func(done, total int, s *Summary) {
				if s.Scanned >= stop {
					cancel()
				}
			}})
		cancel()
		if s.Failed != 0 {
			t.Fatalf("run %d: %+v", runs, s)
		}
		if runs > 1 && s.ResumedFrom == "" {
			t.Fatalf("run %d did not resume: %+v", runs, s)
		}
		total += s.Rewrapped
		if err == nil {
			break
		}
		if !s.Interrupted {
			t.Fatalf("run %d: %v", runs, err)
		}
		if runs > 20 {
			t.Fatal("never completes")
		}
	}
	if runs < 3 || total != n {
		t.Fatalf("%d runs rewrapped %d objects, want %d", runs, total, n)
	}
	if st := run(t, m, keys, func(o *Options) { o.DryRun = true }); st.Keys[KeyRef{"p1", old}] != 0 || st.Already != n {
		t.Fatalf("after the runs: %+v", st)
	}
	_ = filepath.Walk(m.Devices, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".data") {
			if _, err := unix.Getxattr(p, "user.swift.metadata_checksum", make([]byte, 64)); err != nil {
				t.Errorf("%s: no checksum: %v", p, err)
			}
		}
		return nil
	})
	keys.Destroy("p1", old)
	for i := range n {
		if got, _ := readObject(t, m, keys, "p1", fmt.Sprint("o", i)); !bytes.Equal(got, body(i)) {
			t.Fatalf("o%d reads %q", i, got)
		}
	}
}

// TestFrontierNeverPassesUnfinishedSuffix: a suffix with a checksum
// outstanding, or a partition still walking, holds the frontier back even
// when later partitions are complete; those are listed separately.
func TestFrontierNeverPassesUnfinishedSuffix(t *testing.T) {
	mk := func(part string) *partRec {
		return &partRec{p: partition{device: "d1", policy: "objects", part: part}}
	}
	f := &frontier{parts: []*partRec{mk("0"), mk("1"), mk("2")}}
	a := &sufRec{pos: position{"d1", "objects", "0", "abc"}, walked: true}
	b := &sufRec{pos: position{"d1", "objects", "0", "abd"}, walked: true, outstanding: 1}
	f.parts[0].suffixes = []*sufRec{a, b}
	f.parts[0].walked = true
	f.parts[2].walked = true
	f.advance()
	if f.last == nil || *f.last != a.pos || f.next != 0 {
		t.Fatalf("frontier at %v (%d)", f.last, f.next)
	}
	if got := f.completedAfter(); fmt.Sprint(got) != "[d1/objects/2]" {
		t.Fatalf("completed after: %v", got)
	}
	b.outstanding = 0
	f.advance()
	if f.next != 1 || f.last.Suffix != partEnd || f.last.Partition != "0" {
		t.Fatalf("frontier at %v (%d)", f.last, f.next)
	}
}

// TestCrashAfterEachStep leaves a file as a crash right after step 1
// (checksum removed, old pickle) or step 2 (new pickle, no checksum) of the
// metadata replacement would: the object server's read path (diskfile's
// Open, as GET) reads it on the key its pickle names without quarantining
// it, status counts it on that key, and the next run finishes the job: the
// object on the active key with its checksum back, readable once the old
// key is destroyed.
func TestCrashAfterEachStep(t *testing.T) {
	cases := []struct {
		name string
		// crash leaves f as a crash would; newPickle is the rewrapped one
		crash          func(t *testing.T, f *os.File, raw *diskfile.RawMetadata, newPickle []byte)
		onActive       bool // the pickle after the crash names the active key
		wantRewrapped  int
		wantAlreadyRun int
	}{
		{
			name: "after step 1",
			crash: func(t *testing.T, f *os.File, _ *diskfile.RawMetadata, _ []byte) {
				if err := unix.Fremovexattr(int(f.Fd()), "user.swift.metadata_checksum"); err != nil {
					t.Fatal(err)
				}
			},
			wantRewrapped: 1,
		},
		{
			name: "after step 2",
			crash: func(t *testing.T, f *os.File, raw *diskfile.RawMetadata, newPickle []byte) {
				if _, err := diskfile.ReplacePickle(f, raw, newPickle); err != nil {
					t.Fatal(err)
				}
			},
			onActive:       true,
			wantAlreadyRun: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newNode(t)
			keys := rewraptest.NewKeys()
			old := keys.Rotate("p1")
			putObject(t, m, keys, "p1", "o", body(9), map[string]string{"X-Object-Meta-Color": "red"})
			active := keys.Rotate("p1")
			df, err := m.Object("d1", rewraptest.Partition("o"), 0, "AUTH_p1", "c", "o")
			if err != nil {
				t.Fatal(err)
			}
			name, err := diskfile.CurrentData(df.Dir())
			if err != nil || name == "" {
				t.Fatalf("current data: %q %v", name, err)
			}
			path := filepath.Join(df.Dir(), name)
			f, err := os.OpenFile(path, os.O_RDWR, 0) //nolint:gosec // G304: the test's own file
			if err != nil {
				t.Fatal(err)
			}
			raw, err := diskfile.ReadRawMetadata(f)
			if err != nil || raw.Checksum == nil {
				f.Close()
				t.Fatalf("metadata before the crash: %v (or no checksum)", err)
			}
			cm, err := sysmeta.Parse(raw.Values)
			if err != nil {
				f.Close()
				t.Fatal(err)
			}
			oldKey, _ := keys.KeyMaterial(context.Background(), "p1", old)
			newKey, _ := keys.KeyMaterial(context.Background(), "p1", active)
			if err := objcrypt.Rewrap(&cm.Metadata, objcrypt.ProjectKey{ID: old, Key: oldKey}, objcrypt.ProjectKey{ID: active, Key: newKey}, raw.Values["name"], nil); err != nil {
				f.Close()
				t.Fatal(err)
			}
			// the pickle the job writes: key and user metadata moved at once
			newPickle, err := resealPickle(raw.Values, &cm.Metadata, objcrypt.ProjectKey{ID: old, Key: oldKey}, objcrypt.ProjectKey{ID: active, Key: newKey}, nil)
			if err != nil {
				f.Close()
				t.Fatal(err)
			}
			tc.crash(t, f, raw, newPickle)
			f.Close()

			crashed := rawOf(t, path)
			wantKey, wantPickle := old, raw.Pickle()
			if tc.onActive {
				wantKey, wantPickle = active, newPickle
			}
			if crashed.Checksum != nil || !bytes.Equal(crashed.Pickle(), wantPickle) {
				t.Fatalf("not the crashed state: checksum %q, pickle equal %v", crashed.Checksum, bytes.Equal(crashed.Pickle(), wantPickle))
			}
			got, o := readObject(t, m, keys, "p1", "o")
			if !bytes.Equal(got, body(9)) || o.Metadata[sysmeta.Prefix+"Key-Id"] != wantKey || o.Metadata["X-Object-Meta-Color"] != "red" {
				t.Fatalf("after the crash reads %q on key %s with Color %q, want key %s", got, o.Metadata[sysmeta.Prefix+"Key-Id"], o.Metadata["X-Object-Meta-Color"], wantKey)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the crashed file is gone (quarantined?): %v", err)
			}
			if st := run(t, m, keys, func(o *Options) { o.DryRun = true }); st.Keys[KeyRef{"p1", wantKey}] != 1 || st.Failed != 0 {
				t.Fatalf("status after the crash: %+v", st)
			}

			s := run(t, m, keys, nil)
			if s.Rewrapped != tc.wantRewrapped || s.Already != tc.wantAlreadyRun || s.Checksums != 1 || s.Failed != 0 {
				t.Fatalf("repair run: %+v", s)
			}
			repaired := rawOf(t, path) // verifies the checksum it has
			if repaired.Checksum == nil || repaired.Values[sysmeta.Prefix+"Key-Id"] != active {
				t.Fatalf("after the repair run: checksum %q, key %s", repaired.Checksum, repaired.Values[sysmeta.Prefix+"Key-Id"])
			}
			keys.Destroy("p1", old)
			if got, o := readObject(t, m, keys, "p1", "o"); !bytes.Equal(got, body(9)) || o.Metadata["X-Object-Meta-Color"] != "red" {
				t.Fatalf("after the repair reads %q with %v", got, o.Metadata)
			}
			if s := run(t, m, keys, nil); s.Rewrapped != 0 || s.Checksums != 0 || s.Failed != 0 || s.Already != 1 {
				t.Fatalf("third run: %+v", s)
			}
		})
	}
}

// TestStrippedMetadataIsNotPlain: ciphertext whose crypto metadata was
// stripped from the xattrs is reported as a failure, not counted as a
// plaintext object: status would otherwise hide the
// key it still depends on. A real plaintext object stays plain.
func TestStrippedMetadataIsNotPlain(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	putObject(t, m, keys, "p1", "stripped", body(1), nil)
	if err := commitFile(m, "p1", "plain", func(ts diskfile.Timestamp) (string, map[string]string) {
		return ts.Internal() + ".data", map[string]string{"X-Timestamp": ts.Internal(), "Content-Length": "0", "Content-Type": "text/plain"}
	}); err != nil {
		t.Fatal(err)
	}
	df, err := m.Object("d1", rewraptest.Partition("stripped"), 0, "AUTH_p1", "c", "stripped")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := filepath.Glob(filepath.Join(df.Dir(), "*.data"))
	if len(data) != 1 {
		t.Fatalf("data files %v", data)
	}
	f, err := os.Open(data[0])
	if err != nil {
		t.Fatal(err)
	}
	raw, err := diskfile.ReadRawMetadata(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]string{}
	for k, v := range raw.Values {
		if !strings.HasPrefix(k, sysmeta.Prefix) {
			kept[k] = v
		}
	}
	p, err := pickle.Encode(kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(data[0], "user.swift.metadata", p, 0); err != nil {
		t.Fatal(err)
	}
	_ = unix.Removexattr(data[0], "user.swift.metadata_checksum")
	s := run(t, m, keys, func(o *Options) { o.DryRun = true })
	if s.Plain != 1 || s.Failed != 1 || s.Reasons["objcrypt data without crypto metadata"] != 1 {
		t.Fatalf("plain %d, failed %d %v; want one plain object and one failure", s.Plain, s.Failed, s.Reasons)
	}
	// both were told apart by their first bytes, and the summary says so
	if s.IO.DataReads != 2 {
		t.Fatalf("data reads %d, want 2", s.IO.DataReads)
	}
}

// TestStateFileErrorStopsEveryWorker: a state file that cannot be written
// stops the run with that error (not as an interruption), and the other
// workers stop at their next object instead of walking on; the checksums
// of what was rewrapped are restored all the same.
func TestStateFileErrorStopsEveryWorker(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	const n = 300
	for i := range n {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
	}
	keys.Rotate("p1")
	// its folder does not exist: the first save after a suffix fails
	stateFile := filepath.Join(t.TempDir(), "missing", "state.json")
	s, err := Run(context.Background(), Options{Devices: m.Devices, Project: "p1", Keys: keys, ChecksumDelay: time.Millisecond,
		StateFile: stateFile, Workers: 3})
	if err == nil || !strings.Contains(err.Error(), "writing state file") || s.Interrupted {
		t.Fatalf("%v %+v", err, s)
	}
	// a few objects per worker at most (a partition holds about 37)
	if s.Scanned == 0 || s.Scanned > 4*3 || s.Failed != 0 {
		t.Fatalf("the workers went on after the error: %+v", s)
	}
	if s.Checksums != s.Rewrapped {
		t.Fatalf("checksums restored %d of %d rewrapped", s.Checksums, s.Rewrapped)
	}
}
