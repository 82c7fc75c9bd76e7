package objectserver

import (
	"crypto/md5" //nolint:gosec // G501: Swift's ETag of the stored bytes
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// SSYNC PUTs that carry Arca's sysmeta. Swift's Python reconstructor and
// replicator (ssync) read the local disk with Python's diskfile, so when
// they run on an Arca node they send what Arca stored:
//
//   - a revert (handoff to primary) or a replication sends an archive as
//     stored, with its whole metadata, ETag (the MD5 of the stored bytes)
//     included. An archive in the EC layout is stored here as it comes,
//     never encrypted again: its data key unwrapped with the key id it
//     names and this request's path, every fragment's MAC, the archive
//     MAC, its length, its MD5, its fragment index and its sealed ETags and
//     metadata are checked first, and anything that fails refuses the PUT
//     (the sender keeps its copy).
//   - a rebuild (RebuildingECDiskFileStream) sends plaintext fragments it
//     decoded from GETs, with the metadata of the LOCAL archive of another
//     index, its ETag removed: that archive's sealed EC ETag, middleware
//     sysmeta and user metadata are opened with its key here, and the
//     rebuilt archive is then encrypted as any PUT, re-sealing them under
//     its own new data key.
//
// Only SSYNC subrequests get either treatment (ssyncSubrequest in their
// context, which no HTTP header can set): a PUT from anywhere else that
// carries Arca's sysmeta has it dropped, as always. An SSYNC PUT that
// carries Arca's sysmeta under a replicated policy (Swift's replicator in
// ssync mode on an Arca device sends an objcrypt stream) or to a server
// that does not encrypt is refused (422): stored as a plaintext PUT, its
// ciphertext would be served as the object. A POST's .meta sent over
// SSYNC is ssyncmeta.go's.

// ssyncSubrequest marks the context of an SSYNC subrequest (ssync.go).
type ssyncSubrequest struct{}

func fromSsync(req *request) bool {
	v, _ := req.ctx.Value(ssyncSubrequest{}).(bool)
	return v
}

// sentArca reports whether a request's headers carry Arca's sysmeta.
func sentArca(h http.Header) bool {
	for k := range h {
		if isArcaMeta(strings.ToLower(k)) {
			return true
		}
	}
	return false
}

// ssyncSealed reports whether an SSYNC PUT sends an archive as Arca stored
// it (to store verbatim); for a rebuilt one it opens the sealed values
// sent first (unsealSent).
func (s *Server) ssyncSealed(req *request) (bool, error) {
	if !fromSsync(req) || !sentArca(req.r.Header) {
		return false, nil
	}
	if !s.cfg.Encrypt || s.disk.ECFragments[req.policy] == 0 {
		// a replicated object's objcrypt stream (Swift's replicator in
		// ssync mode on an Arca device), or Arca's data sent to a server
		// that does not decrypt: stored as a plaintext PUT it would be
		// served as ciphertext
		why := "Arca's encrypted objects are taken over SSYNC only in an erasure-coded policy, by a server that encrypts"
		req.log.Warn().Str("path", "/"+req.account+"/"+req.container+"/"+req.object).Msg("SSYNC PUT refused: " + why)
		return false, answer(http.StatusUnprocessableEntity, why)
	}
	if req.r.Header.Get("Etag") != "" {
		return true, nil
	}
	return false, s.unsealSent(req)
}

// sentRecord is the Arca record in a request's headers, and its path.
func sentRecord(req *request) (*sysmeta.Object, map[string]string, string, error) {
	h := requestHeaders(req)
	m, err := sysmeta.Parse(h)
	if err != nil {
		return nil, nil, "", answer(http.StatusBadRequest, "Invalid Arca metadata")
	}
	return m, h, "/" + req.account + "/" + req.container + "/" + req.object, nil
}

// unsealSent turns the sealed values a rebuild sends (from the sender's
// local archive) into the plaintext headers of a PUT: the EC ETag, the
// middleware sysmeta and the user metadata. Values that do not open
// refuse the PUT.
func (s *Server) unsealSent(req *request) error {
	m, h, path, err := sentRecord(req)
	if err != nil {
		return err
	}
	key, err := s.readKey(req.ctx, req.account, m.KeyID)
	if err != nil {
		return keyFailed(err)
	}
	defer clear(key.Key)
	ek, err := objcrypt.OpenETagKeys(&m.Metadata, key, path)
	if err != nil {
		return keyFailed(err)
	}
	opened, err := s.openSent(req, h, ek, key, path)
	if err != nil {
		return err
	}
	for k := range req.r.Header {
		if isArcaMeta(strings.ToLower(k)) || sealedSysmeta[strings.ToLower(k)] || isUserMeta(strings.ToLower(k)) {
			req.r.Header.Del(k)
		}
	}
	for k, v := range opened {
		req.r.Header.Set(k, v)
	}
	return nil
}

// openSent opens the sealed values of sent metadata h under the archive's
// ETag keys ek and the project key: EC ETag, middleware sysmeta, user
// metadata. Failures are a refused PUT (422), never a stored value.
func (s *Server) openSent(req *request, h map[string]string, ek *objcrypt.ETagKeys, key objcrypt.ProjectKey, path string) (map[string]string, error) {
	refused := func(what string, err error) error {
		req.log.Warn().Err(err).Str("path", path).Msg("SSYNC PUT refused: sent " + what + " does not open")
		return answer(http.StatusUnprocessableEntity, "sealed metadata does not open")
	}
	out := map[string]string{}
	if sealed, ok := lookupFold(h, sealedEcEtag); ok {
		v, err := ek.OpenETag(sealed, path+ecEtagDomain)
		if err != nil {
			return nil, refused("EC ETag", err)
		}
		out[ecEtagHeader] = v
	}
	sm, err := openSysmeta(h, ek, path)
	if err != nil {
		return nil, refused("sysmeta", err)
	}
	for k, v := range sm {
		out[k] = v
	}
	um, _, err := sysmeta.OpenUserMeta(h, path, sysmeta.DataSet, func(id string) (*objcrypt.MetaKey, error) {
		if id == key.ID {
			return s.metaKeys.get(key)
		}
		k, err := s.readKey(req.ctx, req.account, id)
		if err != nil {
			return nil, err
		}
		defer clear(k.Key)
		return s.metaKeys.get(k)
	})
	if err != nil {
		return nil, refused("user metadata", err)
	}
	for k, v := range um {
		out[k] = v
	}
	return out, nil
}

// putSealed stores an archive in the EC layout that an SSYNC sender sends
// as Arca stored it, after checking all of it.
func (s *Server) putSealed(req *request, p *putParams, orig *putOriginal, create func() (sealedTarget, error)) error {
	m, h, path, err := sentRecord(req)
	if err != nil {
		return err
	}
	if m.EC == nil {
		// an objcrypt stream (an archive written before the EC layout):
		// not checked as it streams, so not taken
		return answer(http.StatusUnprocessableEntity, "only archives in the EC layout are taken as stored")
	}
	key, err := s.readKey(req.ctx, req.account, m.KeyID)
	if err != nil {
		return keyFailed(err)
	}
	defer clear(key.Key)
	refused := func(why string, err error) error {
		req.log.Warn().Err(err).Str("path", path).Msg("SSYNC PUT refused: " + why)
		if m := s.obs.Metrics; m != nil {
			project, _ := s.projectFor(req.account)
			m.IntegrityFailure(project, "invalid")
		}
		return answer(http.StatusUnprocessableEntity, why)
	}
	ver, err := objcrypt.NewECVerifier(key, path, *m.ECMetadata())
	if err != nil {
		return refused("archive metadata does not open", err)
	}
	ek := ver.ETagKeys()
	plainEtag, err := ek.OpenETag(m.SealedEtag, path)
	if err != nil || !ek.MatchETagMAC(m.EtagMAC, plainEtag) {
		return refused("sealed ETag does not open", err)
	}
	if _, err := s.openSent(req, h, ek, key, path); err != nil {
		return err
	}
	t, err := create()
	if err != nil {
		return err
	}
	defer t.abort()
	src, _, err := s.bodySource(req, p)
	if err != nil {
		return err
	}
	sum := md5.New() //nolint:gosec // G401: Swift's ETag of the stored bytes
	n, err := io.Copy(io.MultiWriter(t.file(), ver, sum), src)
	if err == nil {
		err = ver.Close()
	}
	if err != nil {
		if errors.Is(err, objcrypt.ErrTampered) || errors.Is(err, objcrypt.ErrInvalid) {
			return refused("archive does not verify", err)
		}
		return bodyFailed(err)
	}
	stored := hex.EncodeToString(sum.Sum(nil))
	if !strings.EqualFold(stored, unquoteEtag(req.r.Header.Get("Etag"))) || n != p.expected {
		return refused("archive MD5 or length differs from the sent metadata", fmt.Errorf("%d bytes, MD5 %s", n, stored))
	}
	fi, ok := lookupFold(h, "X-Object-Sysmeta-Ec-Frag-Index")
	if got := ver.FragIndex(); got >= 0 && (!ok || fi != strconv.Itoa(got)) {
		return refused("fragment headers and metadata name different indexes", fmt.Errorf("headers %d, metadata %q", got, fi))
	}
	b := &putBody{n: n, plainMD5: plainEtag, storedMD5: stored, storedLen: n, crypt: m, footers: map[string]string{}}
	meta := map[string]string{
		"X-Timestamp": req.ts.Internal(), "Content-Type": p.contentType,
		"ETag": stored, "Content-Length": strconv.FormatInt(n, 10),
	}
	s.copyPersisted(meta, p.headers)
	for k, v := range h {
		if isArcaMeta(strings.ToLower(k)) {
			meta[pythonTitle(k)] = v
		}
	}
	return t.commit(b, meta, key)
}

// sealedTarget is where putSealed writes (handlePut's file and commit).
type sealedTarget interface {
	file() io.Writer
	abort()
	commit(b *putBody, meta map[string]string, key objcrypt.ProjectKey) error
}

// putTarget is handlePut's end for putSealed: the file, then the commit
// as any PUT's (without re-checking that the key is the active one: the
// archive keeps the key it was written under, as a rewrap would find it).
type putTarget struct {
	s    *Server
	req  *request
	p    *putParams
	df   *diskfile.DiskFile
	orig *putOriginal
	wr   *diskfile.Writer
}

func (s *Server) newPutTarget(req *request, p *putParams, df *diskfile.DiskFile, orig *putOriginal) (sealedTarget, error) {
	wr, err := df.Create()
	if err != nil {
		return nil, diskFailed(err)
	}
	return &putTarget{s: s, req: req, p: p, df: df, orig: orig, wr: wr}, nil
}

func (t *putTarget) file() io.Writer { return t.wr.File() }
func (t *putTarget) abort()          { t.wr.Abort() }

func (t *putTarget) commit(b *putBody, meta map[string]string, key objcrypt.ProjectKey) error {
	name, fi, err := t.s.ecDataName(t.req, t.p, b, meta)
	if err != nil {
		return err
	}
	if err := t.wr.Commit(t.req.ctx, name, meta); err != nil {
		return diskFailed(err)
	}
	if err := makeDurable(t.req, t.df, fi); err != nil {
		return err
	}
	t.s.notifyPut(t.req, t.p, t.orig, b, meta, key)
	t.req.w.Header().Set("Etag", quoteEtag(b.plainMD5))
	textError(t.req.w, t.req.r, http.StatusCreated, "")
	return nil
}
