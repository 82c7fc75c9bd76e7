package logging

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncOutput is a log output the flusher goroutine and the test share.
type syncOutput struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	fail   error
}

func (o *syncOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return 0, o.fail
	}
	o.writes++
	return o.buf.Write(p)
}

func (o *syncOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *syncOutput) Writes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writes
}

// waitFor polls until cond holds, failing the test after five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBufferedInfoLinesWaitForTheIntervalOrClose(t *testing.T) {
	out := &syncOutput{}
	logs := NewBuffered(Options{Format: "text", Service: "arca-test", Output: out}, time.Hour)
	log, flush := logs.Logger, logs.Close
	log.Info().Str("request_id", "req-1").Msg("request")
	log.Debug().Msg("below the level: never written")
	log.Info().Str("request_id", "req-2").Msg("request")
	if got := out.String(); got != "" {
		t.Fatalf("info lines were written before the interval or Close:\n%s", got)
	}
	flush()
	got := out.String()
	if !strings.Contains(got, "INF request request_id=req-1 service=arca-test\n") ||
		strings.Index(got, "req-1") > strings.Index(got, "req-2") || strings.Contains(got, "never written") {
		t.Fatalf("after Close, want both info lines in order and nothing below the level:\n%s", got)
	}
	if out.Writes() != 1 {
		t.Errorf("two buffered lines took %d writes, want 1", out.Writes())
	}
	// After Close, lines go out at once.
	log.Info().Msg("after close")
	if !strings.Contains(out.String(), "after close") {
		t.Errorf("a line logged after Close was held back:\n%s", out.String())
	}
	flush() // a second Close does nothing
}

func TestBufferedWarningsGoOutAtOnceAfterEverythingBefore(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for _, tc := range []struct {
			name string
			log  func(zerolog.Logger)
		}{
			{"warn", func(l zerolog.Logger) { l.Warn().Msg("urgent") }},
			{"error", func(l zerolog.Logger) { l.Error().Err(errors.New("boom")).Msg("urgent") }},
			{"no level", func(l zerolog.Logger) { l.Log().Msg("urgent") }},
			// In text, a nested value leaves the fast path for
			// ConsoleWriter, which writes without a level: it must still
			// keep the order.
			{"nested value", func(l zerolog.Logger) { l.Info().Interface("obj", map[string]int{"a": 1}).Msg("urgent") }},
		} {
			if format == "json" && tc.name == "nested value" {
				continue // an info line like any other
			}
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				out := &syncOutput{}
				logs := NewBuffered(Options{Format: format, Output: out}, time.Hour)
				log, flush := logs.Logger, logs.Close
				defer flush()
				log.Info().Msg("first")
				log.Info().Msg("second")
				tc.log(log)
				got := out.String()
				i, j, k := strings.Index(got, "first"), strings.Index(got, "second"), strings.Index(got, "urgent")
				if i < 0 || j < i || k < j {
					t.Fatalf("want first, second, urgent written in order at once, got:\n%s", got)
				}
			})
		}
	}
}

func TestBufferedAtOnceWritesAfterWhatIsHeld(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out := &syncOutput{}
			logs := NewBuffered(Options{Format: format, Output: out}, time.Hour)
			defer logs.Close()
			logs.Logger.Info().Msg("access line")
			logs.AtOnce.Info().Msg("audit line")
			got := out.String()
			if i, j := strings.Index(got, "access line"), strings.Index(got, "audit line"); i < 0 || j < i {
				t.Fatalf("want the held access line, then the audit line, written at once; got:\n%s", got)
			}
			if out.Writes() != 1 {
				t.Errorf("%d writes, want the held line and the audit line in one", out.Writes())
			}
			logs.Logger.Info().Msg("next access line")
			if strings.Contains(out.String(), "next access line") {
				t.Errorf("an info line after the audit line was not held")
			}
		})
	}
}

func TestBufferedLinesLeaveAfterTheInterval(t *testing.T) {
	out := &syncOutput{}
	logs := NewBuffered(Options{Format: "json", Output: out}, 20*time.Millisecond)
	log, flush := logs.Logger, logs.Close
	defer flush()
	for round := range 3 {
		msg := fmt.Sprintf("round %d", round)
		log.Info().Msg(msg)
		waitFor(t, msg+" to be written by the interval's flush", func() bool { return strings.Contains(out.String(), msg) })
	}
}

