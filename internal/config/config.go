package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// File is a loaded configuration file. Getters record problems instead of
// returning them; call Err once everything has been read.
type File struct {
	ini  *ini.File
	path string
	errs []error
}

// loadOptions make ini.v1 behave like oslo.config. Its defaults would cut
// "se#cret" to "se", and its rules for quotes are not oslo's: values are
// read as written and raw applies oslo's (unquote).
var loadOptions = ini.LoadOptions{
	IgnoreInlineComment:        true,
	PreserveSurroundedQuote:    true,
	AllowPythonMultilineValues: true,
	AllowShadows:               true,
	SpaceBeforeInlineComment:   true,
}

// Load reads one or more INI files; later files override earlier ones, as
// with oslo's --config-file given several times. A missing path is an error.
func Load(paths ...string) (*File, error) {
	if len(paths) == 0 {
		return Parse(nil)
	}
	sources := make([]any, 0, len(paths))
	for _, p := range paths {
		sources = append(sources, p)
	}
	f, err := ini.LoadSources(loadOptions, sources[0], sources[1:]...)
	if err != nil {
		return nil, fmt.Errorf("reading configuration %s: %w", strings.Join(paths, ", "), err)
	}
	return &File{ini: f, path: strings.Join(paths, ", ")}, nil
}

// Parse reads configuration from bytes (nil: an empty configuration).
func Parse(data []byte) (*File, error) {
	if data == nil {
		data = []byte{}
	}
	f, err := ini.LoadSources(loadOptions, data)
	if err != nil {
		return nil, fmt.Errorf("parsing configuration: %w", err)
	}
	return &File{ini: f, path: "<config>"}, nil
}

// section returns the named section; "DEFAULT" is ini.v1's default section.
func (f *File) section(name string) *ini.Section {
	if name == "" || strings.EqualFold(name, "DEFAULT") {
		name = ini.DefaultSection
	}
	return f.ini.Section(name)
}

func (f *File) raw(section, key string) (string, bool) {
	s := f.section(section)
	if !s.HasKey(key) {
		return "", false
	}
	// With shadows allowed, a key set twice (in one file or across files)
	// keeps every value; oslo takes the last one.
	values := s.Key(key).ValueWithShadows()
	if len(values) == 0 { // "key =" with nothing after it
		return "", true
	}
	v := values[len(values)-1]
	// Continuation lines keep their indentation in ini.v1; oslo drops it.
	lines := strings.Split(v, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	lines[0] = unquote(lines[0])
	return strings.TrimSpace(strings.Join(lines, "\n")), true
}

// unquote removes one pair of matching quotes around a value, single or
// double, as oslo.config's parser does: password = "se#cret" is se#cret,
// and "a" b "c" is a" b "c. (ini.v1 also takes a value out of backticks
// or triple double quotes, where oslo keeps them; nothing Arca reads is
// written so.)
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func (f *File) fail(section, key, format string, args ...any) {
	f.errs = append(f.errs, fmt.Errorf("[%s] %s: %s", section, key, fmt.Sprintf(format, args...)))
}

// Has reports whether the key is set.
func (f *File) Has(section, key string) bool {
	_, ok := f.raw(section, key)
	return ok
}

// String returns the value, or def when the key is absent.
func (f *File) String(section, key, def string) string {
	if v, ok := f.raw(section, key); ok {
		return v
	}
	return def
}

// Choice returns the value, which must be one of choices (case-insensitive).
func (f *File) Choice(section, key, def string, choices ...string) string {
	v := strings.ToLower(f.String(section, key, def))
	for _, c := range choices {
		if v == c {
			return v
		}
	}
	f.fail(section, key, "%q is not one of %s", v, strings.Join(choices, ", "))
	return def
}

// Bool parses oslo's boolean spellings.
func (f *File) Bool(section, key string, def bool) bool {
	v, ok := f.raw(section, key)
	if !ok || v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true
	case "false", "no", "off", "0":
		return false
	}
	f.fail(section, key, "%q is not a boolean (true/false)", v)
	return def
}

// Int parses an integer within [min, max].
func (f *File) Int(section, key string, def, min, max int) int {
	v, ok := f.raw(section, key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		f.fail(section, key, "%q is not an integer", v)
		return def
	}
	if n < min || n > max {
		f.fail(section, key, "%d is out of range [%d, %d]", n, min, max)
		return def
	}
	return n
}

// Seconds parses a number of seconds, oslo's usual unit for durations; a Go
// duration ("1m30s") is accepted too.
func (f *File) Seconds(section, key string, def time.Duration) time.Duration {
	v, ok := f.raw(section, key)
	if !ok || v == "" {
		return def
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d
	}
	f.fail(section, key, "%q is not a number of seconds", v)
	return def
}

// List parses a comma-separated list, trimming blanks.
func (f *File) List(section, key string, def []string) []string {
	v, ok := f.raw(section, key)
	if !ok {
		return def
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Err returns every problem the getters met, or nil.
func (f *File) Err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration %s: %w", f.path, errors.Join(f.errs...))
}
