// Package config reads oslo-style INI configuration files, the format
// OpenStack operators already write for every other service.
//
// It wraps gopkg.in/ini.v1 with the load options that make it read values the
// way oslo.config does (a '#' inside a value is part of the value, quotes are
// kept, Python-style continuation lines work) and adds typed getters that
// collect every bad value into one error, so an operator sees all mistakes at
// once instead of one per restart.
package config
