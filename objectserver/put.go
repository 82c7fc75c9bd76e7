package objectserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/internal/etag"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// putParams is what a PUT's headers say, checked before anything is read.
type putParams struct {
	contentType string
	footers     bool              // the metadata follows the body in a MIME footer
	multiphase  bool              // a commit document follows (EC; putec.go)
	expected    int64             // the body's length, or -1 when unknown
	deleteAt    int64             // X-Delete-At, 0 when none
	headers     map[string]string // the first value of each request header
	boundary    string            // X-Backend-Obj-Multipart-Mime-Boundary
	tail        *tailReader       // a multiphase PUT's first body (putec.go)
	raw         *bufio.Reader     // a MIME body's bytes, read ahead (bodySource)
}

// putOriginal is the object a PUT replaces, if any.
type putOriginal struct {
	ts     diskfile.Timestamp // of the object or its tombstone
	meta   map[string]string
	view   *plainView // nil when there is none this server would serve
	exists bool
}

// putBody is what reading the body found.
type putBody struct {
	n                   int64  // plaintext bytes
	plainMD5, storedMD5 string // hex; storedMD5 is Swift's ETag on disk
	storedLen           int64
	crypt               *sysmeta.Object // nil when stored in the clear
	footers             map[string]string
	// ecLayout: stored in objcrypt's EC layout, the fragment index its
	// headers carry in fragIndex (-1: no fragment)
	ecLayout  bool
	fragIndex int
	// etagKeys seal an encrypted body's ETag and the middleware sysmeta
	// that holds MD5s (metacrypt.go, putec.go); nil in the clear.
	etagKeys *objcrypt.ETagKeys
}

// handlePut stores an object: parse, preconditions, key, body, metadata,
// commit, notify. Nothing is read from the body before the preconditions
// and the key are settled.
func (s *Server) handlePut(req *request) error {
	verbatim, err := s.ssyncSealed(req)
	if err != nil {
		return err
	}
	p, err := s.parsePut(req)
	if err != nil {
		return err
	}
	df, err := s.disk.Object(req.device, req.partition, req.policy, req.account, req.container, req.object)
	if err != nil {
		return diskFailed(err)
	}
	orig, err := s.putPreconditions(req, df)
	if err != nil {
		return err
	}
	if verbatim {
		return s.putSealed(req, p, orig, func() (sealedTarget, error) { return s.newPutTarget(req, p, df, orig) })
	}
	var key objcrypt.ProjectKey
	if s.cfg.Encrypt {
		if key, err = s.writeKey(req.ctx, req.account, req.r.Header); err != nil {
			return keyFailed(err)
		}
		defer clear(key.Key)
	}
	if p.mimeBody() && p.boundary == "" {
		// before the 100 Continue, as Swift
		return answer(http.StatusBadRequest, "no MIME boundary")
	}
	wr, err := s.startPutFile(req, p, df)
	if err != nil {
		return err
	}
	defer wr.Abort()
	defer p.releaseRaw()
	b, err := s.readPutBody(req, p, wr.File(), df.Name, key)
	if err != nil {
		return err
	}
	meta, err := s.putMetadata(req, p, b, key, df.Name)
	if err != nil {
		return err
	}
	name, fi, err := s.ecDataName(req, p, b, meta)
	if err != nil {
		return err
	}
	if err := s.commitPut(req, wr, key, name, meta); err != nil {
		return err
	}
	if err := commitPhase(req, p, s.cfg.ClientTimeout); err != nil {
		return err
	}
	if err := makeDurable(req, df, fi); err != nil {
		return err
	}
	s.notifyPut(req, p, orig, b, meta, key)
	req.w.Header().Set("Etag", quoteEtag(b.plainMD5))
	textError(req.w, req.r, http.StatusCreated, "")
	return nil
}

