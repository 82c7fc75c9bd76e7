package main

import (
	"cmp"
	"crypto/md5"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"opendev.org/x/arca/objcrypt"
)

// crypto: objcrypt's pipelines measured beside the primitives they are
// built of, in one run, with issue 5's targets: encryption (with the
// object server's MD5 of the plaintext) at >= 0.85 of min(MD5, AES+HMAC),
// a 16 MiB range decrypted at >= 1.5x the stdlib's single-core CBC
// decryption, no allocation per operation, and per-stream memory within
// objcrypt.StreamBounds.

func cryptoCmd(args []string) error {
	fs := flag.NewFlagSet("crypto", flag.ContinueOnError)
	benchtime := fs.String("benchtime", "1s", "time (or Nx count) per measurement, as go test -benchtime")
	memMiB := fs.Int64("mem-mib", 64, "object size of the memory-per-stream check, MiB")
	rounds := fs.Int("rounds", 5, "alternating rounds of the encryption and decryption comparisons (stdlib, objcrypt, stdlib, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", *rounds)
	}
	// testing.Benchmark reads go test's -test.benchtime: register it and set it.
	testing.Init()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		return fmt.Errorf("-benchtime: %w", err)
	}
	m, err := measureCrypto(*memMiB<<20, *rounds)
	if err != nil {
		return err
	}
	if !m.report(os.Stdout, *memMiB) {
		return errMissed
	}
	return nil
}

// cryptoFigures are one run's measurements: MB/s, allocation results and
// bytes per stream.
type cryptoFigures struct {
	aesEnc, aesDec, md5, hmac, ourDec, mac2 float64
	enc, encStoredMD5, dec, decSerial       testing.BenchmarkResult
	encMem, decMem, encMax, decMax          uint64
	// The decryption comparison's rounds, MB/s: the stdlib's CBC
	// decryption and objcrypt's Reader, measured alternately.
	stdDecRounds, decRounds []float64
	// The encryption comparison's rounds, MB/s: its bound (the stdlib's
	// MD5, AES-CBC encryption and HMAC, measured just before) and
	// objcrypt's Writer with an MD5 observer.
	encBoundRounds, encRounds []float64
}

// measureCrypto measures everything once, but the two comparisons, which
// take rounds alternating rounds each: their sides use one core and all of
// them, so a burst of other work on the shared machine between two single
// measurements moved the decryption ratio from 1.18 to 1.64 in three
// consecutive runs, and the encryption ratio from 0.94 to 0.70 between a
// run alone and one inside make bench.
func measureCrypto(memSize int64, rounds int) (*cryptoFigures, error) {
	var m cryptoFigures
	var errs []error
	run := func(l *objcrypt.BenchLoop, err error) testing.BenchmarkResult {
		if err != nil {
			errs = append(errs, err)
			return testing.BenchmarkResult{}
		}
		return testing.Benchmark(func(b *testing.B) { timeLoop(b, l, &errs) })
	}
	chunk := make([]byte, objcrypt.BenchChunk)
	var aesEncRounds, md5Rounds, hmacRounds []float64
	var encResults []testing.BenchmarkResult
	for range rounds {
		aesEnc := mbps(run(objcrypt.StdCBCBench(16, false)))
		md5 := mbps(testing.Benchmark(benchMD5))
		hmac := mbps(run(objcrypt.HMACBench(), nil))
		r := run(objcrypt.EncryptBench(chunk, objcrypt.WriterOptions{Observer: newMD5Observer(false)}))
		aesEncRounds, md5Rounds, hmacRounds = append(aesEncRounds, aesEnc), append(md5Rounds, md5), append(hmacRounds, hmac)
		m.encBoundRounds = append(m.encBoundRounds, encryptBound(md5, aesEnc, hmac))
		encResults = append(encResults, r)
		m.encRounds = append(m.encRounds, mbps(r))
	}
	m.aesEnc, m.md5, m.hmac = median(aesEncRounds), median(md5Rounds), median(hmacRounds)
	m.enc = encResults[middleIndex(m.encRounds)]
	m.ourDec = mbps(run(objcrypt.CBCBench(true)))
	m.mac2 = mbps(run(objcrypt.MACFramesBench()))
	m.encStoredMD5 = run(objcrypt.EncryptBench(chunk, objcrypt.WriterOptions{Observer: newMD5Observer(true)}))
	object := make([]byte, 16<<20)
	var decResults []testing.BenchmarkResult
	for range rounds {
		m.stdDecRounds = append(m.stdDecRounds, mbps(run(objcrypt.StdCBCBench(16, true))))
		r := run(objcrypt.DecryptBench(object, objcrypt.WriterOptions{}, 0))
		decResults = append(decResults, r)
		m.decRounds = append(m.decRounds, mbps(r))
	}
	m.aesDec = median(m.stdDecRounds)
	// The round reported (its MB/s and allocations) is a measured one: the
	// median's, the lower middle one for an even number of rounds.
	m.dec = decResults[middleIndex(m.decRounds)]
	m.decSerial = run(objcrypt.DecryptBench(object, objcrypt.WriterOptions{}, 1))
	if len(errs) > 0 {
		return nil, fmt.Errorf("crypto: %w", errs[0])
	}
	var err error
	if m.encMem, m.decMem, err = streamMemory(memSize); err != nil {
		return nil, err
	}
	m.encMax, m.decMax = objcrypt.StreamBounds(objcrypt.DefaultSegmentSize, runtime.GOMAXPROCS(0))
	return &m, nil
}

