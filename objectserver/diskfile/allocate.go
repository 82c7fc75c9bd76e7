package diskfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Reserve is Swift's fallocate_reserve: how much of a device must stay
// free after a new file's space is allocated, in bytes or, with Percent,
// as a percentage of the device's size. A PUT that would leave less is
// refused with 507 before its body is read, so that a nearly full device
// sends the proxy to another node instead of filling to the last block
// (where the device's own updates and tombstones could no longer be
// written). The zero Reserve checks nothing.
type Reserve struct {
	Value   float64
	Percent bool
}

// DefaultReserve is Swift's default fallocate_reserve, 1%.
var DefaultReserve = Reserve{Value: 1, Percent: true}

// ParseReserve reads fallocate_reserve as Swift does: a number of bytes
// ("1073741824") or a percentage ("1%", "0.5%").
func ParseReserve(s string) (Reserve, error) {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 100 {
			return Reserve{}, fmt.Errorf("%q: want a number of bytes or a percentage from 0%% to 100%%", s)
		}
		return Reserve{Value: f, Percent: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return Reserve{}, fmt.Errorf("%q: want a number of bytes or a percentage from 0%% to 100%%", s)
	}
	return Reserve{Value: float64(n)}, nil
}

// String is the value as fallocate_reserve is written.
func (r Reserve) String() string {
	v := strconv.FormatFloat(r.Value, 'f', -1, 64)
	if r.Percent {
		return v + "%"
	}
	return v
}

// refuses reports whether allocating size bytes on a file system with
// these statistics would leave no more than the reserve free, as Swift's
// fallocate: the free bytes after the allocation, or their share of the
// whole device, must be above the reserve.
func (r Reserve) refuses(st *unix.Statfs_t, size int64) bool {
	if r.Value == 0 {
		return false
	}
	// Block counts are in fragment-size units (statvfs's f_frsize, which
	// Swift multiplies them by); Linux sets Frsize, Bsize is the fallback.
	unit := float64(st.Frsize)
	if unit == 0 {
		unit = float64(st.Bsize)
	}
	free := unit*float64(st.Bavail) - float64(size)
	if r.Percent {
		total := unit * float64(st.Blocks)
		if total <= 0 {
			return true
		}
		free = free / total * 100
	}
	return free <= r.Value
}

// Allocate reserves size bytes for the file being written, before any is
// written, as Swift's DiskFileWriter.open does with the request's length:
// the device's reserve is checked (ErrNoSpace, a 507, when the file would
// eat into it), then the space is allocated without changing the file's
// size (FALLOC_FL_KEEP_SIZE), so that the file gets its blocks in one
// extent rather than as the page cache is written back, and a full device
// is found now rather than at the fsync. A size of zero or less (a body
// of unknown length, a tombstone) allocates nothing and checks nothing, as
// in Swift. File systems without fallocate are fine: the data is written
// as before.
//
// size must not be more than will be written: blocks allocated past the
// end of a KEEP_SIZE file stay allocated.
func (w *Writer) Allocate(size int64) error {
	if size <= 0 || w.d.m.DisableFallocate {
		return nil
	}
	fd := int(w.f.Fd())
	if w.d.m.FallocateReserve.Value != 0 {
		var st unix.Statfs_t
		if err := unix.Fstatfs(fd, &st); err != nil {
			return fsErr("reading the device's free space", err)
		}
		if w.d.m.FallocateReserve.refuses(&st, size) {
			return fmt.Errorf("%w: %d bytes would leave less than fallocate_reserve = %s free", ErrNoSpace, size, w.d.m.FallocateReserve)
		}
	}
	err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil // no fallocate here (Swift ignores these too)
	}
	if err != nil {
		return fsErr("allocating space", err)
	}
	return nil
}
