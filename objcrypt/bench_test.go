package objcrypt

import (
	"crypto/md5"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The loops are the package's benchmark entry points (bench.go), shared
// with make bench's speed report (tools/speedreport crypto).

// runLoop times l's operations, allocations per operation and the
// process's CPU per byte reported: on a shared machine the wall clock
// moves with the others' load, CPU time much less, and it counts the work
// a Writer hands to other cores.
func runLoop(b *testing.B, l *BenchLoop, err error) {
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(l.Bytes)
	b.ReportAllocs()
	cpu0, n := processCPU(), 0
	for b.Loop() {
		if err := l.Do(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	if cpu := processCPU() - cpu0; cpu > 0 && n > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n)/float64(l.Bytes), "cpu-ns/B")
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchMD5 is crypto/md5 over 64 KiB chunks: the object server's ETag
// hashes, beside which an encrypting PUT is measured.
func benchMD5(b *testing.B) {
	h := md5.New()
	buf := make([]byte, BenchChunk)
	b.SetBytes(BenchChunk)
	for b.Loop() {
		h.Write(buf)
	}
}

// The raw primitives the targets are stated against, measured on the same
// 64 KiB chunks in the same run as the pipelines.
func BenchmarkPrimitives(b *testing.B) {
	std := func(keyLen int, decrypt bool) func(*testing.B) {
		return func(b *testing.B) {
			l, err := StdCBCBench(keyLen, decrypt)
			runLoop(b, l, err)
		}
	}
	ours := func(decrypt bool) func(*testing.B) {
		return func(b *testing.B) {
			l, err := CBCBench(decrypt)
			runLoop(b, l, err)
		}
	}
	b.Run("stdlib-AES128-CBC-encrypt", std(16, false))
	b.Run("stdlib-AES128-CBC-decrypt", std(16, true))
	b.Run("stdlib-AES256-CBC-encrypt", std(32, false))
	b.Run("objcrypt-AES128-CBC-encrypt", ours(false))
	for _, lanes := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("objcrypt-AES128-CBC-encrypt-%dlanes", lanes), func(b *testing.B) {
			l, err := CBCLanesBench(lanes)
			runLoop(b, l, err)
		})
	}
	b.Run("objcrypt-AES128-CBC-decrypt", ours(true))
	b.Run("MD5", benchMD5)
	b.Run("HMAC-SHA256", func(b *testing.B) { runLoop(b, HMACBench(), nil) })
	b.Run("segment-MACs-2-lanes", func(b *testing.B) {
		l, err := MACFramesBench()
		runLoop(b, l, err)
	})
}

// BenchmarkOpenFrames is the Reader's verify-then-decrypt of two full
// 64 KiB segments per op, one at a time and as a pair (both MACs at once
// where the SHA-NI lanes are).
func BenchmarkOpenFrames(b *testing.B) {
	for _, c := range []struct {
		name string
		pair bool
	}{{"one-at-a-time", false}, {"pair", true}} {
		b.Run(c.name, func(b *testing.B) {
			l, err := OpenFramesBench(c.pair)
			runLoop(b, l, err)
		})
	}
}

// benchEncrypt measures the Writer in steady state: one object that keeps
// growing, 64 KiB per op, with o's observer (the object server's, hashing
// the plaintext for Swift's ETag, is a crypto/md5 of the plaintext; with
// stored_etag it hashes both streams in one pass, measured in
// objectserver/internal/etag).
func benchEncrypt(b *testing.B, o WriterOptions) {
	chunk := make([]byte, BenchChunk) // content does not matter without compression
	if len(o.Decorators) > 0 {
		chunk = payload(BenchChunk, 1)
	}
	l, err := EncryptBench(chunk, o)
	runLoop(b, l, err)
}

func BenchmarkEncrypt(b *testing.B) {
	b.Run("AES128+HMAC", func(b *testing.B) { benchEncrypt(b, WriterOptions{}) })
	b.Run("AES128+HMAC+MD5", func(b *testing.B) { benchEncrypt(b, WriterOptions{Observer: newMD5Observer(false)}) })
	b.Run("AES128+HMAC+MD5+storedMD5-crypto-md5", func(b *testing.B) {
		benchEncrypt(b, WriterOptions{Observer: newMD5Observer(true)})
	})
	b.Run("AES256+HMAC+MD5", func(b *testing.B) {
		benchEncrypt(b, WriterOptions{Algorithm: AES256CBC, Observer: newMD5Observer(false)})
	})
	b.Run("AES128+HMAC+MD5+zstd", func(b *testing.B) {
		benchEncrypt(b, WriterOptions{Decorators: []Decorator{Zstd}, Observer: newMD5Observer(false)})
	})
}

// benchDecrypt reads one large range (the whole of a 16 MiB object) per op.
func benchDecrypt(b *testing.B, o WriterOptions, par int) {
	const size = 16 << 20
	pt := make([]byte, size)
	if len(o.Decorators) > 0 {
		pt = payload(size, 2)
	}
	l, err := DecryptBench(pt, o, par)
	runLoop(b, l, err)
}

func BenchmarkDecrypt(b *testing.B) {
	b.Run("AES128+HMAC-parallel", func(b *testing.B) { benchDecrypt(b, WriterOptions{}, 0) })
	b.Run("AES128+HMAC-serial", func(b *testing.B) { benchDecrypt(b, WriterOptions{}, 1) })
	b.Run("AES256+HMAC-parallel", func(b *testing.B) { benchDecrypt(b, WriterOptions{Algorithm: AES256CBC}, 0) })
	b.Run("AES128+HMAC+zstd-parallel", func(b *testing.B) { benchDecrypt(b, WriterOptions{Decorators: []Decorator{Zstd}}, 0) })
}
