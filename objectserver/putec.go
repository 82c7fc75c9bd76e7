package objectserver

import (
	"bufio"
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"opendev.org/x/arca/objectserver/sysmeta"
	"strconv"
	"strings"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
)

// Erasure-coded PUTs (Swift 2.30's multiphase PUT, object/server.py): the
// proxy sends each node its fragment archive as the first document of a
// MIME body, then the metadata footer, and, once every node has answered a
// second 100 Continue (the archive is on disk, not durable), the "put
// commit" document. The archive is stored as <ts>#<frag_index>.data and
// renamed <ts>#<frag_index>#d.data on the commit: until then it is served
// only to a GET naming fragment preferences (diskfile/ecdisk.go). Each
// archive is encrypted as any object's data: its own objcrypt stream with
// a fresh data key (objcrypt/SPEC.md, "Erasure coding").

// continueHeaders offers, in the first 100 Continue, what the proxy asked
// for: the footer and the commit phase (the proxy refuses a node that
// does not offer them).
func continueHeaders(req *request, p *putParams) {
	if p.multiphase {
		req.w.Header().Set("X-Obj-Multiphase-Commit", "yes")
	}
	if p.footers {
		req.w.Header().Set("X-Obj-Metadata-Footer", "yes")
	}
}

// ecFragIndex is the fragment index a PUT stores: the one in the metadata
// (X-Object-Sysmeta-Ec-Frag-Index, from the footer or the headers), else
// the SSYNC sender's X-Backend-Ssync-Frag-Index, as Swift's
// ECDiskFileWriter.put decides. Without one, or out of the policy's
// range, the PUT fails before anything is stored.
func (s *Server) ecFragIndex(req *request, p *putParams, b *putBody) (int, error) {
	v, ok := lookupFold(b.footers, "X-Object-Sysmeta-Ec-Frag-Index")
	if !ok {
		v, ok = lookupFold(p.headers, "X-Object-Sysmeta-Ec-Frag-Index")
	}
	if !ok {
		v, ok = lookupFold(p.headers, "X-Backend-Ssync-Frag-Index")
	}
	if !ok {
		return 0, answer(http.StatusBadRequest, "Missing fragment index for an erasure-coded policy")
	}
	fi, err := diskfile.ValidFragIndex(v, s.disk.ECFragments[req.policy])
	if err != nil {
		return 0, answer(http.StatusBadRequest, "Invalid fragment index")
	}
	return fi, nil
}

// commitPhase ends a multiphase PUT once the archive is on disk: the
// second 100 Continue, then the proxy's "put commit" document (without
// it, 500 as Swift), sent as a body of its own (multiphase.go). It is
// read here rather than by the MIME reader of the first body, whose
// buffered reader keeps that body's end.
func commitPhase(req *request, p *putParams, timeout time.Duration) error {
	if !p.multiphase || req.phased == nil {
		return nil
	}
	// A proxy that never sends the commit gets 408 after client_timeout,
	// as a stalled body does.
	_ = http.NewResponseController(req.w).SetReadDeadline(time.Now().Add(timeout))
	// The first body's end (its last chunk) may still be unread: the
	// MIME reader stopped at the footer's closing boundary line.
	if _, err := io.Copy(io.Discard, io.LimitReader(p.firstBody(req), maxFooterSize)); err != nil {
		return bodyFailed(err)
	}
	// eventlet repeats the first 100 Continue's headers on the second
	continueHeaders(req, p)
	req.w.WriteHeader(http.StatusContinue)
	req.w.Header().Del("X-Obj-Metadata-Footer")
	req.w.Header().Del("X-Obj-Multiphase-Commit")
	if p.closedAfterFooter() {
		// the footer's boundary closed the body: Swift finds no commit
		// document, and the archive stays as it is, not durable
		return answer(http.StatusBadRequest, "couldn't find PUT commit MIME doc")
	}
	req.phased.restart()
	data, err := io.ReadAll(io.LimitReader(p.afterFirstBody(req), maxFooterSize))
	if err != nil {
		return bodyFailed(err)
	}
	doc, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(data))).ReadMIMEHeader()
	if len(data) == 0 || (err != nil && len(doc) == 0) {
		return answer(http.StatusBadRequest, "couldn't find PUT commit MIME doc")
	}
	if doc.Get("X-Document") != "put commit" {
		return answer(http.StatusInternalServerError, "")
	}
	return nil
}

