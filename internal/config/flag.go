package config

import "strings"

// StringList is a repeatable command-line flag (flag.Var): each use appends
// its value, as oslo's --config-file does, so later files override earlier
// ones in the order given. Every Arca binary and tool takes its repeatable
// flags with it.
type StringList []string

// String lists the values given so far.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set appends one value.
func (l *StringList) Set(v string) error { *l = append(*l, v); return nil }
