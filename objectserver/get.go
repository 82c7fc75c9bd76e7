package objectserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"opendev.org/x/arca/internal/bufpool"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
)

// plainView is an object as the proxy must see it: plaintext length and
// ETag, whatever is stored.
type plainView struct {
	obj       *diskfile.Object
	crypt     *objcrypt.Metadata   // nil for an object stored in the clear
	ec        *objcrypt.ECMetadata // set for a fragment archive in the EC layout
	length    int64
	etag      string // plaintext: sealed ones once openCrypt opened them
	timestamp diskfile.Timestamp
	// sealedEtag and etagMAC are an encrypted object's ETag as stored
	// (empty in objects written before ETags were encrypted); etagKeys,
	// set by openCrypt, decide conditionals by etagMAC.
	sealedEtag, etagMAC string
	etagKeys            *objcrypt.ETagKeys
	// userMeta is the opened user metadata of a sealed set, shown beside
	// what is stored (which then has no user metadata; metacrypt.go).
	userMeta map[string]string
	// whole is the data file's bytes when it is small (readHead), lent
	// by bufpool until release: the objcrypt reader opens them rather
	// than reading the file again.
	whole *[]byte
	// reader is the decrypting reader a GET answers from, closed by
	// release.
	reader cryptReader
}

// release gives back what the view borrowed, once the answer is sent:
// the reader's plaintext buffers (wiped) and the data file's bytes.
func (v *plainView) release() {
	if v.reader != nil {
		_ = v.reader.Close()
		v.reader = nil
	}
	bufpool.Put(v.whole)
	v.whole = nil
}

// cryptReader is an opened encrypted object: an objcrypt stream
// (objcrypt.Reader) or a fragment archive in the EC layout
// (objcrypt.ECReader).
type cryptReader interface {
	io.ReadCloser // Close wipes its plaintext and gives its buffers back
	Range(off, n int64) error
	Size() int64
	ETagKeys() *objcrypt.ETagKeys
}