// startPutFile creates the object's new file, allocates the length
// announced and asks for the body (100 Continue), in Swift's order: the
// allocation before the body is first read (a full device answers 507 to
// a proxy that has sent nothing yet, and the proxy goes to a handoff), but
// after the 100 Continue for a MIME body, whose first document's headers
// Swift reads first. The allocation is the fragment archive's length for
// EC; stored encrypted, the object is larger by its framing, which is
// allocated as it is written: never more than will be written (see
// diskfile.Writer.Allocate). On error nothing is left of the file.
func (s *Server) startPutFile(req *request, p *putParams, df *diskfile.DiskFile) (*diskfile.Writer, error) {
	wr, err := df.Create()
	if err != nil {
		return nil, diskFailed(err)
	}
	if err := s.allocateAndAsk(req, p, wr); err != nil {
		wr.Abort()
		return nil, err
	}
	return wr, nil
}

func (s *Server) allocateAndAsk(req *request, p *putParams, wr *diskfile.Writer) error {
	if !p.mimeBody() {
		if err := wr.Allocate(p.expected); err != nil {
			return diskFailed(err)
		}
	}
	if p.multiphase {
		if err := s.takeOver(req); err != nil {
			return err
		}
	}
	sendContinue(req, p)
	if p.mimeBody() {
		if err := wr.Allocate(p.expected); err != nil {
			return diskFailed(err)
		}
	}
	return nil
}

// parsePut checks a PUT's headers in the order of Swift's
// check_object_creation: size, length, name, X-Delete-At, Content-Type,
// metadata.
func (s *Server) parsePut(req *request) (*putParams, error) {
	r, h := req.r, req.r.Header
	p := &putParams{contentType: h.Get("Content-Type")} // headers once X-Delete-After is applied
	chunked := len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
	p.footers = isTrue(h.Get("X-Backend-Obj-Metadata-Footer"))
	p.boundary = h.Get("X-Backend-Obj-Multipart-Mime-Boundary")
	ecPutHeaders(h, p)
	p.expected = r.ContentLength
	if p.mimeBody() {
		p.expected = -1
		if v := h.Get("X-Backend-Obj-Content-Length"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, answer(http.StatusBadRequest, "Invalid X-Backend-Obj-Content-Length")
			}
			p.expected = n
		}
	}
	if p.expected > s.cfg.MaxFileSize {
		return nil, answer(http.StatusRequestEntityTooLarge, "Your request is too large.")
	}
	if h.Get("Content-Length") == "" && !chunked {
		return nil, answer(http.StatusLengthRequired, "Missing Content-Length header.")
	}
	if len(req.object) > maxObjectNameLength {
		return nil, answer(http.StatusBadRequest, fmt.Sprintf("Object name length of %d longer than %d", len(req.object), maxObjectNameLength))
	}
	if err := deleteAfter(req); err != nil {
		return nil, err
	}
	p.headers = requestHeaders(req)
	var err error
	if p.deleteAt, err = parseNewDeleteAt(req, true); err != nil {
		return nil, err
	}
	// Swift's WSGI server sees a missing Content-Type as an empty one.
	if p.contentType == "" || !utf8.ValidString(p.contentType) {
		return nil, answer(http.StatusBadRequest, "Invalid Content-Type")
	}
	if msg := checkMetadata(h); msg != "" {
		return nil, answer(http.StatusBadRequest, msg)
	}
	return p, nil
}

// parseNewDeleteAt reads a PUT's or POST's X-Delete-At, which must be
// after the request's time (for a PUT, not even at it, as Swift's
// check_delete_headers; the replicator's PUT may be past it).
func parseNewDeleteAt(req *request, put bool) (int64, error) {
	at, ok := parseDeleteAt(req.r.Header.Get("X-Delete-At"))
	if !ok {
		return 0, answer(http.StatusBadRequest, "Non-integer X-Delete-At")
	}
	past := at*100000 < req.ts.Raw
	if put {
		past = at*100000 <= req.ts.Raw && !isTrue(req.r.Header.Get("X-Backend-Replication"))
	}
	if at != 0 && past {
		return 0, answer(http.StatusBadRequest, "X-Delete-At in past")
	}
	return at, nil
}

// deleteAfter turns a PUT's X-Delete-After into the X-Delete-At it means
// (seconds after the request's time), as Swift's object server does.
func deleteAfter(req *request) error {
	h := req.r.Header
	v, ok := h["X-Delete-After"]
	if !ok {
		return nil
	}
	after, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if err != nil {
		return answer(http.StatusBadRequest, "Non-integer X-Delete-After")
	}
	// Swift's normalize_delete_at_timestamp: whole seconds, ten digits.
	at := min(max(0, req.ts.Raw/100000+after), 9999999999)
	if at*100000 <= req.ts.Raw {
		return answer(http.StatusBadRequest, "X-Delete-After in past")
	}
	h.Set("X-Delete-At", fmt.Sprintf("%010d", at))
	h.Del("X-Delete-After")
	return nil
}

