// Package logging sets up zerolog the way every Arca binary logs: one line
// per event, JSON for log pipelines or a console format for people, with the
// field names OpenStack operators grep for (request_id, project_id, user_id).
//
// Durations (the access lines' duration field) are written as Go duration
// strings, "1.234567ms", in every format: zerolog's default is a bare number
// of milliseconds, which a reader of the text format cannot tell from
// seconds and a log pipeline has to be told about.
//
// Callers must never log key material, payloads, tokens or passwords; the
// logger cannot know which strings are secret, so the rule lives in review
// and in tests that scan captured logs.
package logging

import (
	"io"
	"os"

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

// New returns a logger for one service.
func New(opts Options) zerolog.Logger {
	out := opts.Output
	if out == nil {
		out = os.Stderr
	}
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