// timeLoop times l's operations; an error stops the measurement and is
// kept in errs (testing.Benchmark has no failure of its own to report).
func timeLoop(b *testing.B, l *objcrypt.BenchLoop, errs *[]error) {
	b.SetBytes(l.Bytes)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Do(); err != nil {
			*errs = append(*errs, err)
			return
		}
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		*errs = append(*errs, err)
	}
}

// streamMemory is objcrypt.StreamMemory through a file of its own, with
// the object server's observer (an MD5 of the plaintext).
func streamMemory(size int64) (enc, dec uint64, err error) {
	dir, err := os.MkdirTemp("", "speedreport-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "object"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return objcrypt.StreamMemory(f, size, objcrypt.WriterOptions{Observer: newMD5Observer(false)})
}

// report writes the table and reports whether every target was met.
func (m *cryptoFigures) report(w io.Writer, memMiB int64) bool {
	ok := true
	fmt.Fprintf(w, "\nobjcrypt speed report (GOMAXPROCS=%d, MB/s = 1e6 B/s, 64 KiB chunks)\n", runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "primitives (Go stdlib, this run): AES-128-CBC enc %.0f  dec %.0f  MD5 %.0f  HMAC-SHA256 %.0f\n",
		m.aesEnc, m.aesDec, m.md5, m.hmac)
	fmt.Fprintf(w, "%-44s %9s %9s %7s %7s  %s\n", "pipeline", "bound", "achieved", "ratio", "target", "result")
	info := func(name string, bound, got float64) {
		fmt.Fprintf(w, "%-44s %9.0f %9.0f %7.2f %7s  %s\n", name, bound, got, got/bound, "-", "info")
	}
	// Both comparisons are judged on the median of the rounds' ratios:
	// each round's two sides met the same background load.
	compared := func(name string, got, base []float64, target float64, baseName string) {
		ratio := medianRatio(got, base)
		res := "PASS"
		if ratio < target {
			res, ok = "FAIL", false
		}
		fmt.Fprintf(w, "%-44s %9.0f %9.0f %7.2f %7.2f  %s\n", name, median(base), median(got), ratio, target, res)
		var each strings.Builder
		for i := range got {
			fmt.Fprintf(&each, " %.0f/%.0f", got[i], base[i])
		}
		fmt.Fprintf(w, "  %d alternating rounds, MB/s objcrypt/%s:%s; medians above, ratio the rounds' median\n", len(got), baseName, each.String())
	}
	compared("encrypt+MAC+MD5 AES-128 vs min(MD5,AES+HMAC)", m.encRounds, m.encBoundRounds, 0.85, "bound")
	info("  + stored MD5, two crypto/md5 (same bound)", median(m.encBoundRounds), mbps(m.encStoredMD5))
	compared("decrypt+verify 16 MiB range vs stdlib CBC dec", m.decRounds, m.stdDecRounds, 1.5, "stdlib")
	info("  same, one goroutine", m.aesDec, mbps(m.decSerial))
	info("  objcrypt CBC decrypt alone, one goroutine", m.aesDec, m.ourDec)
	info("  segment MACs two at a time, one goroutine", m.aesDec, m.mac2)
	// The Reader MACs two segments at a time where the SHA-NI lanes are
	// (MACFramesBench then measures them), one at a time otherwise.
	info("  one-core bound 1/(1/ourCBC+1/MACs)", m.aesDec, 1/(1/m.ourDec+1/max(m.hmac, m.mac2)))
	allocs := func(name string, r testing.BenchmarkResult) {
		res := "PASS"
		if r.AllocsPerOp() > 0 {
			res, ok = "FAIL", false
		}
		fmt.Fprintf(w, "%-44s %9s %9d %7s %7s  %s\n", name+" allocs/op", "", r.AllocsPerOp(), "", "0", res)
	}
	allocs("encrypt 64 KiB", m.enc)
	allocs("decrypt 16 MiB", m.dec)
	// Memory per stream, in KiB, beside the segments each side keeps in
	// flight (objcrypt.StreamBounds). A ratio at most 1 passes.
	mem := func(name string, bound, got uint64) {
		res := "PASS"
		if got > bound {
			res, ok = "FAIL", false
		}
		fmt.Fprintf(w, "%-44s %9.0f %9.0f %7.2f %7s  %s\n", name, float64(bound)/1024, float64(got)/1024,
			float64(got)/float64(bound), "<=1", res)
	}
	mem(fmt.Sprintf("encrypt %d MiB: KiB allocated per stream", memMiB), m.encMax, m.encMem)
	mem(fmt.Sprintf("decrypt %d MiB: KiB allocated per stream", memMiB), m.decMax, m.decMem)
	return ok
}

// encryptBound is the encryption pipeline's bound, in MB/s: the slower of
// the MD5 (on a core of its own) and AES-CBC encryption followed by
// HMAC-SHA256 on the other.
func encryptBound(md5, aesEnc, hmac float64) float64 {
	return min(md5, 1/(1/aesEnc+1/hmac))
}

// medianRatio is the median of got[i]/base[i] over the rounds.
func medianRatio(got, base []float64) float64 {
	ratios := make([]float64, len(got))
	for i := range ratios {
		ratios[i] = got[i] / base[i]
	}
	return median(ratios)
}

// median is the middle value of xs (the mean of the two middle ones for
// an even count); xs is not modified.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// middleIndex is the index in xs of its median value, the lower of the
// two middle ones when len(xs) is even; 0 for an empty xs.
func middleIndex(xs []float64) int {
	if len(xs) == 0 {
		return 0
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(xs[a], xs[b]) })
	return idx[(len(xs)-1)/2]
}

func mbps(r testing.BenchmarkResult) float64 {
	if r.T <= 0 {
		return 0
	}
	return float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e6
}

// benchMD5 is crypto/md5 over 64 KiB chunks, the object server's ETag
// hash: one side of the encryption bound.
func benchMD5(b *testing.B) {
	h := md5.New()
	buf := make([]byte, objcrypt.BenchChunk)
	b.SetBytes(objcrypt.BenchChunk)
	for b.Loop() {
		h.Write(buf)
	}
}

// md5Observer is a Writer's observer as the object server has one: an MD5
// of the plaintext and, with stored, one of the stored bytes (with two
// crypto/md5 here; the object server hashes both in one pass).
type md5Observer struct{ plain, stored hash.Hash }

func newMD5Observer(stored bool) *md5Observer {
	o := &md5Observer{plain: md5.New()}
	if stored {
		o.stored = md5.New()
	}
	return o
}

func (o *md5Observer) Observe(plain, stored []byte) {
	o.plain.Write(plain)
	if o.stored != nil {
		o.stored.Write(stored)
	}
}
