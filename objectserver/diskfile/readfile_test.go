package diskfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadFile: ReadAt reads as os.File.ReadAt does (io.EOF past the end,
// an error for a negative offset); after Close every read and a second
// Close fail with os.ErrClosed, never reaching the descriptor number.
func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != path {
		t.Fatalf("Name %q", f.Name())
	}
	b := make([]byte, 100)
	if n, err := f.ReadAt(b, 9950); n != 50 || !errors.Is(err, io.EOF) || !bytes.Equal(b[:n], data[9950:]) {
		t.Fatalf("read across the end: %d, %v", n, err)
	}
	if n, err := f.ReadAt(b, 10); n != 100 || err != nil || !bytes.Equal(b, data[10:110]) {
		t.Fatalf("read inside: %d, %v", n, err)
	}
	if _, err := f.ReadAt(b, -1); err == nil {
		t.Fatal("negative offset read")
	}
	if _, err := openReadFile(path + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a missing file: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// a file opened now may well get the closed descriptor's number
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if n, err := f.ReadAt(b, 0); n != 0 || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after Close: %d, %v", n, err)
	}
	if err := f.withFd("read", func(int) error { return nil }); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("descriptor use after Close: %v", err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestReadFileConcurrentClose: reads on several goroutines while the file
// is closed each read the right bytes or fail with os.ErrClosed (run with
// -race).
func TestReadFileConcurrentClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("abcdefgh"), 4096)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			b := make([]byte, 4096)
			for i := 0; ; i++ {
				off := int64((g*7 + i) % 8 * 4096)
				n, err := f.ReadAt(b, off)
				if errors.Is(err, os.ErrClosed) {
					return
				}
				if err != nil || n != len(b) || !bytes.Equal(b, data[off:off+4096]) {
					t.Errorf("read at %d: %d, %v", off, n, err)
					return
				}
			}
		})
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

// TestReadFileLeakClosed: a ReadFile nobody closed has its descriptor
// closed once it is unreachable, as an os.File's is.
func TestReadFileLeakClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	// opened and dropped: nothing refers to the ReadFile afterwards
	fd, ino := func() (int, uint64) {
		f, err := openReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Fstat(f.fd, &st); err != nil {
			t.Fatal(err)
		}
		return f.fd, st.Ino
	}()
	for range 100 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		// closed, or reused by another file since
		if err := unix.Fstat(fd, &st); err != nil || st.Ino != ino {
			return
		}
	}
	t.Fatalf("descriptor %d of an unreachable ReadFile still open", fd)
}
