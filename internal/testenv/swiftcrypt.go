package testenv

import (
	"crypto/rand"
	_ "embed" // swift-encryption.conf
	"encoding/base64"
	"strings"
	"testing"
)

// swiftEncryptionConf is Swift's own encryption's sections, shared with
// tools/bench-report.sh.
//
//go:embed swift-encryption.conf
var swiftEncryptionConf string

// swiftEncryptionTail is where keymaster and encryption go in a pipeline:
// just before its last proxy-logging, as Swift's sample configuration has
// them.
const (
	swiftEncryptionTail = " proxy-logging proxy-server"
	swiftEncryptionWith = " keymaster encryption proxy-logging proxy-server"
)

// WithSwiftEncryption is the proxy configuration conf with Swift's own
// encryption in its pipeline: keymaster (a fresh random root secret) and
// encryption just before the last proxy-logging, as tools/bench-report.sh's
// swift-encryption proxy. It fails the test when conf's pipeline does not
// end in "proxy-logging proxy-server".
func WithSwiftEncryption(t testing.TB, conf string) string {
	t.Helper()
	line := pipelineLine.FindString(conf)
	if !strings.HasSuffix(line, swiftEncryptionTail) {
		t.Fatalf("testenv: the pipeline %q does not end in %q", line, strings.TrimSpace(swiftEncryptionTail))
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sections := strings.ReplaceAll(swiftEncryptionConf, "@ROOT_SECRET@", base64.StdEncoding.EncodeToString(secret))
	conf = strings.Replace(conf, line, strings.TrimSuffix(line, swiftEncryptionTail)+swiftEncryptionWith, 1)
	return strings.TrimRight(conf, "\n") + "\n" + sections
}
