package objectserver

import (
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// postState is what a fast-POST decides before it commits its .meta.
type postState struct {
	obj      *diskfile.Object
	view     *plainView
	ctype    string             // the content type after the POST
	ctypeTS  diskfile.Timestamp // and its time
	reqCtype string             // the request's Content-Type, if any
	reqCtTS  diskfile.Timestamp // and its time (zero when none)
	newer    bool               // the POST is newer than the object's metadata
}

// handlePost writes a fast-POST's .meta: parse, open and authenticate,
// preconditions, metadata (sealed; or, from an SSYNC sender, the sealed
// set it sends, checked: ssyncmeta.go), notify the expirer, commit,
// notify the containers.
func (s *Server) handlePost(req *request) error {
	deleteAt, err := parseNewDeleteAt(req, false)
	if err != nil {
		return err
	}
	df, err := s.disk.Object(req.device, req.partition, req.policy, req.account, req.container, req.object)
	if err != nil {
		return diskFailed(err)
	}
	obj, err := df.Open()
	if err != nil {
		if errors.Is(err, diskfile.ErrNotFound) {
			return answer(http.StatusNotFound, "")
		}
		return diskFailed(err)
	}
	defer obj.Close()
	st, err := s.postPreconditions(req, df, obj)
	if err != nil {
		return err
	}
	meta := s.postMetadata(req, st)
	sent, err := s.ssyncSentMeta(req, st, df.Name)
	if err != nil {
		return err
	}
	if sent != nil {
		// a .meta reverted over SSYNC: its sealed set, checked (ssyncmeta.go)
		maps.Copy(meta, sent)
	} else if err := s.sealPost(req, df, st, meta); err != nil {
		return err
	}
	if st.newer {
		// before the commit, as Swift's POST does
		oldDeleteAt, _ := parseDeleteAt(obj.Metadata["X-Delete-At"])
		s.updateExpirer(req, oldDeleteAt, deleteAt)
	}
	if err := commitPost(req, df, st, meta); err != nil {
		return err
	}
	s.notifyPost(req, st, meta)
	return nil
}

// postPreconditions authenticates the object as GET would and checks the
// POST is newer than its metadata or its content type (409). The
// container update carries the plaintext length and ETag: only of an
// object this server would serve (Swift's POST also answers 404 for an
// object it quarantines), its length authenticated as GET and HEAD
// authenticate it (openCrypt).
func (s *Server) postPreconditions(req *request, df *diskfile.DiskFile, obj *diskfile.Object) (*postState, error) {
	h := req.r.Header
	if expired(obj.Metadata, req.ts) && !isTrue(h.Get("X-Backend-Replication")) {
		return nil, answer(http.StatusNotFound, "")
	}
	v, err := s.openView(req, df, obj)
	if err != nil {
		return nil, err
	}
	if v.crypt != nil {
		if _, err := s.openCrypt(req, df, obj, v, 1); err != nil {
			return nil, err
		}
	}
	st := &postState{obj: obj, view: v, reqCtype: h.Get("Content-Type")}
	if st.reqCtype != "" {
		st.reqCtTS = req.ts
		if c := h.Get("Content-Type-Timestamp"); c != "" {
			if t, err := diskfile.ParseTimestamp(c); err == nil {
				st.reqCtTS = t
			}
		}
	}
	origTS := obj.Timestamp()
	if !req.ts.After(origTS) && !st.reqCtTS.After(obj.ContentTypeTS) {
		return nil, answer(http.StatusConflict, "").with("X-Backend-Timestamp", origTS.Internal())
	}
	st.newer = req.ts.After(origTS)
	return st, nil
}

// postMetadata is the .meta file's metadata: the request's user and
// transient metadata and allowed headers when the POST is newer than the
// object's metadata (else the current .meta's, kept), and the content
// type with its time.
func (s *Server) postMetadata(req *request, st *postState) map[string]string {
	h, obj := req.r.Header, st.obj
	var meta map[string]string
	if st.newer {
		meta = map[string]string{"X-Timestamp": req.ts.Internal()}
		for k, vals := range h {
			lk := strings.ToLower(k)
			if (isUserMeta(lk) || isTransientSysMeta(lk)) && !isArcaMeta(lk) {
				meta[pythonTitle(k)] = vals[0]
			}
		}
		for _, k := range strings.Fields(h.Get("X-Backend-Replication-Headers")) {
			if val, ok := h[http.CanonicalHeaderKey(k)]; ok && !isArcaMeta(strings.ToLower(k)) {
				meta[pythonTitle(k)] = val[0]
			}
		}
		for k := range s.allowed {
			if val, ok := h[http.CanonicalHeaderKey(k)]; ok {
				meta[pythonTitle(k)] = val[0]
			}
		}
	} else {
		meta = map[string]string{}
		for k, val := range obj.MetaMetadata {
			meta[k] = val
		}
	}
	st.ctype, st.ctypeTS = obj.Metadata["Content-Type"], obj.ContentTypeTS
	if st.reqCtTS.After(obj.ContentTypeTS) {
		st.ctype, st.ctypeTS = st.reqCtype, st.reqCtTS
		meta["Content-Type"] = st.ctype
		meta["Content-Type-Timestamp"] = st.ctypeTS.Internal()
	} else if obj.ContentTypeTS != obj.DataTS {
		meta["Content-Type"] = st.ctype
		meta["Content-Type-Timestamp"] = st.ctypeTS.Internal()
	}
	return meta
}

// sealPost seals a newer POST's user metadata under the project's active
// key, as a PUT's, recording the key id in the .meta's transient sysmeta
// (the .data's sysmeta would win over the .meta's). Without the key the
// POST fails closed (503 unreachable, 410 destroyed) and writes nothing. A
// POST that only moves the content type keeps the current .meta's
// values, sealed already for this path.
func (s *Server) sealPost(req *request, df *diskfile.DiskFile, st *postState, meta map[string]string) error {
	if !s.cfg.Encrypt || !st.newer || st.view.crypt == nil {
		return nil
	}
	key, err := s.writeKey(req.ctx, req.account, req.r.Header)
	if err != nil {
		return keyFailed(err)
	}
	defer clear(key.Key)
	return s.sealUserMeta(meta, key, df.Name, sysmeta.MetaSet)
}

// commitPost writes the .meta file, named by its times.
func commitPost(req *request, df *diskfile.DiskFile, st *postState, meta map[string]string) error {
	metaTS, _ := diskfile.ParseTimestamp(meta["X-Timestamp"])
	var ctypePtr *diskfile.Timestamp
	if _, ok := meta["Content-Type-Timestamp"]; ok {
		ctypePtr = &st.ctypeTS
	}
	wr, err := df.Create()
	if err != nil {
		return diskFailed(err)
	}
	defer wr.Abort()
	if err := wr.Commit(req.ctx, diskfile.MetaName(metaTS, ctypePtr)+".meta", meta); err != nil {
		return diskFailed(err)
	}
	return nil
}

// notifyPost tells the container servers (plaintext length, and the ETag
// sealed for listings when the object is encrypted) and
// answers 202 with the object's sysmeta (never Arca's).
func (s *Server) notifyPost(req *request, st *postState, meta map[string]string) {
	obj := st.obj
	upd := map[string]string{
		"X-Size":                   strconv.FormatInt(st.view.length, 10),
		"X-Content-Type":           st.ctype,
		"X-Timestamp":              obj.DataTS.Internal(),
		"X-Content-Type-Timestamp": st.ctypeTS.Internal(),
		"X-Meta-Timestamp":         meta["X-Timestamp"],
		"X-Etag":                   st.view.etag,
	}
	// An EC archive's container update carries the whole object's ETag
	// and length, as Swift's POST sends them (the PUT's may be lost).
	if v, ok := st.view.userMeta[ecEtagHeader]; ok {
		upd["X-Etag"] = v
	} else if v, ok := lookupFold(obj.DataMetadata, ecEtagHeader); ok {
		upd["X-Etag"] = v
	}
	if v, ok := lookupFold(obj.DataMetadata, "X-Object-Sysmeta-Ec-Content-Length"); ok {
		upd["X-Size"] = v
	}
	// the sealed override sysmeta as opened (metacrypt.go), over the stored
	applyOverrides(upd, obj.DataMetadata, st.view.userMeta)
	s.containerUpdateSealed(req, "PUT", upd, func(upd map[string]string) bool {
		return s.sealPostListing(req, st, upd)
	})
	w := req.w
	w.Header().Set("X-Backend-Content-Type", st.ctype)
	for k, val := range obj.Metadata {
		lk := strings.ToLower(k)
		if isSysMeta(lk) && !isArcaMeta(lk) {
			if opened, ok := st.view.userMeta[k]; ok && sealedSysmeta[lk] {
				val = opened
			}
			w.Header()[k] = []string{val}
		}
	}
	if v, ok := st.view.userMeta[ecEtagHeader]; ok {
		w.Header()[ecEtagHeader] = []string{v} // stored sealed, answered opened
	}
	textError(w, req.r, http.StatusAccepted, "")
}
