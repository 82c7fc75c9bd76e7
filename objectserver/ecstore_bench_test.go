package objectserver

import (
	"syscall"
	"testing"
	"time"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/internal/etag"
)

// BenchmarkECLayout is the CPU cost of the ec1 layout itself (issue 19):
// a 64 MiB fragment archive (256 KiB fragments: Swift's 1 MiB EC segment
// over 4 data fragments) stored as this server stores it, beside a plain
// copy, one goroutine, no disk and no HTTP. The legs:
//
//	copy              the archive copied into a buffer (the floor of any store)
//	copy+MD5          and its MD5 (Swift's ETag: what a Python node does per byte)
//	ec1-write         objcrypt's ECWriter: AES-256-CTR, HMAC-SHA256, CRC per fragment
//	ec1-write+ETags   and the two MD5s the server keeps (received and stored bytes,
//	                  one two-lane pass: etag.Sums): encryptECBody's work per byte
//	ec1-read          objcrypt's ECReader: every fragment authenticated and decrypted
//
// cpu-ns/B is the process's CPU (getrusage) per byte of archive: on a
// loaded machine it moves less than MB/s, which is wall-clock time.
func BenchmarkECLayout(b *testing.B) {
	const size = 64 << 20
	run := func(l *objcrypt.BenchLoop, err error) func(*testing.B) {
		return func(b *testing.B) {
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(l.Bytes)
			b.ReportAllocs()
			cpu0 := selfCPU()
			for b.Loop() {
				if err := l.Do(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((selfCPU()-cpu0).Nanoseconds())/float64(b.N)/float64(l.Bytes), "cpu-ns/B")
		}
	}
	b.Run("copy", run(objcrypt.ECCopyBench(size, nil), nil))
	b.Run("copy+MD5", run(objcrypt.ECCopyBench(size, etag.New(false)), nil))
	b.Run("ec1-write", run(objcrypt.ECWriteBench(size, nil)))
	b.Run("ec1-write+ETags", run(objcrypt.ECWriteBench(size, etag.New(true))))
	b.Run("ec1-read", run(objcrypt.ECReadBench(size)))
}

// selfCPU is the user+system CPU this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