// putPreconditions looks at the object a PUT would replace: the PUT must
// be newer (409), and If-None-Match must not match it (412).
func (s *Server) putPreconditions(req *request, df *diskfile.DiskFile) (*putOriginal, error) {
	orig := &putOriginal{}
	obj, err := df.Open()
	var nf *diskfile.NotFoundError
	switch {
	case err == nil:
		orig.exists = true
		orig.ts, orig.meta = obj.DataTS, obj.Metadata
		// only for If-None-Match (so only looked at with one): an object
		// this server would refuse to serve is not quarantined here, the
		// next GET or HEAD does it
		if req.r.Header.Get("If-None-Match") != "" {
			if v, err := s.storedView(obj); err == nil {
				orig.view = v
			}
		}
		defer obj.Close()
	case errors.As(err, &nf):
		if nf.Tombstone != nil {
			orig.ts = *nf.Tombstone
		}
	default:
		return nil, diskFailed(err)
	}
	if !orig.ts.IsZero() && !req.ts.After(orig.ts) {
		return nil, answer(http.StatusConflict, "").with("X-Backend-Timestamp", orig.ts.Internal())
	}
	if inm := req.r.Header.Get("If-None-Match"); inm != "" && orig.exists {
		match := etagMatches(inm, "")
		if orig.view != nil {
			if match, err = s.putOriginalMatch(req, obj, orig.view, inm); err != nil {
				return nil, err
			}
		}
		if match {
			return nil, answer(http.StatusPreconditionFailed, "")
		}
	}
	return orig, nil
}

// sendContinue answers 100 Continue, offering footers and the commit
// phase, to a proxy that sends its metadata after the body.
func sendContinue(req *request, p *putParams) {
	if p.mimeBody() && lowerHas(req.r.Header.Get("Expect"), "100-continue") {
		continueHeaders(req, p)
		req.w.WriteHeader(http.StatusContinue)
		req.w.Header().Del("X-Obj-Metadata-Footer")
		req.w.Header().Del("X-Obj-Multiphase-Commit")
	}
}

// readPutBody stores the body in f, encrypted under key when encryption
// is on, reads the footers, and checks the length and ETag announced.
func (s *Server) readPutBody(req *request, p *putParams, f *os.File, name string, key objcrypt.ProjectKey) (*putBody, error) {
	src, mr, err := s.bodySource(req, p)
	if err != nil {
		return nil, err
	}
	var b *putBody
	if s.cfg.Encrypt {
		if ec, body := s.ecLayoutSource(req, src); ec {
			b, err = s.encryptECBody(req, f, name, key, body)
		} else {
			b, err = s.encryptBody(req, f, name, key, body)
		}
	} else {
		b, err = storePlainBody(f, src)
	}
	if err != nil {
		return nil, err
	}
	if p.expected >= 0 && b.n != p.expected {
		return nil, answer(499, "")
	}
	b.footers = map[string]string{}
	if p.mimeBody() {
		if b.footers, err = readCommitFooters(mr, p); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errFooterChecksum) {
				code = http.StatusUnprocessableEntity
			}
			return nil, answer(code, err.Error())
		}
	}
	wantEtag := unquoteEtag(req.r.Header.Get("Etag"))
	if v, ok := lookupFold(b.footers, "Etag"); ok {
		wantEtag = unquoteEtag(v)
	}
	if wantEtag != "" && !strings.EqualFold(wantEtag, b.plainMD5) {
		return nil, answer(http.StatusUnprocessableEntity, "")
	}
	if b.storedMD5 == "" {
		b.storedMD5 = b.plainMD5 // stored_etag = false: ETag is the plaintext MD5 (the auditor will object)
	}
	return b, nil
}

