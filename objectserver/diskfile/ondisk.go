package diskfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A hash directory's files, as Swift's diskfile decides which count.

// fileInfo is one file of a hash directory.
type fileInfo struct {
	name  string
	ext   string
	ts    Timestamp
	ctype *Timestamp // .meta with a content-type timestamp
	// frag and durable are an EC fragment archive's (frag -1 otherwise).
	frag    int
	durable bool
}

// state is the outcome of looking at a hash directory, as Swift's
// get_ondisk_files decides it.
type state struct {
	data, meta, ctype, ts *fileInfo
	obsolete              []string
	files                 int // files that stay
	// EC policies only (ecdisk.go): the frag sets, newest first, down to
	// the durable one; the durable timestamp; the files Swift's
	// possible_reclaim would remove once older than reclaim_age.
	fragSets  [][]fileInfo
	durableTS *Timestamp
	reclaim   []fileInfo
}

func parseFile(name string) (fileInfo, bool) {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	fi := fileInfo{name: name, ext: ext, frag: -1}
	var err error
	switch ext {
	case ".data", ".ts":
		fi.ts, err = ParseTimestamp(base)
	case ".meta":
		fi.ts, fi.ctype, err = parseMetaName(base)
	default:
		return fi, false
	}
	return fi, err == nil
}

// gather decides which files of a directory count (newest .data or .ts,
// newest .meta and the .meta with the newest content type) and which are
// obsolete, following Swift's replication policy rules.
func gather(names []string) state {
	var st state
	var datas, tss, metas []fileInfo
	for _, n := range names {
		fi, ok := parseFile(n)
		if !ok {
			st.files++ // unexpected files stay (rsync temp files, ...)
			continue
		}
		switch fi.ext {
		case ".data":
			datas = append(datas, fi)
		case ".ts":
			tss = append(tss, fi)
		case ".meta":
			metas = append(metas, fi)
		}
	}
	newestFirst(datas)
	newestFirst(tss)
	newestFirst(metas)
	if len(tss) > 0 {
		datas = st.keepNewer(datas, tss[0].ts)
		metas = st.keepNewer(metas, tss[0].ts)
		st.drop(tss[1:])
		tss = tss[:1]
	}
	if len(metas) > 1 {
		metas = st.keepMetas(metas)
	}
	if len(datas) > 0 {
		st.drop(datas[1:])
		datas = datas[:1]
		tss = st.keepNewer(tss, datas[0].ts)
		metas = st.keepNewer(metas, datas[0].ts)
		st.data = &datas[0]
		if len(metas) > 0 {
			st.meta = &metas[0]
			last := metas[len(metas)-1]
			if last.ctype != nil && last.ctype.After(st.data.ts) {
				st.ctype = &last
			}
		}
	} else if len(tss) > 0 {
		st.ts = &tss[0]
	}
	st.files += len(datas) + len(tss) + len(metas)
	return st
}

func newestFirst(s []fileInfo) {
	sort.Slice(s, func(i, j int) bool { return s[i].ts.After(s[j].ts) })
}

// drop marks files obsolete.
func (st *state) drop(fs []fileInfo) {
	for _, f := range fs {
		st.obsolete = append(st.obsolete, f.name)
	}
}

// keepNewer keeps the files newer than t and marks the others obsolete.
func (st *state) keepNewer(fs []fileInfo, t Timestamp) []fileInfo {
	var keep []fileInfo
	for _, f := range fs {
		if f.ts.Compare(t) > 0 {
			keep = append(keep, f)
		} else {
			st.obsolete = append(st.obsolete, f.name)
		}
	}
	return keep
}

