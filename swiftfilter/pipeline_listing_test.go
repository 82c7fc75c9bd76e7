package swiftfilter

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDecisionOpenListing opens a listing page's sealed values over the
// decision socket as the pipeline middleware asks: each opens as the
// reverse proxy's listing step opens it (bound to path and field), a value
// that does not open is answered null, and the key service down fails the
// listing.
func TestDecisionOpenListing(t *testing.T) {
	keys := &listingKeys{}
	sock := startDecisions(t, keys, PipelineSettings{})
	conn := dialDecisions(t, sock)
	ask := func(req map[string]any) map[string]any {
		t.Helper()
		line, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return conn.ask(t, string(line))
	}
	const md5A, md5B = "0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"
	item := func(name, field, tok string) map[string]string {
		return map[string]string{"name": name, "field": field, "token": tok}
	}
	items := []map[string]string{
		item("a", "etag", seal(t, "k1", "a", "etag", md5A)),
		item("é", "slo_etag", seal(t, "k2", "é", "slo_etag", md5B)),
		item("l", "symlink_target_etag", seal(t, "k1", "l", "symlink_target_etag", md5A)),
		item("a", "slo_etag", seal(t, "k1", "a", "etag", md5A)), // sealed for another field
		item("b", "etag", seal(t, "k1", "a", "etag", md5A)),     // for another object
		item("g", "etag", seal(t, "gone", "g", "etag", md5A)),   // destroyed key
		item("n", "etag", "arca1.k1.AAAA"),                      // does not open
	}
	m := ask(map[string]any{"v": 1, "op": "open_listing", "account": "AUTH_demo", "container": "c", "items": items})
	want := []any{md5A, md5B, md5A, nil, nil, nil, nil}
	got, _ := m["values"].([]any)
	if m["v"] != float64(1) || m["error"] != nil || len(got) != len(want) {
		t.Fatalf("open_listing: %v, want values %v", m, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d (%v): %v, want %v", i, items[i], got[i], want[i])
		}
	}
	// Another container: bound to the path, nothing opens.
	m = ask(map[string]any{"v": 1, "op": "open_listing", "account": "AUTH_demo", "container": "d", "items": items[:1]})
	if got, _ := m["values"].([]any); len(got) != 1 || got[0] != nil {
		t.Errorf("a token of container c listed in d: %v, want [null]", m)
	}
	// An account that is not the filter's: nothing is asked of the keys.
	before := keys.fetches.Load()
	m = ask(map[string]any{"v": 1, "op": "open_listing", "account": "OTHER_demo", "container": "c", "items": items[:1]})
	if got, _ := m["values"].([]any); len(got) != 1 || got[0] != nil || keys.fetches.Load() != before {
		t.Errorf("another reseller's account: %v, %d key fetches, want [null] and none", m, keys.fetches.Load()-before)
	}
	keys.down.Store(true)
	m = ask(map[string]any{"v": 1, "op": "open_listing", "account": "AUTH_demo", "container": "c", "items": items[:1]})
	if m["status"] != float64(503) || m["values"] != nil {
		t.Errorf("key service down: %v, want status 503 and no values", m)
	}
	if m := ask(map[string]any{"v": 1, "op": "open_listing", "account": "AUTH_d\u0100", "container": "c"}); m["error"] == nil {
		t.Errorf("an account that is not a WSGI string: %v, want an error", m)
	}
	if !conn.closed() {
		t.Error("the connection stayed open after a protocol fault")
	}
	if ans := dialDecisions(t, sock).roundTrip(t, `{"v":1,"op":"nope"}`); !strings.Contains(ans, `"error"`) {
		t.Errorf("unknown op: %q, want an error", ans)
	}
}
