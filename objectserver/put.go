package objectserver

import (
	"crypto/md5" //nolint:gosec // G501: Swift's ETag is the MD5 of the object
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
)

// errTooLarge: a chunked body grew past max_file_size.
var errTooLarge = errors.New("objectserver: object too large")

// maxFooterSize bounds the footer document.
const maxFooterSize = 1 << 20

// copyBufPool holds the buffers of unencrypted PUT bodies: 256 KiB (four
// segments) a read and a write, where io.Copy's 32 KiB took eight times
// the system calls.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// deadlineReader re-arms the connection's read deadline before every read,
// so a stalled client gets 408 after client_timeout of silence.
type deadlineReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	n       int64
	max     int64
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.rc != nil {
		_ = d.rc.SetReadDeadline(time.Now().Add(d.timeout))
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if d.max > 0 && d.n > d.max {
		return n, errTooLarge
	}
	return n, err
}

// bodyErrorStatus classifies a failure to read the request body.
func bodyErrorStatus(err error) (int, string) {
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "Your request is too large."
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, "Request Timeout"
	}
	return 499, "Client Disconnect"
}

func (s *Server) handlePut(req *request) {
	w, r := req.w, req.r
	h := r.Header
	contentType := h.Get("Content-Type")
	if contentType == "" {
		textError(w, http.StatusBadRequest, "No content type")
		return
	}
	chunked := len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
	if h.Get("Content-Length") == "" && !chunked {
		textError(w, http.StatusLengthRequired, "Missing Content-Length")
		return
	}
	footers := isTrue(h.Get("X-Backend-Obj-Metadata-Footer"))
	expected := r.ContentLength
	if footers {
		expected = -1
		if v := h.Get("X-Backend-Obj-Content-Length"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				textError(w, http.StatusBadRequest, "Invalid X-Backend-Obj-Content-Length")
				return
			}
			expected = n
		}
	}
	if isTrue(h.Get("X-Backend-Obj-Multiphase-Commit")) {
		textError(w, http.StatusBadRequest, "Multiphase commit (erasure coding) is not supported")
		return
	}
	if expected > s.cfg.MaxFileSize {
		textError(w, http.StatusRequestEntityTooLarge, "Your request is too large.")
		return
	}
	newDeleteAt, ok := parseDeleteAt(h.Get("X-Delete-At"))
	if !ok {
		textError(w, http.StatusBadRequest, "Non-integer X-Delete-At")
		return
	}
	if newDeleteAt != 0 && newDeleteAt*100000 < req.ts.Raw {
		textError(w, http.StatusBadRequest, "X-Delete-At in past")
		return
	}
	df, err := s.disk.Object(req.device, req.partition, req.policy, req.account, req.container, req.object)
	if err != nil {
		s.diskError(req, err)
		return
	}
	// Decide everything that does not need the body before reading it.
	var origTS diskfile.Timestamp
	var origMeta map[string]string
	var origEtag string
	exists := false
	obj, err := df.Open()
	var nf *diskfile.NotFoundError
	switch {
	case err == nil:
		exists = true
		origTS, origMeta = obj.DataTS, obj.Metadata
		// only for If-None-Match: an object this server would refuse to
		// serve is not quarantined here, the next GET or HEAD does it
		if v, err := s.storedView(obj); err == nil {
			origEtag = v.etag
		}
		obj.Close()
	case errors.As(err, &nf):
		if nf.Tombstone != nil {
			origTS = *nf.Tombstone
		}
	default:
		s.diskError(req, err)
		return
	}
	if !origTS.IsZero() && !req.ts.After(origTS) {
		w.Header().Set("X-Backend-Timestamp", origTS.Internal())
		textError(w, http.StatusConflict, "")
		return
	}
	if inm := h.Get("If-None-Match"); inm != "" && exists && etagMatches(inm, origEtag) {
		textError(w, http.StatusPreconditionFailed, "")
		return
	}
	var key objcrypt.ProjectKey
	if s.cfg.Encrypt {
		key, err = s.writeKey(req.ctx, req.account, h)
		if err != nil {
			s.keyError(req, err)
			return
		}
		defer clear(key.Key)
	}
	if footers && strings.Contains(strings.ToLower(h.Get("Expect")), "100-continue") {
		w.Header().Set("X-Obj-Metadata-Footer", "yes")
		w.WriteHeader(http.StatusContinue)
		w.Header().Del("X-Obj-Metadata-Footer")
	}

	wr, err := df.Create()
	if err != nil {
		s.diskError(req, err)
		return
	}
	defer wr.Abort()
	body := &deadlineReader{r: r.Body, rc: http.NewResponseController(w), timeout: s.cfg.ClientTimeout, max: s.cfg.MaxFileSize}
	var objectBody io.Reader = body
	var mr *multipart.Reader
	if footers {
		boundary := h.Get("X-Backend-Obj-Multipart-Mime-Boundary")
		if boundary == "" {
			textError(w, http.StatusBadRequest, "no MIME boundary")
			return
		}
		mr = multipart.NewReader(body, boundary)
		part, err := mr.NextRawPart()
		if err != nil || part.Header.Get("X-Document") != "object body" {
			textError(w, http.StatusBadRequest, "bad object body part")
			return
		}
		objectBody = part
	}

	var n int64
	var plainMD5 string
	var storedMD5 string
	var storedLen int64
	var cryptMeta map[string]string
	if s.cfg.Encrypt {
		ow, err := objcrypt.NewWriter(wr.File(), key, df.Name, &objcrypt.WriterOptions{
			Algorithm: s.cfg.Algorithm, SegmentSize: s.cfg.SegmentSize, StoredMD5: s.cfg.StoredEtag,
		})
		if err != nil {
			s.keyError(req, err)
			return
		}
		n, err = ow.ReadFrom(objectBody)
		if err == nil {
			err = ow.Close()
		}
		if err != nil {
			s.putBodyError(req, err)
			return
		}
		m := ow.Metadata()
		plainMD5, storedMD5, storedLen = m.PlaintextMD5, m.StoredMD5, m.StoredLength
		s.countEncrypted(req, n)
		cryptMeta = m.Map()
	} else {
		hh := md5.New() //nolint:gosec // G401: Swift's ETag
		bp := copyBufPool.Get().(*[]byte)
		n, err = io.CopyBuffer(io.MultiWriter(wr.File(), hh), objectBody, *bp)
		copyBufPool.Put(bp)
		if err != nil {
			s.putBodyError(req, err)
			return
		}
		plainMD5 = hex.EncodeToString(hh.Sum(nil))
		storedMD5, storedLen = plainMD5, n
	}
	if expected >= 0 && n != expected {
		textError(w, 499, "Client Disconnect")
		return
	}
	footerMeta := map[string]string{}
	if footers {
		footerMeta, err = readFooters(mr)
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errFooterChecksum) {
				code = http.StatusUnprocessableEntity
			}
			textError(w, code, err.Error())
			return
		}
	}
	wantEtag := unquoteEtag(h.Get("Etag"))
	if v, ok := lookupFold(footerMeta, "Etag"); ok {
		wantEtag = unquoteEtag(v)
	}
	if wantEtag != "" && !strings.EqualFold(wantEtag, plainMD5) {
		textError(w, http.StatusUnprocessableEntity, "Unprocessable Entity")
		return
	}
	if storedMD5 == "" {
		storedMD5 = plainMD5 // stored_etag = false: ETag is the plaintext MD5 (the auditor will object)
	}
	meta := map[string]string{
		"X-Timestamp":    req.ts.Internal(),
		"Content-Type":   contentType,
		"ETag":           storedMD5,
		"Content-Length": strconv.FormatInt(storedLen, 10),
	}
	copyPersisted := func(src map[string]string) {
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
	reqHeaders := make(map[string]string, len(h))
	for k, v := range h {
		reqHeaders[k] = v[0]
	}
	copyPersisted(reqHeaders)
	copyPersisted(footerMeta)
	if ct, ok := lookupFold(footerMeta, "Content-Type"); ok && ct != "" {
		meta["Content-Type"] = ct
	}
	for k, v := range cryptMeta {
		meta[k] = v
	}
	if s.cfg.Encrypt {
		// Acknowledged only under a key still active (keys.go).
		if err := s.confirmWriteKey(req.ctx, req.account, key.ID); err != nil {
			s.keyError(req, err)
			return
		}
	}
	if err := wr.Commit(req.ctx, req.ts.Internal()+".data", meta); err != nil {
		s.diskError(req, err)
		return
	}

	// Expirer queue and container updates, with plaintext size and etag.
	oldDeleteAt, _ := parseDeleteAt(origMeta["X-Delete-At"])
	if oldDeleteAt != newDeleteAt {
		if newDeleteAt != 0 {
			s.deleteAtUpdate(req, "PUT", newDeleteAt)
		}
		if oldDeleteAt != 0 {
			s.deleteAtUpdate(req, "DELETE", oldDeleteAt)
		}
	}
	upd := map[string]string{
		"X-Size":         strconv.FormatInt(n, 10),
		"X-Content-Type": meta["Content-Type"],
		"X-Timestamp":    req.ts.Internal(),
		"X-Etag":         plainMD5,
	}
	applyOverrides(upd, reqHeaders, footerMeta)
	s.containerUpdate(req, "PUT", upd)
	w.Header().Set("Etag", quoteEtag(plainMD5))
	textError(w, http.StatusCreated, "")
}

