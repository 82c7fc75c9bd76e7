package objectserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
)

func (s *Server) handlePost(req *request) {
	w, r := req.w, req.r
	h := r.Header
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
	obj, err := df.Open()
	if err != nil {
		if errors.Is(err, diskfile.ErrNotFound) {
			textError(w, http.StatusNotFound, "")
			return
		}
		s.diskError(req, err)
		return
	}
	defer obj.Close()
	if expired(obj.Metadata, req.ts) && !isTrue(h.Get("X-Backend-Replication")) {
		textError(w, http.StatusNotFound, "")
		return
	}
	// The container update carries the plaintext length and ETag: only of
	// an object this server would serve (Swift's POST also answers 404 for
	// an object it quarantines), its length authenticated as GET and HEAD
	// authenticate it (openCrypt).
	v, ok := s.openView(req, df, obj)
	if !ok {
		return
	}
	if v.crypt != nil {
		if _, ok := s.openCrypt(req, df, obj, v, 1); !ok {
			return
		}
	}
	origTS := obj.Timestamp()
	origCtypeTS := obj.ContentTypeTS
	var reqCtypeTS diskfile.Timestamp
	reqCtype := h.Get("Content-Type")
	if reqCtype != "" {
		reqCtypeTS = req.ts
		if c := h.Get("Content-Type-Timestamp"); c != "" {
			if t, err := diskfile.ParseTimestamp(c); err == nil {
				reqCtypeTS = t
			}
		}
	}
	if !req.ts.After(origTS) && !reqCtypeTS.After(origCtypeTS) {
		w.Header().Set("X-Backend-Timestamp", origTS.Internal())
		textError(w, http.StatusConflict, "")
		return
	}
	var meta map[string]string
	if req.ts.After(origTS) {
		meta = map[string]string{"X-Timestamp": req.ts.Internal()}
		for k, vals := range h {
			lk := strings.ToLower(k)
			if isUserMeta(lk) || isTransientSysMeta(lk) {
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
		oldDeleteAt, _ := parseDeleteAt(obj.Metadata["X-Delete-At"])
		if oldDeleteAt != newDeleteAt {
			if newDeleteAt != 0 {
				s.deleteAtUpdate(req, "PUT", newDeleteAt)
			}
			if oldDeleteAt != 0 {
				s.deleteAtUpdate(req, "DELETE", oldDeleteAt)
			}
		}
	} else {
		meta = map[string]string{}
		for k, val := range obj.MetaMetadata {
			meta[k] = val
		}
	}
	ctype, ctypeTS := obj.Metadata["Content-Type"], origCtypeTS
	if reqCtypeTS.After(origCtypeTS) {
		ctype, ctypeTS = reqCtype, reqCtypeTS
		meta["Content-Type"] = ctype
		meta["Content-Type-Timestamp"] = ctypeTS.Internal()
	} else if origCtypeTS != obj.DataTS {
		meta["Content-Type"] = ctype
		meta["Content-Type-Timestamp"] = ctypeTS.Internal()
	}
	metaTS, _ := diskfile.ParseTimestamp(meta["X-Timestamp"])
	var ctypePtr *diskfile.Timestamp
	if _, ok := meta["Content-Type-Timestamp"]; ok {
		ctypePtr = &ctypeTS
	}
	wr, err := df.Create()
	if err != nil {
		s.diskError(req, err)
		return
	}
	defer wr.Abort()
	if err := wr.Commit(req.ctx, diskfile.MetaName(metaTS, ctypePtr)+".meta", meta); err != nil {
		s.diskError(req, err)
		return
	}
	upd := map[string]string{
		"X-Size":                   strconv.FormatInt(v.length, 10),
		"X-Content-Type":           ctype,
		"X-Timestamp":              obj.DataTS.Internal(),
		"X-Content-Type-Timestamp": ctypeTS.Internal(),
		"X-Meta-Timestamp":         meta["X-Timestamp"],
		"X-Etag":                   v.etag,
	}
	applyOverrides(upd, obj.DataMetadata)
	s.containerUpdate(req, "PUT", upd)
	w.Header().Set("X-Backend-Content-Type", ctype)
	for k, val := range obj.Metadata {
		lk := strings.ToLower(k)
		if isSysMeta(lk) && !isArcaMeta(lk) {
			w.Header()[k] = []string{val}
		}
	}
	textError(w, http.StatusAccepted, "")
}

func (s *Server) handleDelete(req *request) {
	w, r := req.w, req.r
	h := r.Header
	df, err := s.disk.Object(req.device, req.partition, req.policy, req.account, req.container, req.object)
	if err != nil {
		s.diskError(req, err)
		return
	}
	var origTS diskfile.Timestamp
	var origMeta map[string]string
	exists := false
	obj, err := df.Open()
	var nf *diskfile.NotFoundError
	switch {
	case err == nil:
		obj.Close()
		origMeta = obj.Metadata
		origTS = obj.Timestamp()
		exists = !expired(obj.Metadata, req.ts)
	case errors.As(err, &nf):
		if nf.Tombstone != nil {
			origTS = *nf.Tombstone
		}
	default:
		s.diskError(req, err)
		return
	}
	origDeleteAt, _ := parseDeleteAt(origMeta["X-Delete-At"])
	if v := h.Get("X-If-Delete-At"); v != "" {
		want, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			textError(w, http.StatusBadRequest, "Bad X-If-Delete-At header value")
			return
		}
		if origMeta == nil {
			textError(w, http.StatusNotFound, "")
			return
		}
		if origTS.After(req.ts) || origTS == req.ts {
			w.Header().Set("X-Backend-Timestamp", origTS.Internal())
			textError(w, http.StatusConflict, "")
			return
		}
		if want != origDeleteAt {
			textError(w, http.StatusPreconditionFailed, "X-If-Delete-At and X-Delete-At do not match")
			return
		}
		exists = true // the expirer deletes what has expired
	}
	backendTS := origTS
	if req.ts.After(backendTS) {
		backendTS = req.ts
	}
	w.Header().Set("X-Backend-Timestamp", backendTS.Internal())
	if !origTS.IsZero() && !req.ts.After(origTS) {
		textError(w, http.StatusConflict, "")
		return
	}
	if origDeleteAt != 0 {
		s.deleteAtUpdate(req, "DELETE", origDeleteAt)
	}
	wr, err := df.Create()
	if err != nil {
		s.diskError(req, err)
		return
	}
	defer wr.Abort()
	if err := wr.Commit(req.ctx, req.ts.Internal()+".ts", map[string]string{"X-Timestamp": req.ts.Internal()}); err != nil {
		s.diskError(req, err)
		return
	}
	s.containerUpdate(req, "DELETE", map[string]string{"X-Timestamp": req.ts.Internal()})
	if exists {
		textError(w, http.StatusNoContent, "")
		return
	}
	textError(w, http.StatusNotFound, "")
}

func (s *Server) handleReplicate(req *request) {
	var suffixes []string
	if req.rest != "" {
		suffixes = strings.Split(req.rest, "-")
	}
	var body []byte
	if len(suffixes) > 0 {
		if err := s.disk.Invalidate(req.device, req.partition, req.policy, suffixes); err != nil {
			s.diskError(req, err)
			return
		}
		body = pickle.MustEncode(nil)
	} else {
		hashes, err := s.disk.GetHashes(req.ctx, req.device, req.partition, req.policy, nil)
		if err != nil {
			s.diskError(req, err)
			return
		}
		out := make(map[string]any, len(hashes))
		for k, v := range hashes {
			if v == "" {
				out[k] = nil
			} else {
				out[k] = v
			}
		}
		body = pickle.MustEncode(out)
	}
	req.w.Header().Set("Content-Type", "application/octet-stream")
	req.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	req.w.WriteHeader(http.StatusOK)
	_, _ = req.w.Write(body)
}