// bodySource is the object's bytes in the request body: all of it, or its
// first MIME part when footers follow (mr then reads them).
func (s *Server) bodySource(req *request, p *putParams) (io.Reader, *multipart.Reader, error) {
	body := &deadlineReader{r: req.r.Body, rc: http.NewResponseController(req.w), timeout: s.cfg.ClientTimeout, max: s.cfg.MaxFileSize}
	if !p.mimeBody() {
		return body, nil, nil
	}
	if p.boundary == "" {
		return nil, nil, answer(http.StatusBadRequest, "no MIME boundary")
	}
	// multipart reads its source 4 KiB at a time (its own buffer): on
	// the connection that is a read system call, and a read deadline
	// armed, per 4 KiB. A large buffer under it reads what the proxy has
	// sent in one call, arming the deadline only then; the bytes, and
	// when the tail and the size check see them, are the same.
	p.raw = mimeBufPool.Get().(*bufio.Reader)
	p.raw.Reset(&armedReader{r: body.r, rc: body.rc, timeout: body.timeout})
	body.r, body.rc = p.raw, nil
	if p.multiphase {
		p.tail = &tailReader{r: body.r}
		body.r = p.tail
	}
	mr := multipart.NewReader(body, p.boundary)
	part, err := mr.NextRawPart()
	if err != nil || part.Header.Get("X-Document") != "object body" {
		return nil, nil, answer(http.StatusBadRequest, "bad object body part")
	}
	return part, mr, nil
}

// encryptBody encrypts src into f, hashing the plaintext (and, with
// stored_etag, the stored bytes) for Swift's ETags.
func (s *Server) encryptBody(req *request, f *os.File, name string, key objcrypt.ProjectKey, src io.Reader) (*putBody, error) {
	sums := etag.New(s.cfg.StoredEtag)
	out := newSmallWrites(f)
	defer out.discard() // the buffer back to its pool on failures
	ow, err := objcrypt.NewWriter(out, key, name, &objcrypt.WriterOptions{
		Algorithm: s.cfg.Algorithm, SegmentSize: s.cfg.SegmentSize, Observer: sums,
	})
	if err != nil {
		return nil, keyFailed(err)
	}
	n, err := ow.ReadFrom(src)
	if err != nil {
		ow.Abort()
		return nil, bodyFailed(err)
	}
	err = ow.Close()
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return nil, bodyFailed(err)
	}
	s.countEncrypted(req, n)
	m := ow.Metadata()
	b := &putBody{
		n: n, plainMD5: sums.Plaintext(), storedMD5: sums.Stored(), storedLen: m.StoredLength,
		crypt: &sysmeta.Object{Metadata: m},
	}
	b.etagKeys = ow.ETagKeys()
	if err := sealEtag(b, b.etagKeys, name); err != nil {
		return nil, err
	}
	return b, nil
}

// storePlainBody copies src into f (crypto_driver = none).
func storePlainBody(f *os.File, src io.Reader) (*putBody, error) {
	sums := etag.New(false)
	bp := copyBufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(io.MultiWriter(f, sums), src, *bp)
	copyBufPool.Put(bp)
	if err != nil {
		return nil, bodyFailed(err)
	}
	return &putBody{n: n, plainMD5: sums.Plaintext(), storedLen: n}, nil
}

// putMetadata is the .data file's metadata: Swift's keys for the bytes as
// stored, what the request and its footers may persist (user metadata
// sealed under the project key when encrypting), and Arca's sysmeta,
// which no request can set.
func (s *Server) putMetadata(req *request, p *putParams, b *putBody, key objcrypt.ProjectKey, path string) (map[string]string, error) {
	meta := map[string]string{
		"X-Timestamp":    req.ts.Internal(),
		"Content-Type":   p.contentType,
		"ETag":           b.storedMD5,
		"Content-Length": strconv.FormatInt(b.storedLen, 10),
	}
	s.copyPersisted(meta, p.headers)
	s.copyPersisted(meta, b.footers)
	if ct, ok := lookupFold(b.footers, "Content-Type"); ok && ct != "" {
		meta["Content-Type"] = ct
	}
	if b.crypt != nil {
		if err := s.sealUserMeta(meta, key, path, sysmeta.DataSet); err != nil {
			return nil, err
		}
		if err := sealSysmeta(meta, b.etagKeys, path); err != nil {
			return nil, err
		}
		if err := sealECEtag(meta, b, path); err != nil {
			return nil, err
		}
		for k, v := range b.crypt.Map() {
			meta[k] = v
		}
	}
	return meta, nil
}