func TestBufferedFullBufferIsWrittenByItsWriter(t *testing.T) {
	out := &syncOutput{}
	logs := NewBuffered(Options{Format: "json", Output: out}, time.Hour)
	log, flush := logs.Logger, logs.Close
	defer flush()
	pad := strings.Repeat("x", 1000)
	n := 0
	for out.String() == "" {
		if n > 2*bufferLimit/len(pad) {
			t.Fatalf("%d lines of %d bytes were all held back (limit %d bytes)", n, len(pad), bufferLimit)
		}
		log.Info().Int("n", n).Str("pad", pad).Msg("line")
		n++
	}
	got := out.String()
	if lines := strings.Count(got, "\n"); lines != n {
		t.Errorf("the full buffer's write held %d lines, want all %d logged", lines, n)
	}
	last := got[strings.LastIndex(got[:len(got)-1], "\n")+1:]
	if len(got) < bufferLimit || len(got)-len(last) >= bufferLimit {
		t.Errorf("%d bytes written at once, the last line %d: want the write made by the line that reached %d", len(got), len(last), bufferLimit)
	}
}

func TestBufferedConcurrentWritersLoseAndReorderNothing(t *testing.T) {
	out := &syncOutput{}
	logs := NewBuffered(Options{Format: "json", Output: out}, time.Millisecond)
	log, flush := logs.Logger, logs.Close
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				ev := log.Info()
				if i%500 == 0 {
					ev = log.Warn()
				}
				ev.Int("w", w).Int("i", i).Msg("")
			}
		})
	}
	wg.Wait()
	flush()
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var w, i int
		if _, err := fmt.Sscanf(line[strings.Index(line, `"w":`):], `"w":%d,"i":%d`, &w, &i); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d came where line %d was due", w, i, next[w])
		}
		next[w]++
	}
	for w, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines written, want %d", w, n, lines)
		}
	}
}

func TestBufferedWarningReportsAFailingOutput(t *testing.T) {
	out := &syncOutput{fail: errors.New("disk full")}
	b := newLineBuffer(out, time.Hour)
	defer b.Close()
	if _, err := b.WriteLevel(zerolog.InfoLevel, []byte("held\n")); err != nil {
		t.Fatalf("a held line reported %v", err)
	}
	if _, err := b.WriteLevel(zerolog.ErrorLevel, []byte("urgent\n")); err == nil {
		t.Fatal("a line written at once to a failing output reported no error")
	}
}

func TestNewBufferedWithoutIntervalWritesEachLine(t *testing.T) {
	out := &syncOutput{}
	logs := NewBuffered(Options{Format: "text", Output: out}, 0)
	log, flush := logs.Logger, logs.Close
	defer flush()
	log.Info().Msg("at once")
	if !strings.Contains(out.String(), "at once") {
		t.Fatalf("log_flush_interval = 0 held a line back")
	}
}

// BenchmarkAccessLine is the cost of one access line in each format,
// written at once and buffered (the daemons' default).
func BenchmarkAccessLine(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		for _, every := range []time.Duration{0, DefaultFlushInterval} {
			b.Run(fmt.Sprintf("%s/flush=%s", format, every), func(b *testing.B) {
				logs := NewBuffered(Options{Format: format, Service: "arca-api", Output: discardFile(b)}, every)
				log, flush := logs.Logger, logs.Close
				defer flush()
				b.ReportAllocs()
				for b.Loop() {
					log.Info().Str("request_id", "req-5e66c68c-1e2f-4b7e-b2b1-d8c02c6f4d19").Str("method", "GET").
						Str("path", "/v1/secrets/6a0e8d2f-4d8e-4a63-9d2c-0d1f4b5f9b0e/payload").Int("status", 200).
						Dur("duration", 1234567*time.Nanosecond).Str("remote", "127.0.0.1").Msg("request")
				}
			})
		}
	}
}

// discardFile is the null device opened as a file: each write is a real
// system call, as to a log file, without the disk.
func discardFile(b *testing.B) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}
