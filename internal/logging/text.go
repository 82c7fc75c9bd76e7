package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/rs/zerolog"
)

// newTextWriter renders zerolog's JSON events as the text lines of
// log_format = text (zerolog.ConsoleWriter with TimeFormat RFC3339Nano and
// NoColor), byte for byte, without
// ConsoleWriter's cost. ConsoleWriter decodes every event into a
// map[string]any with encoding/json and formats each field through
// fmt.Sprintf and os.Getenv: with two lines per request (access and audit)
// that was a fifth of arca-api's CPU per project-key payload read
// (docs/benchmarks.md). It scans the flat objects zerolog writes with
// a small scanner and hands any event it does not recognise (nested
// values, a caller, a non-string message or time) to ConsoleWriter, so
// the output never differs.
func newTextWriter(out io.Writer) io.Writer {
	return &textLog{out: out, slow: zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339Nano, NoColor: true}}
}

type textLog struct {
	out  io.Writer
	slow zerolog.ConsoleWriter
}

// textField is one top-level member of an event: its name and its value,
// a decoded string (quoted) or the raw JSON token of a number, bool or null.
type textField struct {
	name, value string
	quoted      bool
}

type textLine struct {
	fields, rest []textField
	buf          []byte
}

var textLinePool = sync.Pool{New: func() any { return &textLine{buf: make([]byte, 0, 512)} }}

// Write renders one event (zerolog writes each in one call).
func (w *textLog) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

// WriteLevel renders one event and hands it on with its level, which a
// daemon's line buffer needs to know what may wait.
func (w *textLog) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	line := textLinePool.Get().(*textLine)
	defer textLinePool.Put(line)
	if !line.render(p) {
		return w.slow.Write(p)
	}
	var err error
	if lw, ok := w.out.(zerolog.LevelWriter); ok {
		_, err = lw.WriteLevel(level, line.buf)
	} else {
		_, err = w.out.Write(line.buf)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// render formats p into l.buf as ConsoleWriter would: time, level, message,
// then the other fields sorted by name with "error" first. It reports false
// for anything outside the fast path.
func (l *textLine) render(p []byte) bool {
	l.fields, l.buf = l.fields[:0], l.buf[:0]
	if !l.scan(p) {
		return false
	}
	var ts, level, msg *textField
	fields := l.rest[:0] // the others, sorted below
	defer func() { l.rest = fields[:0] }()
	for i := range l.fields {
		f := &l.fields[i]
		switch f.name {
		case zerolog.TimestampFieldName:
			ts = f
		case zerolog.LevelFieldName:
			level = f
		case zerolog.MessageFieldName:
			msg = f
		case zerolog.CallerFieldName:
			return false
		default:
			fields = append(fields, *f)
		}
	}
	if ts == nil || !ts.quoted || ts.value == "" || level == nil || !level.quoted || (msg != nil && !msg.quoted) {
		return false
	}
	lv, err := zerolog.ParseLevel(level.value)
	short, ok := zerolog.FormattedLevels[lv]
	if err != nil || !ok {
		return false
	}
	// A key given twice (arca-api's audit lines have a "service" flag
	// beside the logger's "service" name) shows its last value, as
	// encoding/json's map decoding keeps it.
	slices.SortStableFunc(fields, func(a, b textField) int { return strings.Compare(a.name, b.name) })
	kept := fields[:0]
	for i, f := range fields {
		if i+1 < len(fields) && fields[i+1].name == f.name {
			continue
		}
		kept = append(kept, f)
	}
	fields = kept
	// The time as ConsoleWriter shows it: parsed in the local zone with
	// zerolog's field format, shown in RFC 3339 with nanoseconds.
	if t, err := time.ParseInLocation(zerolog.TimeFieldFormat, ts.value, time.Local); err == nil {
		l.buf = t.In(time.Local).AppendFormat(l.buf, time.RFC3339Nano)
	} else {
		l.buf = append(l.buf, ts.value...)
	}
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, short...)
	if msg != nil && msg.value != "" {
		l.buf = append(l.buf, ' ')
		l.buf = append(l.buf, msg.value...)
	}
	if len(fields) > 0 {
		l.buf = append(l.buf, ' ')
	}
	if i := slices.IndexFunc(fields, func(f textField) bool { return f.name == zerolog.ErrorFieldName }); i > 0 {
		errField := fields[i]
		copy(fields[1:i+1], fields[:i])
		fields[0] = errField
	}
	for i, f := range fields {
		if i > 0 {
			l.buf = append(l.buf, ' ')
		}
		l.buf = append(l.buf, f.name...)
		l.buf = append(l.buf, '=')
		if f.quoted && needsQuote(f.value) {
			l.buf = strconv.AppendQuote(l.buf, f.value)
		} else {
			l.buf = append(l.buf, f.value...)
		}
	}
	l.buf = append(l.buf, '\n')
	return true
}

// scan splits a flat JSON object into l.fields: string, number, true,
// false and null values only.
func (l *textLine) scan(p []byte) bool {
	p = bytes.TrimSuffix(p, []byte{'\n'})
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return false
	}
	i := 1
	if p[i] == '}' {
		return i == len(p)-1
	}
	for {
		name, next, ok := jsonString(p, i)
		if !ok || next >= len(p) || p[next] != ':' {
			return false
		}
		i = next + 1
		if i >= len(p) {
			return false
		}
		f := textField{name: name}
		switch c := p[i]; {
		case c == '"':
			f.value, i, ok = jsonString(p, i)
			f.quoted = true
		case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
			j := i
			for j < len(p) && p[j] != ',' && p[j] != '}' {
				j++
			}
			f.value, ok = string(p[i:j]), validScalar(p[i:j])
			i = j
		default:
			return false // an object or array: ConsoleWriter marshals those itself
		}
		if !ok || i >= len(p) {
			return false
		}
		l.fields = append(l.fields, f)
		switch p[i] {
		case ',':
			i++
		case '}':
			return i == len(p)-1
		default:
			return false
		}
	}
}

// jsonString decodes the JSON string starting at p[i] (a quote) and
// returns it with the index after its closing quote. Strings with escapes
// or bytes that are not UTF-8 go through encoding/json, so that they decode
// exactly as ConsoleWriter's decoder sees them.
func jsonString(p []byte, i int) (string, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return "", 0, false
	}
	escaped := false
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			escaped = true
			j++ // skip the escaped byte (a quote does not end the string)
		case '"':
			raw := p[i+1 : j]
			if !escaped && utf8.Valid(raw) {
				// No copy: a field lives only while its event is rendered
				// (textLog.Write), and zerolog does not touch p until then.
				return unsafe.String(unsafe.SliceData(raw), len(raw)), j + 1, true //nolint:gosec // G103: read-only view, see above
			}
			var s string
			if err := json.Unmarshal(p[i:j+1], &s); err != nil {
				return "", 0, false
			}
			return s, j + 1, true
		}
	}
	return "", 0, false
}

// validScalar accepts the literals and the JSON numbers ConsoleWriter
// prints as they are written (-?int[.digits][(e|E)[+-]digits]).
func validScalar(b []byte) bool {
	switch string(b) {
	case "true", "false", "null":
		return true
	}
	i := 0
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(b)
}

// needsQuote is ConsoleWriter's rule for quoting a string value.
func needsQuote(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == ' ' || s[i] == '\\' || s[i] == '"' {
			return true
		}
	}
	return false
}