// copyPersisted copies into meta what a PUT may persist from src: user
// metadata, sysmeta (never Arca's) and the allowed headers.
func (s *Server) copyPersisted(meta, src map[string]string) {
	for k, v := range src {
		lk := strings.ToLower(k)
		switch {
		case isArcaMeta(lk):
			// never taken from a request: forged or copied from a source object
		case isUserMeta(lk) || isSysMeta(lk) || isTransientSysMeta(lk):
			meta[pythonTitle(k)] = v
		case s.allowed[lk]:
			meta[pythonTitle(k)] = v
		}
	}
}

// requestHeaders is the first value of each request header.
func requestHeaders(req *request) map[string]string {
	out := make(map[string]string, len(req.r.Header))
	for k, v := range req.r.Header {
		out[k] = v[0]
	}
	return out
}

// commitPut makes the object durable; an encrypted one only while its key
// is still the project's active key (keys.go), since a commit can be
// acknowledged.
func (s *Server) commitPut(req *request, wr *diskfile.Writer, key objcrypt.ProjectKey, name string, meta map[string]string) error {
	if s.cfg.Encrypt {
		if err := s.confirmWriteKey(req.ctx, req.account, key.ID); err != nil {
			return keyFailed(err)
		}
	}
	if err := wr.Commit(req.ctx, name, meta); err != nil {
		return diskFailed(err)
	}
	return nil
}

// notifyPut tells the expirer queue and the container servers, with the
// plaintext size and, for an encrypted object, its ETag sealed under key's
// listing key (listingetag.go).
func (s *Server) notifyPut(req *request, p *putParams, orig *putOriginal, b *putBody, meta map[string]string, key objcrypt.ProjectKey) {
	oldDeleteAt, _ := parseDeleteAt(orig.meta["X-Delete-At"])
	s.updateExpirer(req, oldDeleteAt, p.deleteAt)
	upd := map[string]string{
		"X-Size":         strconv.FormatInt(b.n, 10),
		"X-Content-Type": meta["Content-Type"],
		"X-Timestamp":    req.ts.Internal(),
		"X-Etag":         b.plainMD5,
	}
	applyOverrides(upd, p.headers, b.footers)
	if b.crypt == nil {
		s.containerUpdate(req, "PUT", upd)
		return
	}
	s.containerUpdateSealed(req, "PUT", upd, func(upd map[string]string) bool {
		if err := s.sealListingEtag(key, listingPath(req), upd); err != nil {
			// Never a plaintext ETag to the container servers: the object
			// is stored, its listing entry waits for its next update.
			req.log.Error().Err(err).Msg("container update not sent")
			return false
		}
		return true
	})
}

// updateExpirer moves the object's entry in the expirer queue when its
// X-Delete-At changes.
func (s *Server) updateExpirer(req *request, oldDeleteAt, newDeleteAt int64) {
	if oldDeleteAt == newDeleteAt {
		return
	}
	if newDeleteAt != 0 {
		s.deleteAtUpdate(req, "PUT", newDeleteAt)
	}
	if oldDeleteAt != 0 {
		s.deleteAtUpdate(req, "DELETE", oldDeleteAt)
	}
}

func parseDeleteAt(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		// Swift accepts float-looking values by int(float())
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || f < 0 || f > 1e11 {
			return 0, false
		}
		n = int64(f)
	}
	return n, n >= 0
}

// applyOverrides applies x-backend-container-update-override-* then
// x-object-sysmeta-container-update-override-* (which wins) from headers,
// then footers.
func applyOverrides(upd map[string]string, sources ...map[string]string) {
	for _, prefix := range []string{"x-backend-container-update-override-", "x-object-sysmeta-container-update-override-"} {
		for _, src := range sources {
			for k, v := range src {
				if rest, ok := strings.CutPrefix(strings.ToLower(k), prefix); ok && rest != "" {
					upd[pythonTitle("x-"+rest)] = v
				}
			}
		}
	}
}