func (s *Server) putBodyError(req *request, err error) {
	if errors.Is(err, objcrypt.ErrInvalid) || errors.Is(err, objcrypt.ErrClosed) {
		s.keyError(req, err)
		return
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		s.diskError(req, fmt.Errorf("writing object: %w", err))
		return
	}
	code, msg := bodyErrorStatus(err)
	req.log.Warn().Err(err).Int("status", code).Msg("reading PUT body failed")
	textError(req.w, code, msg)
}

var errFooterChecksum = errors.New("footer MD5 mismatch")

// readFooters reads the "object metadata" part (JSON with Content-MD5).
func readFooters(mr *multipart.Reader) (map[string]string, error) {
	part, err := mr.NextRawPart()
	if err != nil {
		return nil, fmt.Errorf("missing footer: %w", err)
	}
	if part.Header.Get("X-Document") != "object metadata" {
		return nil, errors.New("bad footer document")
	}
	sum := part.Header.Get("Content-Md5")
	if sum == "" {
		return nil, errors.New("footer without Content-MD5")
	}
	data, err := io.ReadAll(io.LimitReader(part, maxFooterSize+1))
	if err != nil || len(data) > maxFooterSize {
		return nil, errors.New("unreadable footer")
	}
	hh := md5.New() //nolint:gosec // G401: Swift's footer Content-MD5
	hh.Write(data)
	if !strings.EqualFold(hex.EncodeToString(hh.Sum(nil)), strings.TrimSpace(sum)) {
		return nil, errFooterChecksum
	}
	out := map[string]string{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("bad footer JSON: %w", err)
	}
	drainParts(mr)
	return out, nil
}

// drainParts reads up to the closing boundary; what follows it is ignored.
func drainParts(mr *multipart.Reader) {
	for i := 0; i < 16; i++ {
		if _, err := mr.NextRawPart(); err != nil {
			return
		}
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