// tailReader keeps the last bytes read of a multiphase PUT's first body,
// where the footer's boundary says whether a commit document follows.
type tailReader struct {
	r    io.Reader
	tail []byte
}

// tailKept is how much of the first body's end tailReader keeps: more
// than a closing boundary line (boundaries are at most 70 bytes).
const tailKept = 128

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= tailKept {
		t.tail = append(t.tail[:0], p[n-tailKept:n]...)
	} else {
		t.tail = append(t.tail, p[:n]...)
		if len(t.tail) > 2*tailKept {
			t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailKept:]...)
		}
	}
	return n, err
}

// firstBody is what reads a multiphase PUT's first body.
func (p *putParams) firstBody(req *request) io.Reader {
	if p.tail != nil {
		return p.tail
	}
	return req.phased
}

// afterFirstBody reads what follows a multiphase PUT's first body, once
// restarted: what the read-ahead under the MIME reader still holds (bytes
// the drain above left unread, before the first body's end), then the
// connection's next chunked body.
func (p *putParams) afterFirstBody(req *request) io.Reader {
	if p.raw == nil || p.raw.Buffered() == 0 {
		return req.phased
	}
	held, _ := p.raw.Peek(p.raw.Buffered())
	return io.MultiReader(bytes.NewReader(bytes.Clone(held)), req.phased)
}

// closedAfterFooter reports whether a multiphase PUT's first body ended
// with the closing boundary ("--boundary--"): Swift's MIME reader then has
// no commit document to read (400 after the second 100 Continue).
func (p *putParams) closedAfterFooter() bool {
	if p.tail == nil {
		return false
	}
	return bytes.HasSuffix(bytes.TrimRight(p.tail.tail, " \t\r\n"), []byte("--"+p.boundary+"--"))
}

// checkFragIndex refuses an archive whose fragment headers carry another
// index than the one it is stored under: Arca's reader checks that the two
// agree (a file moved on disk), so it would never serve it.
func checkFragIndex(b *putBody, fi int) error {
	if b.ecLayout && b.fragIndex >= 0 && b.fragIndex != fi {
		return answer(http.StatusBadRequest, "Fragment archive of index "+strconv.Itoa(b.fragIndex)+" sent as index "+strconv.Itoa(fi))
	}
	return nil
}

// ecDataName is the name a PUT's .data file takes: <ts>.data, or for an
// EC policy <ts>#<frag_index>.data (not durable yet).
func (s *Server) ecDataName(req *request, p *putParams, b *putBody, meta map[string]string) (string, int, error) {
	if s.disk.ECFragments[req.policy] == 0 {
		return req.ts.Internal() + ".data", -1, nil
	}
	fi, err := s.ecFragIndex(req, p, b)
	if err != nil {
		return "", 0, err
	}
	if err := checkFragIndex(b, fi); err != nil {
		return "", 0, err
	}
	meta["X-Object-Sysmeta-Ec-Frag-Index"] = strconv.Itoa(fi)
	return diskfile.ECFileName(req.ts, fi, false), fi, nil
}

// makeDurable marks an EC PUT's archive durable, unless the sender asked
// for no commit (X-Backend-No-Commit: an SSYNC sender's non-durable
// fragment).
func makeDurable(req *request, df *diskfile.DiskFile, fi int) error {
	if fi < 0 || isTrue(req.r.Header.Get("X-Backend-No-Commit")) {
		return nil
	}
	if err := df.MakeDurable(req.ts, fi); err != nil {
		return diskFailed(err)
	}
	return nil
}