// keepMetas keeps, of several .meta files (newest first), the newest and
// the one with the newest content type when that is another; the others
// are obsolete.
func (st *state) keepMetas(metas []fileInfo) []fileInfo {
	rest := append([]fileInfo(nil), metas[1:]...)
	sort.SliceStable(rest, func(i, j int) bool { return ctypeOf(rest[i]).After(ctypeOf(rest[j])) })
	retain := 1
	if ctypeOf(rest[0]).After(ctypeOf(metas[0])) {
		if rest[0].ts.Compare(metas[0].ts) == 0 {
			metas[0], rest[0] = rest[0], metas[0]
		} else {
			retain = 2
		}
	}
	all := append([]fileInfo{metas[0]}, rest...)
	st.drop(all[retain:])
	return all[:retain]
}

func ctypeOf(f fileInfo) Timestamp {
	if f.ctype == nil {
		return Timestamp{}
	}
	return *f.ctype
}

func listDir(dir string) ([]string, error) {
	names, err := readDirNames(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	return names, err
}

// dirBufPool holds getdents buffers (os.File's size).
var dirBufPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// readDirNames lists dir as os.File.Readdirnames(-1) does (without "."
// and ".."), with open(2), getdents(2) and close(2) on a bare descriptor:
// every GET, HEAD and PUT lists a hash directory, and an os.File costs an
// fcntl(2) and three allocations besides.
func readDirNames(dir string) ([]string, error) {
	fd, err := openRaw(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(fd) }()
	return readDirFd(fd, dir)
}

// fsyncFd is fsync(2), retried on EINTR as os.File.Sync does; like the
// directory syncs of Swift's renamer, its failure is not an error.
func fsyncFd(fd int) {
	for {
		if err := unix.Fsync(fd); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// readDirFd lists the open directory fd (named dir in errors).
func readDirFd(fd int, dir string) ([]string, error) {
	bp := dirBufPool.Get().(*[]byte)
	defer dirBufPool.Put(bp)
	buf := *bp
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return names, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		for b := buf[:n]; len(b) > 0; {
			consumed, _, more := unix.ParseDirent(b, -1, names)
			names = more
			if consumed <= 0 {
				break
			}
			b = b[consumed:]
		}
	}
}

// commitWindow is Swift's commit_window default: a non-durable fragment
// younger than this may still be waiting for its commit, and is not
// reclaimed.
const commitWindow = 60 * time.Second

// cleanupPolicy removes obsolete files (and a reclaimable tombstone) from
// dir, an object of policy, and returns what remains, as Swift's
// cleanup_ondisk_files does.
func (m *Manager) cleanupPolicy(dir string, policy int) (state, error) {
	names, err := listDir(dir)
	if err != nil {
		return state{}, err
	}
	return m.cleanupNames(dir, names, policy)
}

// gatherFor is gather, or gatherEC for an EC policy.
func (m *Manager) gatherFor(names []string, policy int, opts *ECOptions) state {
	n := m.ECFragments[policy]
	if n == 0 {
		return gather(names)
	}
	q := ecQuery{nfrags: n}
	if opts != nil {
		q.fragIndex, q.prefs, q.hasPrefs = opts.FragIndex, opts.Prefs, opts.HasPrefs
	}
	return gatherEC(names, q)
}

// cleanupNames is cleanup with the directory already listed.
func (m *Manager) cleanupNames(dir string, names []string, policy int) (state, error) {
	st := m.gatherFor(names, policy, nil)
	if st.ts != nil && m.ReclaimAge > 0 && time.Since(st.ts.ts.Time()) > m.ReclaimAge {
		st.obsolete = append(st.obsolete, st.ts.name)
		st.ts = nil
		st.files--
	}
	for _, f := range st.reclaim {
		if m.ReclaimAge <= 0 || time.Since(f.ts.Time()) <= m.ReclaimAge {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, f.name)); f.durable || (err == nil && time.Since(fi.ModTime()) > commitWindow) {
			st.obsolete = append(st.obsolete, f.name)
			st.files--
		}
	}
	for _, n := range st.obsolete {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("diskfile: cleanup: %w", err)
		}
	}
	if st.files == 0 && len(names) > 0 {
		_ = os.Remove(dir) // fails harmlessly when something was added meanwhile
	}
	return st, nil
}
