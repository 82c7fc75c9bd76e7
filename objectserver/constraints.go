package objectserver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Swift's constraints (swift.conf [swift-constraints] defaults), which its
// object server enforces on PUT.
const (
	maxObjectNameLength = 1024
	maxMetaNameLength   = 128
	maxMetaValueLength  = 256
	maxMetaCount        = 90
	maxMetaOverallSize  = 4096
	maxHeaderSize       = 8192
)

// checkMetadata is Swift's check_metadata for an object: the message of
// the first header that breaks a limit, or "". Names are as Swift's WSGI
// layer spells them (pythonTitle), since the messages quote them.
func checkMetadata(h http.Header) string {
	count, size := 0, 0
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		name := pythonTitle(k)
		for _, v := range h[k] {
			if len(v) > maxHeaderSize {
				return "Header value too long: " + name[:min(len(name), maxMetaNameLength)]
			}
			if !strings.HasPrefix(strings.ToLower(name), userMetaPrefix) {
				continue
			}
			key := name[len(userMetaPrefix):]
			if key == "" {
				return "Metadata name cannot be empty"
			}
			count++
			size += len(key) + len(v)
			switch {
			case len(key) > maxMetaNameLength:
				return "Metadata name too long: " + userMetaPrefix + key
			case len(v) > maxMetaValueLength:
				return fmt.Sprintf("Metadata value longer than %d: %s%s", maxMetaValueLength, userMetaPrefix, key)
			case count > maxMetaCount:
				return fmt.Sprintf("Too many metadata items; max %d", maxMetaCount)
			case size > maxMetaOverallSize:
				return fmt.Sprintf("Total metadata too large; max %d", maxMetaOverallSize)
			}
		}
	}
	return ""
}
