package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"
)

// The decoders below see every byte a client sends. They must never panic,
// and every refusal must be a client error (4xx), never an internal one.

func requireClientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if status := statusOf(err); status < 400 || status >= 500 {
		t.Fatalf("decoder error %v maps to %d, want 4xx", err, status)
	}
}

func FuzzDecodeSecretSpec(f *testing.F) {
	f.Add([]byte(`{"name":"n","payload":"p","payload_content_type":"text/plain","bit_length":256,"expiration":"2030-01-01T00:00:00"}`))
	f.Add([]byte(`{"payload":"AAEC","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`))
	f.Add([]byte(`{"bit_length":"256"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := decodeSecretSpec(body)
		requireClientError(t, err)
		if err == nil && spec.Payload != nil && spec.PayloadContentType == "" {
			t.Fatal("payload accepted without a content type")
		}
	})
}

// FuzzOptString: the string members of a body decode as json.Unmarshal
// decodes them, whatever shortcut optString takes.
func FuzzOptString(f *testing.F) {
	for _, v := range []string{`"plain"`, `"esc\"aped"`, `"\u00e9t\u00e9"`, `""`, `"é"`, `12`, `null`, `["a"]`, `{"a":"b"}`, `true`, `" spaced "`} {
		f.Add([]byte(`{"k":` + v + `}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, err := decodeObject(body)
		if err != nil {
			return
		}
		got, err := optString(obj, "k")
		requireClientError(t, err)
		raw, present := obj["k"]
		var want *string
		if present && !isNull(raw) {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				want = &s
			}
		}
		switch {
		case (got == nil) != (want == nil):
			t.Fatalf("optString(%s) = %v, json.Unmarshal gives %v", raw, got, want)
		case got != nil && *got != *want:
			t.Fatalf("optString(%s) = %q, json.Unmarshal gives %q", raw, *got, *want)
		case got == nil && err == nil && want == nil && present && !isNull(raw):
			t.Fatalf("optString(%s): no value and no error", raw)
		}
	})
}

func FuzzDecodeOrderSpec(f *testing.F) {
	f.Add([]byte(`{"type":"key","meta":{"algorithm":"aes","bit_length":256,"mode":"cbc"}}`))
	f.Add([]byte(`{"type":"key","meta":{"expiration":"2030-01-01T00:00:00Z","bit_length":1e3}}`))
	f.Add([]byte(`{"meta":null}`))
	f.Add([]byte(`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"passphrase":"pw"}}`))
	f.Add([]byte(`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"passphrase":["a"],"pass_phrase":1}}`))
	f.Add([]byte(`{"type":"asymmetric","meta":{"passphrase":"\u0000"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := decodeOrderSpec(body)
		requireClientError(t, err)
		// The passphrase is carried apart from the meta, which is stored
		// and shown: no passphrase ever reaches it.
		if err == nil && len(spec.Passphrase) > 0 {
			if meta, _ := json.Marshal(spec.Meta); bytes.Contains(meta, []byte("passphrase")) {
				t.Fatalf("meta holds the passphrase: %s", meta)
			}
		}
		if err == nil && spec.PassphraseNotString && spec.Passphrase != nil {
			t.Fatal("a passphrase both refused and kept")
		}
	})
}

func FuzzListQuery(f *testing.F) {
	f.Add("limit=5&offset=10&name=a&alg=aes&bits=256&sort=name:desc,created&created=gt:2020-01-01T00:00:00,lt:2030-01-01")
	f.Add("limit=-1&offset=99999999999999999999")
	f.Add("sort=::&expiration=gte:")
	f.Add("acl_only=True&acl_only=maybe")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		filter, err := parseSecretFilter(q)
		requireClientError(t, err)
		if err == nil && (filter.Limit < 1 || filter.Limit > maxLimit || filter.Offset < 0) {
			t.Fatalf("paging out of bounds: limit %d offset %d", filter.Limit, filter.Offset)
		}
		aclOnly, err := parseBool(q, "acl_only")
		requireClientError(t, err)
		if aclOnly && q.Get("acl_only") == "" {
			t.Fatal("acl_only true without the parameter")
		}
	})
}

func FuzzVersionHeader(f *testing.F) {
	f.Add("key-manager 1.1")
	f.Add("key-manager latest, compute 2.1")
	f.Add("key-manager 1.")
	f.Fuzz(func(t *testing.T, header string) {
		v, ok, err := ParseVersionHeader(header)
		if err != nil && ok {
			t.Fatal("error and ok together")
		}
		if ok && (v.Major < 0 || v.Minor < 0) {
			t.Fatalf("negative version %v", v)
		}
	})
}

func FuzzTimestamp(f *testing.F) {
	f.Add("2026-11-27T18:08:12.599033")
	f.Add("2026-11-27T18:08:12+01:00")
	f.Add("2026-11-27")
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		if ts.Location().String() != "UTC" {
			t.Fatalf("%q parsed to a non-UTC time", s)
		}
		// What we print, we read back.
		back, err := ParseTimestamp(FormatTimestamp(ts))
		if err != nil || !back.Equal(ts.Truncate(1000)) {
			t.Fatalf("%q: formatted %q reads back as %v, %v", s, FormatTimestamp(ts), back, err)
		}
	})
}
