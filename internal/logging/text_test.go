package logging

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// textLogEvents log the same events through a logger built like
// internal/logging's: with a timestamp and a service field.
var textLogEvents = []func(l zerolog.Logger){
	func(l zerolog.Logger) {
		l.Info().Str("request_id", "req-0d7a").Str("method", "GET").Str("path", "/v1/project-keys/ab/payload").
			Int("status", 200).Dur("duration", 1234567*time.Nanosecond).Str("remote", "127.0.0.1").
			Str("project_id", "p").Str("user_id", "").Msg("request")
	},
	func(l zerolog.Logger) {
		l.Info().Str("audit", "project_key").Str("action", "payload").Str("outcome", "success").
			Bool("service", true).Str("detail", "").Msg("project key audit")
	},
	func(l zerolog.Logger) {
		l.Warn().Err(errors.New(`dial tcp: "quoted" \ back`)).Str("aaa", "first").Str("zzz", "last").Msg("with error")
	},
	func(l zerolog.Logger) { l.Error().Msg("") },
	func(l zerolog.Logger) { l.Debug().Str("k", "v").Send() },
	func(l zerolog.Logger) {
		l.Info().Str("unicode", "héllo wörld ✓").Str("ctl", "a\nb\tc\x01").Msg("msg with spaces")
	},
	func(l zerolog.Logger) { l.Info().Str("bad", "x\xffy").Msg("invalid utf-8") },
	func(l zerolog.Logger) {
		l.Info().Float64("f", -1.5e-7).Int64("neg", -42).Uint64("big", 1<<63).Bool("no", false).Msg("numbers")
	},
	func(l zerolog.Logger) { l.Info().Interface("nil", nil).Msg("null") },
	func(l zerolog.Logger) { l.Info().Dict("d", zerolog.Dict().Str("x", "y")).Msg("nested") },
	func(l zerolog.Logger) { l.Info().Strs("list", []string{"a", "b"}).Msg("array") },
	func(l zerolog.Logger) { l.Info().Str("service", "dup").Msg("duplicate key") },
	func(l zerolog.Logger) { l.Info().Caller().Msg("caller") },
	func(l zerolog.Logger) { l.Info().Str("message", "two").Msg("two messages") },
	func(l zerolog.Logger) {
		l.Info().Time("at", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)).Msg("time field")
	},
	func(l zerolog.Logger) { l.Info().RawJSON("raw", []byte(`12.50`)).Msg("raw number") },
	func(l zerolog.Logger) { l.Info().Str("key with \"quote\"", "v").Msg("odd key") },
	func(l zerolog.Logger) { l.WithLevel(zerolog.NoLevel).Msg("no level") },
}

func textLogPair(fast, slow io.Writer) (zerolog.Logger, zerolog.Logger) {
	mk := func(w io.Writer) zerolog.Logger {
		return zerolog.New(w).Level(zerolog.DebugLevel).With().Timestamp().Str("service", "arca-api").Logger()
	}
	return mk(newTextWriter(fast)), mk(zerolog.ConsoleWriter{Out: slow, TimeFormat: time.RFC3339Nano, NoColor: true})
}

// printBoth logs ev through the fast text writer and through zerolog's
// ConsoleWriter and returns both lines. The timestamp has a one-second
// resolution: a pair that differs is printed again, in case a tick fell
// between the two.
func printBoth(ev func(zerolog.Logger)) (fastLine, consoleLine string) {
	var fast, slow bytes.Buffer
	lf, ls := textLogPair(&fast, &slow)
	for range 3 {
		fast.Reset()
		slow.Reset()
		ev(lf)
		ev(ls)
		if fast.String() == slow.String() {
			break
		}
	}
	return fast.String(), slow.String()
}

