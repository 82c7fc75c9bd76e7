package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"opendev.org/x/arca/keyservice"
)

// requireJSON checks the request's media type, ignoring parameters such as
// charset (Barbican accepts "application/json; charset=utf-8").
func requireJSON(contentType string) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return keyservice.Errorf(keyservice.ErrUnsupportedType, "Unsupported Media Type: the request body must be application/json.")
	}
	return nil
}

// decodeObject parses a JSON object body into its raw members. Invalid UTF-8
// is refused rather than silently replaced, so a payload is never altered.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, invalid("Malformed JSON")
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, invalid("Malformed JSON")
	}
	if dec.More() {
		return nil, invalid("Malformed JSON")
	}
	return obj, nil
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// optString reads an optional string member; null and absent are nil.
func optString(obj map[string]json.RawMessage, key string) (*string, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	if s, ok := plainJSONString(raw); ok {
		return &s, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalid(fmt.Sprintf("Invalid '%s': must be a string.", key))
	}
	return &s, nil
}

// plainJSONString returns the value of raw, a member decodeObject took from
// a valid JSON document, when it is a string without escapes: the bytes
// between its quotes, as json.Unmarshal would give them (the document is
// valid UTF-8 and JSON, so nothing in them needs checking), without its
// reflection. Anything else is left to json.Unmarshal.
func plainJSONString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// optInt reads an optional JSON integer: "256" (a string) and 256.5 are
// refused, as Barbican's schema does.
func optInt(obj map[string]json.RawMessage, key string, min, max int) (*int, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	// encoding/json decodes "256" (a string) into a json.Number; Barbican's
	// schema refuses it, so look at the token itself first.
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || (trimmed[0] != '-' && (trimmed[0] < '0' || trimmed[0] > '9')) {
		return nil, invalid(fmt.Sprintf("Invalid '%s': must be an integer.", key))
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return nil, invalid(fmt.Sprintf("Invalid '%s': must be an integer.", key))
	}
	v, err := n.Int64()
	if err != nil || v < int64(min) || v > int64(max) {
		return nil, invalid(fmt.Sprintf("Invalid '%s': must be an integer from %d to %d.", key, min, max))
	}
	i := int(v)
	return &i, nil
}

// ParseTimestamp reads an ISO 8601 date as Barbican accepts it: with or
// without fractional seconds and zone (no zone means UTC). The result is UTC.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	layouts := []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04:05Z0700",
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04",
		"2006-01-02",
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			// A date at the end of year 9999 with a zone west of UTC is in
			// year 10000 in UTC, which neither database nor Python's
			// datetime holds (a 500 from the insert).
			if t.UTC().Year() > 9999 {
				return time.Time{}, fmt.Errorf("%q is after year 9999 in UTC", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date", s)
}

// FormatTimestamp renders a time the way Barbican (Python isoformat on a
// naive UTC datetime) does: no zone designator, microseconds only when set.
// gophercloud and barbicanclient both fail on a trailing "Z".
func FormatTimestamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}

// normalizeContentType maps a payload media type to the form Arca stores,
// and reports whether it carries binary data (which must be base64 in JSON).
// Only charset=utf-8 is accepted as a parameter of text/plain.
func normalizeContentType(contentType string) (normalized string, binary bool, err error) {
	mt, params, perr := mime.ParseMediaType(contentType)
	if perr != nil {
		return "", false, perr
	}
	switch mt {
	case keyservice.ContentTypeText:
		for k, v := range params {
			if k != "charset" || !strings.EqualFold(v, "utf-8") {
				return "", false, fmt.Errorf("unsupported parameter %s=%s", k, v)
			}
		}
		return keyservice.ContentTypeText, false, nil
	case keyservice.ContentTypeBinary, keyservice.ContentTypePKCS8, keyservice.ContentTypePKIX:
		if len(params) != 0 {
			return "", false, fmt.Errorf("unexpected parameters")
		}
		return mt, true, nil
	}
	return "", false, fmt.Errorf("unsupported type %s", mt)
}
