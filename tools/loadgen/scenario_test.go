package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestStoreBody: the hand-written body is what encoding/json makes of it.
func TestStoreBody(t *testing.T) {
	for _, size := range []int{0, 5, 32, 100} {
		e := &Env{PayloadSize: size}
		for _, w := range []int{-1, 0, 15} {
			got := e.storeBody(w, 123456)
			tag := fmt.Sprintf("w%d-%d-", w, 123456)
			want, _ := json.Marshal(map[string]string{
				"name": "loadgen", "payload": tag + strings.Repeat("x", max(size-len(tag), 0)), "payload_content_type": "text/plain",
			})
			if !bytes.Equal(got, want) {
				t.Errorf("size %d worker %d: %s, want %s", size, w, got, want)
			}
		}
	}
}
