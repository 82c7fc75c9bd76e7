package objectserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
)

// deleteOriginal is the object a DELETE removes, if any.
type deleteOriginal struct {
	ts       diskfile.Timestamp // of the object or its tombstone
	meta     map[string]string  // nil when there is no object
	deleteAt int64
	exists   bool // answered 204 rather than 404
}

// handleDelete writes a tombstone: preconditions, notify the expirer,
// commit, notify the containers.
func (s *Server) handleDelete(req *request) error {
	df, err := s.disk.Object(req.device, req.partition, req.policy, req.account, req.container, req.object)
	if err != nil {
		return diskFailed(err)
	}
	orig, err := s.deletePreconditions(req, df)
	if err != nil {
		return err
	}
	if orig.deleteAt != 0 {
		s.deleteAtUpdate(req, "DELETE", orig.deleteAt)
	}
	wr, err := df.Create()
	if err != nil {
		return diskFailed(err)
	}
	defer wr.Abort()
	if err := wr.Commit(req.ctx, req.ts.Internal()+".ts", map[string]string{"X-Timestamp": req.ts.Internal()}); err != nil {
		return diskFailed(err)
	}
	s.containerUpdate(req, "DELETE", map[string]string{"X-Timestamp": req.ts.Internal()})
	if orig.exists {
		textError(req.w, req.r, http.StatusNoContent, "")
		return nil
	}
	return answer(http.StatusNotFound, "")
}

// deletePreconditions looks at what a DELETE removes, as Swift's DELETE
// does: the expirer's X-If-Delete-At must match it, and the DELETE must be
// newer than its data (409). The answer carries X-Backend-Timestamp, the
// newer of the two times, and the removed object's Content-Type.
func (s *Server) deletePreconditions(req *request, df *diskfile.DiskFile) (*deleteOriginal, error) {
	w, h := req.w, req.r.Header
	orig := &deleteOriginal{}
	obj, err := df.Open()
	var nf *diskfile.NotFoundError
	switch {
	case err == nil:
		obj.Close()
		orig.meta = obj.Metadata
		orig.ts = obj.Timestamp()
		if orig.exists = !expired(obj.Metadata, req.ts); orig.exists {
			// a fast-POST's .meta does not make the data newer
			orig.ts = obj.DataTS
		}
	case errors.As(err, &nf):
		if nf.Tombstone != nil {
			orig.ts = *nf.Tombstone
		}
	default:
		return nil, diskFailed(err)
	}
	orig.deleteAt, _ = parseDeleteAt(orig.meta["X-Delete-At"])
	if v := h.Get("X-If-Delete-At"); v != "" {
		want, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, answer(http.StatusBadRequest, "Bad X-If-Delete-At header value")
		}
		if orig.ts.IsZero() {
			return nil, answer(http.StatusNotFound, "")
		}
		if !req.ts.After(orig.ts) {
			return nil, answer(http.StatusConflict, "")
		}
		if want != orig.deleteAt {
			return nil, answer(http.StatusPreconditionFailed, "X-If-Delete-At and X-Delete-At do not match")
		}
		orig.exists = true // the expirer deletes what has expired
	}
	backendTS := orig.ts
	if req.ts.After(backendTS) {
		backendTS = req.ts
	}
	w.Header().Set("X-Backend-Timestamp", backendTS.Internal())
	w.Header().Set("X-Backend-Content-Type", orig.meta["Content-Type"])
	if !orig.ts.IsZero() && !req.ts.After(orig.ts) {
		return nil, answer(http.StatusConflict, "")
	}
	return orig, nil
}

// handleReplicate answers the replicator: invalidate the suffixes named,
// or return the partition's suffix hashes.
func (s *Server) handleReplicate(req *request) error {
	var suffixes []string
	if req.rest != "" {
		suffixes = strings.Split(req.rest, "-")
	}
	var body []byte
	if len(suffixes) > 0 {
		if err := s.disk.Invalidate(req.device, req.partition, req.policy, suffixes); err != nil {
			return diskFailed(err)
		}
		body = pickle.MustEncode(nil)
	} else {
		hashes, err := s.disk.SuffixHashes(req.ctx, req.device, req.partition, req.policy, nil)
		if err != nil {
			return diskFailed(err)
		}
		body = pickle.MustEncode(hashes)
	}
	req.w.Header().Set("Content-Type", swobHTML) // as Swift's, whatever the pickle
	req.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	req.w.WriteHeader(http.StatusOK)
	_, _ = req.w.Write(body)
	return nil
}