// mimeBody reports whether a PUT's body is a MIME document (footers or a
// commit phase follow the object).
func (p *putParams) mimeBody() bool { return p.footers || p.multiphase }

// ecPutHeaders reads a PUT's EC flags.
func ecPutHeaders(h http.Header, p *putParams) {
	p.multiphase = isTrue(h.Get("X-Backend-Obj-Multiphase-Commit"))
}

// readCommitFooters reads the footer document when there is one, leaving
// the commit document for commitPhase.
func readCommitFooters(mr *multipart.Reader, p *putParams) (map[string]string, error) {
	if !p.footers {
		return map[string]string{}, nil
	}
	return readFooterPart(mr, !p.multiphase)
}

// lowerHas reports whether s contains sub, case-insensitively.
func lowerHas(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }

// fragPrefs reads a GET's or HEAD's X-Backend-Fragment-Preferences
// (preferences that are not JSON are none, as Swift's safe_json_loads;
// JSON of the wrong form fails the request, as Swift's DiskFileError).
func fragPrefs(req *request, df *diskfile.DiskFile) (*diskfile.ECOptions, error) {
	v, has := req.r.Header["X-Backend-Fragment-Preferences"]
	if !has {
		return nil, nil
	}
	prefs, err := diskfile.ParseFragPrefs(v[0], 0)
	if err != nil {
		return nil, answer(http.StatusInternalServerError, "")
	}
	// Swift: a value that did not parse as JSON is no preference at all.
	return &diskfile.ECOptions{Prefs: prefs, HasPrefs: prefs != nil || strings.TrimSpace(v[0]) == "[]"}, nil
}

// fragmentsHeader is X-Backend-Fragments: {"<ts>": [indexes], ...} newest
// first, in Python's json.dumps spacing.
func fragmentsHeader(f diskfile.Fragments) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, set := range f {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(set.Timestamp.Internal()))
		b.WriteString(": [")
		for j, fi := range set.Indexes {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(fi))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// The whole object's MD5, X-Object-Sysmeta-Ec-Etag, is on every fragment
// archive: Swift keeps it in clear, Arca seals it as it seals the
// archive's own ETag (objcrypt/SPEC.md, "Erasure coding"), under the
// archive's ETag keys with its own AAD, so that neither sealed value can
// stand in for the other. GET and HEAD open it into the view (metacrypt.go)
// and answer it, and X-Backend-Etag-Is-At finds it there.
const (
	ecEtagHeader = "X-Object-Sysmeta-Ec-Etag"
	ecEtagDomain = "\x00" + ecEtagHeader
	sealedEcEtag = sysmeta.Prefix + sysmeta.EcEtag
)

// sealECEtag replaces an encrypted PUT's X-Object-Sysmeta-Ec-Etag by its
// sealed value.
func sealECEtag(meta map[string]string, b *putBody, path string) error {
	if b.etagKeys == nil {
		return nil
	}
	for k, v := range meta {
		if !strings.EqualFold(k, ecEtagHeader) {
			continue
		}
		delete(meta, k)
		sealed, err := b.etagKeys.EncryptETag(strings.ToLower(strings.TrimSpace(v)), path+ecEtagDomain, nil)
		if err != nil {
			return answer(http.StatusBadRequest, "Invalid "+ecEtagHeader)
		}
		meta[sealedEcEtag] = sealed
	}
	return nil
}

// openECEtag opens an archive's sealed EC ETag ("" when it has none).
func openECEtag(obj *diskfile.Object, cr cryptReader, path string) (string, error) {
	sealed, ok := lookupFold(obj.DataMetadata, sealedEcEtag)
	if !ok {
		return "", nil
	}
	return cr.ETagKeys().OpenETag(sealed, path+ecEtagDomain)
}