// objectHeaders sets the headers of a GET/HEAD answer (Swift's list,
// without Arca's crypto sysmeta, which never leaves the server). The
// values share one backing array and metadata names are classified
// without lower-casing copies: a small GET's headers were a good part of
// its allocations.
func (s *Server) objectHeaders(h http.Header, v *plainView) {
	md := v.obj.Metadata
	vals := make([]string, 0, len(md)+8)
	set := func(k, val string) {
		vals = append(vals, val)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	ct := md["Content-Type"]
	if ct == "" {
		ct = "application/octet-stream"
	}
	set("Content-Type", ct)
	for k, val := range md {
		if s.shownMeta(k) {
			set(k, val)
		}
	}
	for k, val := range v.userMeta {
		set(k, val)
	}
	if ce, ok := md["Content-Encoding"]; ok {
		set("Content-Encoding", ce)
	}
	set("Etag", quoteEtag(v.etag))
	set("Last-Modified", time.Unix(v.timestamp.Ceil(), 0).UTC().Format(http.TimeFormat))
	set("X-Timestamp", v.timestamp.Normal())
	set("X-Backend-Timestamp", v.timestamp.Internal())
	dataTS := v.obj.DataTS.Internal()
	set("X-Backend-Data-Timestamp", dataTS)
	if v.obj.Fragments == nil {
		set("X-Backend-Durable-Timestamp", dataTS)
		return
	}
	// An EC fragment: durable only when a durable set exists (a GET with
	// fragment preferences may open a non-durable one), and the
	// fragments on disk, as the proxy's reconstruction reads them.
	if v.obj.DurableTS != nil {
		set("X-Backend-Durable-Timestamp", v.obj.DurableTS.Internal())
	}
	set("X-Backend-Fragments", fragmentsHeader(v.obj.Fragments))
}

// shownMeta reports whether a stored metadata name is answered to GET and
// HEAD: user meta, sysmeta but Arca's, transient sysmeta and the allowed
// headers.
func (s *Server) shownMeta(k string) bool {
	var buf [128]byte
	lower, ok := asciiLower(buf[:0], k)
	if !ok {
		lk := strings.ToLower(k)
		return !isArcaMeta(lk) && (isUserMeta(lk) || isSysMeta(lk) || isTransientSysMeta(lk) || s.allowed[lk])
	}
	// string(lower) in comparisons and map indexes does not allocate.
	has := func(prefix string) bool { return len(lower) >= len(prefix) && string(lower[:len(prefix)]) == prefix }
	switch {
	case has(arcaMetaPrefix), has(arcaTransientPrefix):
		return false
	case has(userMetaPrefix) && len(lower) > len(userMetaPrefix),
		has(sysMetaPrefix) && len(lower) > len(sysMetaPrefix),
		has(transientSysMetaPrefix):
		return true
	}
	return s.allowed[string(lower)]
}

// asciiLower appends k in lower case to dst when k is ASCII and fits in
// dst's capacity; other names take strings.ToLower (Unicode rules).
func asciiLower(dst []byte, k string) ([]byte, bool) {
	if len(k) > cap(dst) {
		return nil, false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 0x80 {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// handleGet answers GET and HEAD: open, authenticate, preconditions, then
// the body (one range or several). Everything answered from the metadata
// waits for the authentication, HEAD and conditional requests included:
// a key or integrity failure is then a clean error status, never a
// half-sent object nor a length or ETag that only the metadata vouches
// for.
func (s *Server) handleGet(req *request) error {
	df, obj, err := s.openForRead(req)
	if err != nil {
		return err
	}
	defer obj.Close()
	v, err := s.openView(req, df, obj)
	if err != nil {
		return err
	}
	defer v.release()
	src, err := s.readSource(req, df, obj, v)
	if err != nil {
		return err
	}
	h := req.w.Header()
	s.objectHeaders(h, v)
	if done, err := s.getPreconditions(req, obj, v); done || err != nil {
		return err
	}
	ranges, err := getRanges(req, obj, v)
	if errors.Is(err, errAnswered) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ranges) <= 1 {
		return s.sendRange(req, v, src, ranges)
	}
	return s.sendRanges(req, v, src, ranges)
}

// openForRead opens the object a GET or HEAD names; an expired object is
// not found (unless the replicator asks).
func (s *Server) openForRead(req *request) (*diskfile.DiskFile, *diskfile.Object, error) {
	locate := s.disk.ObjectToRead // the device checked by Open when the object is not there
	if s.disk.ECFragments[req.policy] > 0 {
		locate = s.disk.Object // a 507 before fragment preferences are parsed, as Swift
	}
	df, err := locate(req.device, req.partition, req.policy, req.account, req.container, req.object)
	if err != nil {
		return nil, nil, diskFailed(err)
	}
	now := diskfile.FromTime(s.now())
	if req.hasTS {
		now = req.ts
	}
	if df.IsEC() {
		if df.EC, err = fragPrefs(req, df); err != nil {
			return nil, nil, err
		}
	}
	obj, err := df.Open()
	if err != nil {
		var nf *diskfile.NotFoundError
		if errors.As(err, &nf) {
			return nil, nil, notFound(req, nf.Tombstone)
		}
		return nil, nil, diskFailed(err)
	}
	if expired(obj.Metadata, now) && !isTrue(req.r.Header.Get("X-Backend-Replication")) {
		obj.Close()
		ts := obj.Timestamp()
		return nil, nil, notFound(req, &ts)
	}
	return df, obj, nil
}

// readSource is where the plaintext comes from: the file, or objcrypt's
// reader opened (and authenticated) with the object's key.
func (s *Server) readSource(req *request, df *diskfile.DiskFile, obj *diskfile.Object, v *plainView) (rangeSource, error) {
	if v.crypt == nil {
		return plainSource{obj.File}, nil
	}
	par := s.cfg.DecryptWorkers
	if req.r.Method == http.MethodHead {
		par = 1 // nothing is decrypted
	}
	cr, err := s.openCrypt(req, df, obj, v, par)
	if err != nil {
		return nil, err
	}
	v.reader = cr
	return cryptSource{cr}, nil
}

// getPreconditions evaluates the conditional headers against the ETag
// (or the metadata X-Backend-Etag-Is-At names) and the time; done
// reports a 304 already sent.
func (s *Server) getPreconditions(req *request, obj *diskfile.Object, v *plainView) (done bool, err error) {
	r, h := req.r, req.w.Header()
	condEtag := viewMatch(v)
	if at := r.Header.Get("X-Backend-Etag-Is-At"); at != "" {
		for name := range strings.SplitSeq(at, ",") {
			// The opened value first: what the disk holds under the same
			// name is sealed (SLO's ETag, objcrypt/SPEC.md) and must not
			// be compared, nor matched, as it is stored. The EC ETag is
			// only in the view.
			val, ok := lookupFold(v.userMeta, strings.TrimSpace(name))
			if !ok {
				val, ok = lookupFold(obj.Metadata, strings.TrimSpace(name))
			}
			if ok {
				condEtag = etagMatch{etag: val}
				break
			}
		}
	}
	code := checkConditions(r, condEtag, v.timestamp.Ceil())
	if code == 0 {
		return false, nil
	}
	// 304 and 412 as swob answers them: the object's headers (its ETag
	// included, which the proxy reads: a symlink answers 412 rather than
	// 409 with it) and no body.
	h.Set("Content-Length", "0")
	if code == http.StatusNotModified && s.answerRaw(req, code) {
		return true, nil
	}
	req.w.WriteHeader(code)
	return true, nil
}

// openCrypt opens an encrypted object's data with its key, for GET, HEAD
// and POST alike. objcrypt authenticates the header, the data key wrapped
// under the key id and bound to the object's path, and the trailer, which
// carries the plaintext length, before it returns: a few small reads (the
// whole file when it is small) and one key fetch, nearly always from the
// key cache. So the length HEAD answers and POST sends to the container
// listing is the authenticated one; metadata that contradicts it is
// refused and the object quarantined (404). The sealed ETag and user
// metadata are opened here too (openMetadata): one that does not open is
// metadata edited on disk, refused the same way. Failing closed as GET
// does, a HEAD or POST of an object whose key is unavailable answers 503,
// destroyed 410.
func (s *Server) openCrypt(req *request, df *diskfile.DiskFile, obj *diskfile.Object, v *plainView, parallelism int) (cryptReader, error) {
	key, until, err := s.readKeyUntil(req.ctx, req.account, v.crypt.KeyID)
	if err != nil {
		return nil, keyFailed(err)
	}
	defer clear(key.Key)
	var cr cryptReader
	if v.ec != nil {
		cr, err = s.openECArchive(req, df, obj, v, key)
	} else {
		path := obj.Metadata["name"]
		dk := s.dataKeys.get(key, until, v.crypt.KeyID, path, v.crypt.WrappedKey, v.crypt.Algorithm)
		opts := &objcrypt.ReaderOptions{
			KeyID: v.crypt.KeyID, WrappedKey: v.crypt.WrappedKey, Parallelism: parallelism,
			ETagKeys: v.sealedEtag != "", DataKeys: dk,
		}
		if v.whole != nil {
			// Read whole already (readHead): decrypted where it is.
			cr, err = objcrypt.NewReaderBytes(*v.whole, key, path, opts)
		} else {
			cr, err = objcrypt.NewReader(obj.File, obj.Size, key, path, opts)
		}
		if dk != nil {
			dk.Wipe()
		}
	}
	if err != nil {
		return nil, keyFailed(err)
	}
	if cr.Size() != v.length {
		// The authenticated data disagrees with the metadata HEAD and
		// listings would answer from: metadata edited on disk.
		s.quarantine(req, df, fmt.Sprintf("Arca metadata says %d plaintext bytes, the authenticated data %d", v.length, cr.Size()))
		return nil, notFound(req, nil)
	}
	if err := s.openMetadata(req, v, cr, key); err != nil {
		if !errors.Is(err, objcrypt.ErrMetadataTampered) {
			return nil, keyFailed(err)
		}
		s.countIntegrity(req, err)
		s.quarantine(req, df, err.Error())
		return nil, notFound(req, nil)
	}
	return cr, nil
}

func expired(md map[string]string, now diskfile.Timestamp) bool {
	v, ok := md["X-Delete-At"]
	if !ok {
		return false
	}
	at, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return false
	}
	return at*100000 <= now.Raw
}

func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	}
	return false
}

