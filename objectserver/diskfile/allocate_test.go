package diskfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseReserve(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Reserve
		wantErr bool
	}{
		{in: "1%", want: Reserve{Value: 1, Percent: true}},
		{in: " 0.5% ", want: Reserve{Value: 0.5, Percent: true}},
		{in: "0", want: Reserve{}},
		{in: "0%", want: Reserve{Percent: true}},
		{in: "1073741824", want: Reserve{Value: 1 << 30}},
		{in: "100%", want: Reserve{Value: 100, Percent: true}},
		{in: "101%", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1%", wantErr: true},
		{in: "1.5", wantErr: true}, // bytes are whole, as Swift's int()
		{in: "ten", wantErr: true},
		{in: "%", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := ParseReserve(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseReserve(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestReserveRefuses: Swift's rule, free space after the allocation must
// be above the reserve, in bytes or as a share of the device.
func TestReserveRefuses(t *testing.T) {
	// 1,000 blocks of 4 KiB, 100 of them free: 400 KiB, 10 %.
	st := &unix.Statfs_t{Frsize: 4096, Bsize: 4096, Blocks: 1000, Bavail: 100}
	for _, tc := range []struct {
		reserve Reserve
		size    int64
		want    bool
	}{
		{Reserve{}, 1 << 40, false}, // no reserve: fallocate itself finds ENOSPC
		{Reserve{Value: 5, Percent: true}, 4096, false},
		{Reserve{Value: 5, Percent: true}, 50 * 4096, true},  // 5 % left: not above
		{Reserve{Value: 5, Percent: true}, 49 * 4096, false}, // 5.1 % left
		{Reserve{Value: 10, Percent: true}, 0, true},         // exactly the reserve is not enough
		{Reserve{Value: 4096}, 99 * 4096, true},
		{Reserve{Value: 4095}, 99 * 4096, false},
	} {
		if got := tc.reserve.refuses(st, tc.size); got != tc.want {
			t.Errorf("reserve %s, %d bytes: refuses %v, want %v", tc.reserve, tc.size, got, tc.want)
		}
	}
}

// TestWriterAllocate: a PUT's length is allocated before its body is
// written, without changing the file's size; a reserve the device cannot
// keep refuses the write (ErrNoSpace: 507) and leaves nothing behind;
// disable_fallocate, or no length, allocates nothing.
func TestWriterAllocate(t *testing.T) {
	const size = 1 << 20
	for _, tc := range []struct {
		name      string
		reserve   Reserve
		disable   bool
		size      int64
		wantErr   error
		wantAlloc bool
	}{
		{name: "allocated", reserve: DefaultReserve, size: size, wantAlloc: true},
		{name: "no reserve", size: size, wantAlloc: true},
		{name: "reserve refuses", reserve: Reserve{Value: 100, Percent: true}, size: size, wantErr: ErrNoSpace},
		{name: "reserve in bytes refuses", reserve: Reserve{Value: 1 << 62}, size: size, wantErr: ErrNoSpace},
		{name: "disable_fallocate", reserve: Reserve{Value: 100, Percent: true}, disable: true, size: size},
		{name: "unknown length", reserve: Reserve{Value: 100, Percent: true}, size: -1},
	} {
		for _, mode := range writerModes {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				m := newManager(t)
				m.NamedTemp = mode.namedTemp
				m.FallocateReserve, m.DisableFallocate = tc.reserve, tc.disable
				d, err := m.Object("d1", "7", 0, "a", "c", "o")
				if err != nil {
					t.Fatal(err)
				}
				w, err := d.Create()
				if err != nil {
					t.Fatal(err)
				}
				err = w.Allocate(tc.size)
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("Allocate(%d): %v, want %v", tc.size, err, tc.wantErr)
				}
				if err != nil {
					w.Abort()
					if got := dirNames(t, filepath.Join(m.Devices, "d1", "tmp")); len(got) != 0 {
						t.Fatalf("tmp holds %v after the refused write", got)
					}
					if got := dirNames(t, d.Dir()); len(got) != 0 {
						t.Fatalf("the object's directory holds %v after the refused write", got)
					}
					return
				}
				var st syscall.Stat_t
				if err := syscall.Fstat(int(w.File().Fd()), &st); err != nil {
					t.Fatal(err)
				}
				if st.Size != 0 {
					t.Fatalf("size %d after Allocate, want 0 (FALLOC_FL_KEEP_SIZE)", st.Size)
				}
				allocated := st.Blocks*512 >= size
				if allocated != tc.wantAlloc {
					t.Fatalf("%d bytes allocated, want at least %d: %v", st.Blocks*512, size, tc.wantAlloc)
				}
				if _, err := w.File().Write(make([]byte, size)); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(context.Background(), "1700000000.00000.data", map[string]string{"name": "/a/c/o"}); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(filepath.Join(d.Dir(), "1700000000.00000.data"))
				if err != nil || fi.Size() != size {
					t.Fatalf("the committed file: %v, %v; want %d bytes", fi, err, size)
				}
			})
		}
	}
}
