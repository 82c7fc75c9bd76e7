package swiftfilter

import (
	"bytes"
	"encoding/json"
	"html"
	"strings"
)

// jsonSealedFields are the fields of a JSON listing entry that may hold
// sealed values, and the field each was sealed for: the hash, SLO's
// slo_etag (in quotes, as SLO shows it) and a static symlink's target ETag.
var jsonSealedFields = map[string]string{"hash": "etag", "slo_etag": "slo_etag", "symlink_etag": "symlink_target_etag"}

// processJSON rewrites the whole entries at the start of b.in, copying
// what lies between them ('[', ',', whitespace, ']'), and returns how much
// of b.in it consumed.
func (b *listingBody) processJSON() (int, error) {
	in, done := b.in, 0
	for {
		start := bytes.IndexByte(in[done:], '{')
		if start < 0 {
			b.out = append(b.out, in[done:]...)
			return len(in), nil
		}
		start += done
		b.out = append(b.out, in[done:start]...)
		end := jsonObjectEnd(in[start:])
		if end < 0 {
			return start, nil
		}
		end += start
		out, err := b.rewriteJSONEntry(in[start:end])
		if err != nil {
			return 0, err
		}
		b.out = append(b.out, out...)
		done = end
	}
}

// jsonObjectEnd returns the length of the JSON object that e starts with,
// -1 when it does not end within e.
func jsonObjectEnd(e []byte) int {
	depth, inStr, esc := 0, false, false
	for i, c := range e {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// jsonString returns the end (after the closing quote) of the JSON string
// that e[i] opens, -1 when there is none.
func jsonString(e []byte, i int) int {
	if i >= len(e) || e[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(e); j++ {
		switch e[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

type span struct{ start, end int } // of a string's content, quotes excluded

// jsonEntryFields returns the string values of an entry's top-level
// fields that the filter reads: name, version_id and jsonSealedFields.
func jsonEntryFields(e []byte) map[string]span {
	out := map[string]span{}
	i := 1 // after '{'
	for i < len(e) {
		for i < len(e) && (e[i] == ' ' || e[i] == '\t' || e[i] == '\n' || e[i] == '\r' || e[i] == ',') {
			i++
		}
		kEnd := jsonString(e, i)
		if kEnd < 0 {
			return out
		}
		key := string(e[i+1 : kEnd-1])
		i = kEnd
		for i < len(e) && (e[i] == ' ' || e[i] == ':' || e[i] == '\t' || e[i] == '\n' || e[i] == '\r') {
			i++
		}
		if i < len(e) && e[i] == '"' {
			vEnd := jsonString(e, i)
			if vEnd < 0 {
				return out
			}
			if _, want := jsonSealedFields[key]; want || key == "name" || key == "version_id" {
				out[key] = span{i + 1, vEnd - 1}
			}
			i = vEnd
			continue
		}
		// a number, literal or nested value: skip to the next field
		for depth := 0; i < len(e); i++ {
			c := e[i]
			if c == '"' {
				if j := jsonString(e, i); j > 0 {
					i = j - 1
				}
				continue
			}
			if c == '{' || c == '[' {
				depth++
			} else if c == '}' || c == ']' {
				if depth == 0 {
					break
				}
				depth--
			} else if c == ',' && depth == 0 {
				break
			}
		}
	}
	return out
}

// rewriteJSONEntry opens the sealed values of one JSON entry.
func (b *listingBody) rewriteJSONEntry(e []byte) ([]byte, error) {
	if !bytes.Contains(e, []byte(`arca1.`)) {
		return e, nil // nothing sealed: old objects, plain Swift, subdirs
	}
	fields := jsonEntryFields(e)
	nameSpan, ok := fields["name"]
	if !ok {
		return e, nil
	}
	name, ok := jsonUnquote(e[nameSpan.start:nameSpan.end])
	if !ok {
		return e, nil
	}
	var version string
	if vs, ok := fields["version_id"]; ok {
		version = string(e[vs.start:vs.end])
	}
	path := b.opener.objectPath(name, version)
	type edit struct {
		s    span
		with string
	}
	var edits []edit
	for key, field := range jsonSealedFields {
		s, ok := fields[key]
		if !ok {
			continue
		}
		v := string(e[s.start:s.end])
		if key == "slo_etag" {
			// SLO shows it quoted: "\"<value>\""
			inner, ok := strings.CutPrefix(v, `\"`)
			if inner, ok2 := strings.CutSuffix(inner, `\"`); ok && ok2 {
				v, s = inner, span{s.start + 2, s.end - 2}
			}
		}
		if !strings.HasPrefix(v, "arca1.") {
			continue
		}
		opened, err := b.opener.open(path, field, v)
		if err != nil {
			return nil, err
		}
		if opened != v {
			edits = append(edits, edit{s, jsonEscape(opened)})
		}
	}
	if len(edits) == 0 {
		return e, nil
	}
	// apply from the last to the first so that spans stay valid
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && edits[j].s.start > edits[j-1].s.start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	out := append([]byte(nil), e...)
	for _, ed := range edits {
		out = append(out[:ed.s.start], append([]byte(ed.with), out[ed.s.end:]...)...)
	}
	return out, nil
}

// jsonUnquote decodes a JSON string's content.
func jsonUnquote(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), true
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if err := json.Unmarshal(q, &s); err != nil {
		return "", false
	}
	return s, true
}

// jsonEscape is s as JSON string content, non-ASCII escaped as Swift's
// json.dumps does.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r -= 0x10000
				writeU(&b, 0xd800+(r>>10))
				writeU(&b, 0xdc00+(r&0x3ff))
				continue
			}
			writeU(&b, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func writeU(b *strings.Builder, r rune) {
	const hexd = "0123456789abcdef"
	b.WriteString(`\u`)
	b.WriteByte(hexd[r>>12&0xf])
	b.WriteByte(hexd[r>>8&0xf])
	b.WriteByte(hexd[r>>4&0xf])
	b.WriteByte(hexd[r&0xf])
}

// XML listings: Swift's listing_formats writes each object as
// <object><name>…</name><hash>…</hash>…</object>; text never holds a raw
// '<', so the tags are found by search.
var (
	xmlObjectOpen  = []byte("<object>")
	xmlObjectClose = []byte("</object>")
)

// processXML rewrites the whole <object> elements at the start of b.in.
func (b *listingBody) processXML() (int, error) {
	in, done := b.in, 0
	for {
		start := bytes.Index(in[done:], xmlObjectOpen)
		if start < 0 {
			// keep what could be the start of a tag cut by the read
			rest, keep := in[done:], len(in)
			if lt := bytes.LastIndexByte(rest, '<'); lt >= 0 && bytes.HasPrefix(xmlObjectOpen, rest[lt:]) {
				keep = done + lt
			}
			b.out = append(b.out, in[done:keep]...)
			return keep, nil
		}
		start += done
		b.out = append(b.out, in[done:start]...)
		end := bytes.Index(in[start:], xmlObjectClose)
		if end < 0 {
			return start, nil
		}
		end += start + len(xmlObjectClose)
		out, err := b.rewriteXMLEntry(in[start:end])
		if err != nil {
			return 0, err
		}
		b.out = append(b.out, out...)
		done = end
	}
}

// xmlElement returns the span of the text of the first <tag> in e.
func xmlElement(e []byte, tag string) (span, bool) {
	open, closing := "<"+tag+">", "</"+tag+">"
	i := bytes.Index(e, []byte(open))
	if i < 0 {
		return span{}, false
	}
	j := bytes.Index(e[i:], []byte(closing))
	if j < 0 {
		return span{}, false
	}
	return span{i + len(open), i + j}, true
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// rewriteXMLEntry opens the hash of one <object>.
func (b *listingBody) rewriteXMLEntry(e []byte) ([]byte, error) {
	hs, ok := xmlElement(e, "hash")
	if !ok || !bytes.HasPrefix(e[hs.start:hs.end], []byte("arca1.")) {
		return e, nil
	}
	ns, ok := xmlElement(e, "name")
	if !ok {
		return e, nil
	}
	name := string(e[ns.start:ns.end])
	if strings.IndexByte(name, '&') >= 0 {
		name = html.UnescapeString(name)
	}
	var version string
	if vs, ok := xmlElement(e, "version_id"); ok {
		version = string(e[vs.start:vs.end])
	}
	tok := string(e[hs.start:hs.end])
	opened, err := b.opener.open(b.opener.objectPath(name, version), "etag", tok)
	if err != nil || opened == tok {
		return e, err
	}
	out := make([]byte, 0, len(e))
	out = append(out, e[:hs.start]...)
	out = append(out, xmlEscaper.Replace(opened)...)
	return append(out, e[hs.end:]...), nil
}
