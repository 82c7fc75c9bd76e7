// Package logging sets up zerolog the way every Arca binary logs: one line
// per event, JSON for log pipelines or a console format for people, with the
// field names OpenStack operators grep for (request_id, project_id, user_id).
//
// Durations (the access lines' duration field) are written as Go duration
// strings, "1.234567ms", in every format: zerolog's default is a bare number
// of milliseconds, which a reader of the text format cannot tell from
// seconds and a log pipeline has to be told about.
//
// The daemons (arca-api, arca-swift-filter, arca-object-server) log
// through NewBuffered: their info and debug lines (an access line per
// request) wait up to [DEFAULT] log_flush_interval (DefaultFlushInterval)
// and leave in one write. Warnings and errors, and arca-api's audit lines
// (Buffered.AtOnce), are written at once, after every line before them.
//
// Callers must never log key material, payloads, tokens or passwords; the
// logger cannot know which strings are secret, so the rule lives in review
// and in tests that scan captured logs.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Every Arca binary builds its logger here, and zerolog's duration format
// is a package-wide setting: set once, before any logger exists.
func init() { zerolog.DurationFieldFormat = zerolog.DurationFormatString }

// Options choose the log format.
type Options struct {
	Debug bool
	// Format is "json" or "text".
	Format  string
	Service string
	Output  io.Writer
}

// New returns a logger for one service that writes every line at once
// (the command-line tools).
func New(opts Options) zerolog.Logger {
	out := opts.Output
	if out == nil {
		out = os.Stderr
	}
	return newLogger(opts, out)
}

// Buffered is a daemon's logging (NewBuffered).
type Buffered struct {
	// Logger holds lines below warning level for up to the flush interval
	// and writes them in one call (lineBuffer); warnings and errors go out
	// at once, after everything held before them.
	Logger zerolog.Logger
	// AtOnce writes each of its lines at once, whatever its level, after
	// everything Logger holds: for a line that must have left the process
	// before the daemon answers (arca-api's audit lines).
	AtOnce zerolog.Logger
	buf    *lineBuffer
}

// NewBuffered returns a daemon's loggers, holding info and debug lines for
// up to every; every = 0 writes each line at once, as New does. Close
// writes what is held: call it before the process exits.
func NewBuffered(opts Options, every time.Duration) *Buffered {
	out := opts.Output
	if out == nil {
		out = os.Stderr
	}
	if every <= 0 {
		log := newLogger(opts, out)
		return &Buffered{Logger: log, AtOnce: log}
	}
	buf := newLineBuffer(out, every)
	return &Buffered{Logger: newLogger(opts, buf), AtOnce: newLogger(opts, atOnce{buf}), buf: buf}
}

// Close writes the lines still held; later lines are written at once.
func (b *Buffered) Close() {
	if b.buf != nil {
		b.buf.Close()
	}
}

func newLogger(opts Options, out io.Writer) zerolog.Logger {
	if opts.Format != "json" {
		out = newTextWriter(out)
	}
	level := zerolog.InfoLevel
	if opts.Debug {
		level = zerolog.DebugLevel
	}
	ctx := zerolog.New(out).Level(level).With().Timestamp()
	if opts.Service != "" {
		ctx = ctx.Str("service", opts.Service)
	}
	return ctx.Logger()
}