// TestTextLogMatchesConsoleWriter: the fast path and the fallback together
// print exactly what zerolog's ConsoleWriter prints.
func TestTextLogMatchesConsoleWriter(t *testing.T) {
	for i, ev := range textLogEvents {
		if got, want := printBoth(ev); got != want {
			t.Errorf("event %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

// TestTextLogRandomStrings compares random field names and values, bytes
// of every kind included.
func TestTextLogRandomStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab Z09_-=\"\\\n\t\x00\x7f\xc3\xa9\xff{}[],:")
	str := func() string {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := range 2000 {
		fields := make([][2]string, r.IntN(5))
		for j := range fields {
			fields[j] = [2]string{str(), str()}
		}
		msg, n := str(), r.IntN(100000)
		ev := func(l zerolog.Logger) {
			e := l.Info().Int("n", n)
			for _, f := range fields {
				e = e.Str(f[0], f[1])
			}
			e.Msg(msg)
		}
		if got, want := printBoth(ev); got != want {
			t.Fatalf("case %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

// TestTextLogFastPath: arca-api's per-request lines (access, audit, with
// the duplicate "service" key) never fall back to ConsoleWriter.
func TestTextLogFastPath(t *testing.T) {
	for i, ev := range textLogEvents[:3] {
		var raw bytes.Buffer
		l := zerolog.New(&raw).With().Timestamp().Str("service", "arca-api").Logger()
		ev(l)
		line := textLinePool.Get().(*textLine)
		if !line.render(raw.Bytes()) {
			t.Errorf("event %d takes the slow path: %s", i, raw.Bytes())
		}
		textLinePool.Put(line)
	}
}

func TestValidScalar(t *testing.T) {
	for _, s := range []string{"0", "-0", "12", "-3.25", "1e9", "1E+9", "2.5e-3", "true", "false", "null"} {
		if !validScalar([]byte(s)) {
			t.Errorf("validScalar(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "1e", "+1", "tru", "nul", "1 ", "0x1"} {
		if validScalar([]byte(s)) {
			t.Errorf("validScalar(%q) = true", s)
		}
	}
}

// BenchmarkTextLog compares an access-log line through the text writer and through
// zerolog's ConsoleWriter.
func BenchmarkTextWriter(b *testing.B) {
	for _, name := range []string{"fast", "consolewriter"} {
		b.Run(name, func(b *testing.B) {
			lf, ls := textLogPair(io.Discard, io.Discard)
			l := lf
			if strings.HasPrefix(name, "console") {
				l = ls
			}
			b.ReportAllocs()
			for b.Loop() {
				textLogEvents[0](l)
			}
		})
	}
}

// FuzzTextWriter: for any bytes handed to it as an event, the text writer
// prints exactly what zerolog's ConsoleWriter prints, whether its own
// scanner takes the event or gives it to the fallback.
func FuzzTextWriter(f *testing.F) {
	var seeds bytes.Buffer
	for _, event := range textLogEvents {
		seeds.Reset()
		event(zerolog.New(&seeds).With().Timestamp().Str("service", "arca-api").Logger())
		f.Add(bytes.TrimSuffix(seeds.Bytes(), []byte("\n")))
	}
	f.Add([]byte(`{"level":"info","a":"\u00e9\ud800","message":"x"}`))
	f.Add([]byte(`{"level":"info","n":1e400}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, event []byte) {
		var fast, slow bytes.Buffer
		_, fastErr := newTextWriter(&fast).Write(event)
		_, slowErr := (zerolog.ConsoleWriter{Out: &slow, TimeFormat: time.RFC3339Nano, NoColor: true}).Write(event)
		if (fastErr == nil) != (slowErr == nil) {
			t.Fatalf("event %q: error %v, ConsoleWriter's %v", event, fastErr, slowErr)
		}
		if fast.String() != slow.String() {
			t.Fatalf("event %q:\n got %q\nwant %q", event, fast.String(), slow.String())
		}
	})
}

// TestDurationsCarryTheirUnit: an access line's duration says its unit in
// both formats, JSON and text, whichever logger writes it.
func TestDurationsCarryTheirUnit(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var out bytes.Buffer
		l := New(Options{Format: format, Service: "arca-api", Output: &out})
		textLogEvents[0](l)
		want := `duration=1.234567ms`
		if format == "json" {
			want = `"duration":"1.234567ms"`
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s format: %q does not hold %s", format, out.String(), want)
		}
	}
}