func lookupFold(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// checkConditions evaluates the conditional headers for an existing
// object in swob's order (Response._get_conditional_response_status),
// which is not RFC 9110's: a matching If-None-Match answers 304, then a
// failing If-Match 412, then If-Modified-Since 304 (looked at even when
// If-None-Match is there and did not match, and for a date in the
// future), then If-Unmodified-Since 412. For a replicated policy the
// object server's answer is the one the client gets: the proxy passes
// the headers on and relays the status.
func checkConditions(r *http.Request, etag etagMatch, lastModified int64) int {
	if inm := r.Header.Get("If-None-Match"); inm != "" && etag.matches(inm) {
		return http.StatusNotModified
	}
	if im := r.Header.Get("If-Match"); im != "" && !etag.matches(im) {
		return http.StatusPreconditionFailed
	}
	if t, ok := headerTime(r, "If-Modified-Since"); ok && lastModified <= t {
		return http.StatusNotModified
	}
	if t, ok := headerTime(r, "If-Unmodified-Since"); ok && lastModified > t {
		return http.StatusPreconditionFailed
	}
	return 0
}

// headerTime is the HTTP date in header name as Unix seconds; ok is false
// when it is missing or not a date (swob then ignores it).
func headerTime(r *http.Request, name string) (int64, bool) {
	v := r.Header.Get(name)
	if v == "" {
		return 0, false
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}

func etagMatches(list, etag string) bool {
	return etagListMatches(list, func(item string) bool { return item == etag })
}
