package api_test

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
)

// side is one of the two key managers the differential test talks to.
type side struct {
	t    *testing.T
	name string
	url  string
}

func (s side) call(method, path, body, accept string) (int, []byte) {
	s.t.Helper()
	if strings.HasPrefix(path, "http") { // a ref: keep only its path
		path = path[strings.Index(path, "/v1/"):]
	}
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	// Both no-auth pipelines read the caller from these headers.
	req.Close = true // uwsgi drops kept-alive connections
	req.Header.Set("X-Project-Id", "diff-project")
	req.Header.Set("X-User-Id", "diff-user")
	req.Header.Set("X-Roles", "member")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s: %v", s.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s side) object(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	st, b := s.call(method, path, body, "")
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("%s %s %s: %d, not JSON: %s", s.name, method, path, st, b)
	}
	return st, m
}

// pairShape is what the comparison looks at in a generated pair: the
// container and, per reference name, the secret's metadata and the PEM
// type of its payload (the keys themselves differ, their form must not).
func (s side) pairShape(containerRef string) map[string]any {
	s.t.Helper()
	st, c := s.object("GET", containerRef, "")
	if st != http.StatusOK {
		s.t.Fatalf("%s: container %d %v", s.name, st, c)
	}
	shape := map[string]any{"type": c["type"], "name": c["name"], "status": c["status"], "consumers": c["consumers"]}
	var names []string
	for _, x := range c["secret_refs"].([]any) {
		ref := x.(map[string]any)
		name := ref["name"].(string)
		names = append(names, name)
		st, sec := s.object("GET", ref["secret_ref"].(string), "")
		if st != http.StatusOK {
			s.t.Fatalf("%s: secret %d %v", s.name, st, sec)
		}
		ct := sec["content_types"].(map[string]any)["default"].(string)
		st, payload := s.call("GET", ref["secret_ref"].(string)+"/payload", "", ct)
		if st != http.StatusOK {
			s.t.Fatalf("%s: payload %d %s", s.name, st, payload)
		}
		form := "raw"
		if b, _ := pem.Decode(payload); b != nil {
			form = b.Type
		}
		shape[name] = map[string]any{"secret_type": sec["secret_type"], "algorithm": sec["algorithm"],
			"bit_length": sec["bit_length"], "mode": sec["mode"], "name": sec["name"], "status": sec["status"],
			"content_types": sec["content_types"], "expiration": sec["expiration"] != nil, "payload": form}
	}
	slices.Sort(names) // Barbican lists in insertion order, Arca by name
	shape["refs"] = names
	return shape
}

// TestAsymmetricOrdersVsBarbican sends the same asymmetric orders to
// arca-api and to a real Barbican 15 and compares the answers: statuses,
// error descriptions, the orders, the containers, the secrets' metadata
// and the form of the generated keys. The differences Arca keeps on
// purpose (docs/compatibility.md) are checked too, so that the document
// stays true.
func TestAsymmetricOrdersVsBarbican(t *testing.T) {
	barbican := testenv.StartBarbican(t)
	arca := newEnv(t, dbconn.SQLite)
	sides := []side{{t, "arca", arca.url}, {t, "barbican", barbican.URL}}
	future := "2099-01-01T00:00:00"
	same := []string{
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048}}`,
		`{"type":"asymmetric","meta":{"name":"kp","algorithm":"rsa","bit_length":2048,"passphrase":"pw1"}}`,
		`{"type":"asymmetric","meta":{"name":"kp","algorithm":"RSA","bit_length":4096,"mode":"cbc","expiration":"` + future + `"}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"passphrase":""}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"passphrase":null}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"pass_phrase":"ignored"}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"payload_content_type":"text/plain"}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"payload_content_type":"application/pkcs8"}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":1000}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"passphrase":5}}`,
		`{"type":"asymmetric","meta":{"algorithm":"ec","bit_length":256}}`,
		`{"type":"asymmetric","meta":{"algorithm":"dh","bit_length":2048}}`,
		`{"type":"asymmetric","meta":{"algorithm":"foo","bit_length":2048}}`,
		`{"type":"asymmetric","meta":{"bit_length":2048}}`,
		`{"type":"asymmetric","meta":{"algorithm":"","bit_length":2048}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa"}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2049}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"payload_content_type":"bogus/x"}}`,
		// Barbican's JSON-schema texts differ from Arca's here; the
		// statuses do not.
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":"2048"}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":0}}`,
		`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"expiration":"2001-01-01T00:00:00"}}`,
	}
	sameText := 18 // the first cases' error descriptions match word for word
	for i, body := range same {
		var got [2]any
		for j, s := range sides {
			got[j] = outcome(s, body, i < sameText)
		}
		if !reflect.DeepEqual(got[0], got[1]) {
			t.Errorf("%s:\n arca:     %s\n barbican: %s", body, jsonString(got[0]), jsonString(got[1]))
		}
	}

	// Where Arca differs on purpose.
	differ := []struct{ body, arca, barbican string }{
		{`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":3072}}`, "ACTIVE", "ERROR"},
		{`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":1024}}`, "ERROR", "ACTIVE"},
		{`{"type":"asymmetric","meta":{"algorithm":"dsa","bit_length":2048}}`, "ERROR", "ACTIVE"},
	}
	for _, d := range differ {
		for j, want := range []string{d.arca, d.barbican} {
			o := outcome(sides[j], d.body, false).(map[string]any)
			if o["order"].(map[string]any)["status"] != want {
				t.Errorf("%s on %s: %s, want %s", d.body, sides[j].name, jsonString(o), want)
			}
		}
	}
	// Barbican stores and echoes the passphrase in the order's meta; Arca
	// never does (checked on Arca's side in TestAsymmetricOrders).
	st, o := sides[1].object("GET", "/v1/orders?limit=5", "")
	if raw, _ := json.Marshal(o); st != http.StatusOK || !strings.Contains(string(raw), `"passphrase":"pw1"`) {
		t.Errorf("Barbican's orders no longer echo the passphrase (update docs/compatibility.md): %d %s", st, raw)
	}
}

// outcome posts an order and describes the result: the status and, for a
// refusal, the description (when exact), for an order its shape and its
// key pair's.
func outcome(s side, body string, exact bool) any {
	s.t.Helper()
	st, m := s.object("POST", "/v1/orders", body)
	if st != http.StatusAccepted {
		res := map[string]any{"status": st}
		if exact {
			res["description"] = m["description"]
		}
		return res
	}
	st, order := s.object("GET", m["order_ref"].(string), "")
	if st != http.StatusOK {
		s.t.Fatalf("%s: order %d %v", s.name, st, order)
	}
	res := map[string]any{"status": http.StatusAccepted, "order": orderShape(order)}
	if ref, ok := order["container_ref"].(string); ok {
		res["pair"] = s.pairShape(ref)
	}
	return res
}
