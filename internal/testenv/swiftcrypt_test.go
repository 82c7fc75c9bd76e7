package testenv_test

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// TestWithSwiftEncryption: keymaster and encryption go just before the
// last proxy-logging, their sections come with a root secret of 32 random
// bytes, fresh for each configuration, and nothing else changes.
func TestWithSwiftEncryption(t *testing.T) {
	conf := "[DEFAULT]\nbind_port = 1\n[pipeline:main]\npipeline = catch_errors proxy-logging authtoken keystoneauth proxy-logging proxy-server\n[app:proxy-server]\nuse = egg:swift#proxy\n"
	got := testenv.WithSwiftEncryption(t, conf)
	if !strings.Contains(got, "\npipeline = catch_errors proxy-logging authtoken keystoneauth keymaster encryption proxy-logging proxy-server\n") {
		t.Fatalf("pipeline not as Swift's sample has it:\n%s", got)
	}
	if !strings.HasPrefix(got, strings.Replace(conf, "keystoneauth proxy-logging", "keystoneauth keymaster encryption proxy-logging", 1)) {
		t.Fatalf("the rest of the configuration changed:\n%s", got)
	}
	secret := regexp.MustCompile(`(?m)^encryption_root_secret = (\S+)$`)
	m := secret.FindStringSubmatch(got)
	if m == nil || !strings.Contains(got, "[filter:keymaster]\nuse = egg:swift#keymaster\n") || !strings.Contains(got, "[filter:encryption]\nuse = egg:swift#encryption\n") {
		t.Fatalf("keymaster and encryption sections missing:\n%s", got)
	}
	if b, err := base64.StdEncoding.DecodeString(m[1]); err != nil || len(b) != 32 {
		t.Fatalf("root secret %q: %d bytes, %v", m[1], len(b), err)
	}
	if again := secret.FindStringSubmatch(testenv.WithSwiftEncryption(t, conf)); again[1] == m[1] {
		t.Fatal("two configurations share a root secret")
	}
}
