package rewrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// names lists a hash directory's files, sorted; errors give nil (it is
// called from the job's goroutines, where a test may not stop).
func names(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func withExt(list []string, ext string) []string {
	var out []string
	for _, n := range list {
		if strings.HasSuffix(n, ext) {
			out = append(out, n)
		}
	}
	return out
}

// rawOf reads a file's stored metadata (checksum verified when present).
func rawOf(t *testing.T, path string) *diskfile.RawMetadata {
	t.Helper()
	f, err := os.Open(path) //nolint:gosec // G304: a file of the test's own node
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

// raceEnv is one object of the race test: its hash directory, the .data
// file the job is about to rewrite and the key it was on.
type raceEnv struct {
	m                               *diskfile.Manager
	keys                            *rewraptest.Keys
	dir, oldData, oldKey, activeKey string
}

// TestClientWriteAtTheInstantOfTheRewrite lands a PUT, a POST or a DELETE
// of the very object the job is rewriting at the most dangerous instants:
// with the job holding the partition lock and the .data file open, just
// before it replaces the metadata (steps 1 and 2) and just before it
// restores the checksum (step 3). The client's write is whole on disk (its
// file renamed in, the files it made obsolete unlinked) before the job
// goes on; only its suffix invalidation waits for the lock, as it would
// beside a real object server. The newest write must win: the new content
// and metadata, the POSTed metadata over the rewrapped .data, or the
// tombstone with no .data brought back.
func TestClientWriteAtTheInstantOfTheRewrite(t *testing.T) {
	ops := []struct {
		name string
		do   func(e *raceEnv) error
		// landed: the client's write is in place and what it made obsolete
		// is gone (its Commit then waits for the job's partition lock)
		landed    func(e *raceEnv, files []string) bool
		checksums int // restored by the job: none on a file unlinked meanwhile
		check     func(t *testing.T, e *raceEnv, files []string)
	}{
		{
			name: "PUT",
			do: func(e *raceEnv) error {
				return rewraptest.PutObject(e.m, e.keys, "p1", "o", []byte("new content"), map[string]string{"X-Object-Meta-Color": "blue"})
			},
			landed: func(e *raceEnv, files []string) bool {
				d := withExt(files, ".data")
				return len(d) == 1 && d[0] != e.oldData
			},
			check: func(t *testing.T, e *raceEnv, files []string) {
				d := withExt(files, ".data")
				if len(d) != 1 || d[0] == e.oldData || len(files) != 1 {
					t.Fatalf("files %v: want only the new .data", files)
				}
				raw := rawOf(t, filepath.Join(e.dir, d[0]))
				if raw.Checksum == nil {
					t.Error("the new .data lost its checksum")
				}
				if id := raw.Values[sysmeta.Prefix+"Key-Id"]; id != e.activeKey {
					t.Errorf("the new .data is on key %s, want %s", id, e.activeKey)
				}
				got, o := readObject(t, e.m, e.keys, "p1", "o")
				if !bytes.Equal(got, []byte("new content")) || o.Metadata["X-Object-Meta-Color"] != "blue" {
					t.Errorf("reads %q with Color %q, want the PUT's", got, o.Metadata["X-Object-Meta-Color"])
				}
			},
		},
		{
			name: "POST",
			do: func(e *raceEnv) error {
				return postObject(e.m, e.keys, "p1", "o", map[string]string{"X-Object-Meta-Color": "green"})
			},
			landed:    func(_ *raceEnv, files []string) bool { return len(withExt(files, ".meta")) == 1 },
			checksums: 1,
			check: func(t *testing.T, e *raceEnv, files []string) {
				if d := withExt(files, ".data"); len(files) != 2 || len(withExt(files, ".meta")) != 1 || len(d) != 1 || d[0] != e.oldData {
					t.Fatalf("files %v: want the rewrapped .data and the POST's .meta", files)
				}
				raw := rawOf(t, filepath.Join(e.dir, e.oldData))
				if raw.Checksum == nil {
					t.Error("the .data has no checksum")
				}
				if id := raw.Values[sysmeta.Prefix+"Key-Id"]; id != e.activeKey {
					t.Errorf("the .data is on key %s, want %s", id, e.activeKey)
				}
				got, o := readObject(t, e.m, e.keys, "p1", "o")
				if !bytes.Equal(got, body(7)) {
					t.Errorf("reads %q, want the original content", got)
				}
				if o.Metadata["X-Object-Meta-Color"] != "green" || o.MetaMetadata[sysmeta.TransientMetaKeyID] != e.activeKey {
					t.Errorf("the POSTed metadata is lost: %v", o.Metadata)
				}
			},
		},
		{
			name: "DELETE",
			do:   func(e *raceEnv) error { return deleteObject(e.m, "p1", "o") },
			landed: func(_ *raceEnv, files []string) bool {
				return len(withExt(files, ".ts")) == 1 && len(withExt(files, ".data")) == 0
			},
			check: func(t *testing.T, e *raceEnv, files []string) {
				if len(files) != 1 || len(withExt(files, ".ts")) != 1 {
					t.Fatalf("files %v: want only the tombstone", files)
				}
				df, err := e.m.Object("d1", rewraptest.Partition("o"), 0, "AUTH_p1", "c", "o")
				if err != nil {
					t.Fatal(err)
				}
				o, err := df.Open()
				var nf *diskfile.NotFoundError
				if !errors.As(err, &nf) || nf.Tombstone == nil {
					if o != nil {
						o.Close()
					}
					t.Fatalf("the deleted object opens: %v", err)
				}
			},
		},
	}
	points := []struct {
		name string
		hook *func(string)
	}{
		{"before replacing the metadata", &beforeReplace},
		{"before restoring the checksum", &beforeChecksum},
	}
	for _, pt := range points {
		for _, op := range ops {
			t.Run(op.name+" "+pt.name, func(t *testing.T) {
				m := newNode(t)
				keys := rewraptest.NewKeys()
				e := &raceEnv{m: m, keys: keys, oldKey: keys.Rotate("p1")}
				putObject(t, m, keys, "p1", "o", body(7), map[string]string{"X-Object-Meta-Color": "red"})
				e.activeKey = keys.Rotate("p1")
				df, err := m.Object("d1", rewraptest.Partition("o"), 0, "AUTH_p1", "c", "o")
				if err != nil {
					t.Fatal(err)
				}
				e.dir = df.Dir()
				if e.oldData, err = diskfile.CurrentData(e.dir); err != nil || e.oldData == "" {
					t.Fatalf("current data: %q %v", e.oldData, err)
				}

				var once sync.Once
				var fired bool
				var hookErr error
				opDone := make(chan error, 1)
				*pt.hook = func(path string) {
					if filepath.Base(path) != e.oldData {
						return
					}
					once.Do(func() {
						go func() { opDone <- op.do(e) }()
						for deadline := time.Now().Add(20 * time.Second); !op.landed(e, names(e.dir)); time.Sleep(time.Millisecond) {
							if time.Now().After(deadline) {
								hookErr = fmt.Errorf("the %s never landed: %v", op.name, names(e.dir))
								return
							}
						}
						fired = true
					})
				}
				t.Cleanup(func() { *pt.hook = nil })
				s := run(t, m, keys, nil)
				*pt.hook = nil
				select {
				case err := <-opDone:
					if err != nil {
						t.Fatalf("the %s: %v", op.name, err)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("the %s never finished", op.name)
				}
				if hookErr != nil || !fired {
					t.Fatalf("hook fired %v: %v", fired, hookErr)
				}
				if s.Failed != 0 || s.Rewrapped != 1 || s.Checksums != op.checksums {
					t.Fatalf("summary: %+v (want 1 rewrapped, %d checksums)", s, op.checksums)
				}
				// only the active key is left: what reads, reads on it
				keys.Destroy("p1", e.oldKey)
				files := names(e.dir)
				op.check(t, e, files)

				// the next runs change nothing and bring nothing back
				if s := run(t, m, keys, nil); s.Failed != 0 || s.Rewrapped != 0 || s.Checksums != 0 {
					t.Errorf("second run: %+v", s)
				}
				if st := run(t, m, keys, func(o *Options) { o.DryRun = true }); st.Objects(true) != 0 {
					t.Errorf("status: %+v", st)
				}
				if after := names(e.dir); fmt.Sprint(after) != fmt.Sprint(files) {
					t.Errorf("the second run changed the files: %v, then %v", files, after)
				}
			})
		}
	}
}

// partitionHashes computes every partition's suffix hashes as REPLICATE
// does (GetHashes, under the partition lock); with recalculate, every
// suffix is hashed again from the directory listings, as for REPLICATE with
// suffixes, instead of coming from hashes.pkl.
func partitionHashes(m *diskfile.Manager, recalculate bool) (map[string]string, error) {
	all := map[string]string{}
	for p := range 8 {
		part := fmt.Sprint(p)
		var suffixes []string
		if recalculate {
			var err error
			if suffixes, err = readDir(filepath.Join(m.Devices, "d1", "objects", part)); err != nil {
				return nil, err
			}
		}
		h, err := m.GetHashes(context.Background(), "d1", part, 0, suffixes)
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", part, err)
		}
		for k, v := range h {
			all[part+"/"+k] = v
		}
	}
	return all, nil
}

// TestSuffixHashesUnchangedByRewrap: the suffix hashes a replicator
// compares (REPLICATE) are the same before, throughout and after a run,
// whether read from hashes.pkl or recomputed, so rewrapping never makes
// replicas look different (and so never causes replication). They are
// taken concurrently with the job, which is rate-limited so that some are
// taken with part of the objects rewrapped and the rest not.
func TestSuffixHashesUnchangedByRewrap(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	keys.Rotate("p2")
	const n = 60
	for i := range n {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
		if i%6 == 0 { // .meta files count in the hashes too
			if err := postObject(m, keys, "p1", fmt.Sprint("o", i), map[string]string{"X-Object-Meta-Posted": "yes"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := deleteObject(m, "p1", "o1"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		putObject(t, m, keys, "p2", fmt.Sprint("other", i), body(i), nil)
	}
	keys.Rotate("p1")
	before, err := partitionHashes(m, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < 8 {
		t.Fatalf("only %d suffixes: %v", len(before), before)
	}

	var rewrapped atomic.Int64
	beforeReplace = func(p string) {
		if strings.HasSuffix(p, ".data") { // the .meta files are resealed too
			rewrapped.Add(1)
		}
	}
	t.Cleanup(func() { beforeReplace = nil })
	type observation struct {
		rewrapped int64
		recalc    bool
	}
	var obs []observation
	stop := make(chan struct{})
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for {
			for _, recalc := range []bool{false, true} {
				select {
				case <-stop:
					return
				default:
				}
				k := rewrapped.Load()
				h, err := partitionHashes(m, recalc)
				if err != nil {
					t.Errorf("hashes during the run: %v", err)
					return
				}
				if fmt.Sprint(h) != fmt.Sprint(before) {
					t.Errorf("hashes changed during the run (after %d rewraps, recalculated %v):\n%v\n%v", k, recalc, before, h)
					return
				}
				obs = append(obs, observation{k, recalc})
			}
		}
	}()
	s := run(t, m, keys, func(o *Options) {
		o.Rate, o.Workers, o.ChecksumDelay = 40, 2, 150*time.Millisecond
	})
	close(stop)
	<-observed
	if s.Rewrapped != n-1 || s.Failed != 0 || rewrapped.Load() != n-1 {
		t.Fatalf("run: %+v", s)
	}
	midRun := 0
	for _, o := range obs {
		if o.recalc && o.rewrapped > 0 && o.rewrapped < n-1 {
			midRun++
		}
	}
	if midRun == 0 {
		t.Fatalf("no recomputed hashes taken mid-run: %+v", obs)
	}
	for _, recalc := range []bool{false, true} {
		after, err := partitionHashes(m, recalc)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("hashes changed by the run (recalculated %v):\n%v\n%v", recalc, before, after)
		}
	}
	t.Logf("%d observations, %d recomputed mid-run", len(obs), midRun)
}
