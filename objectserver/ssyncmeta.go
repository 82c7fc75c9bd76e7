package objectserver

import (
	"errors"
	"net/http"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// A fast-POST's .meta sent over SSYNC. Swift's ssync_sender sends a
// .meta's whole metadata as a POST subrequest (send_post), so from an Arca
// device it sends the user metadata as Arca stored it: one set sealed
// under a project key at the object's path, in the .meta's transient
// sysmeta (sysmeta.MetaSet), and the id of that key. A POST from anywhere
// else has Arca's keys dropped (post.go); an SSYNC subrequest (the
// ssyncSubrequest mark in its context, which no header sets) has them
// checked instead:
//
//   - only the two keys of a sealed set, both, and no user metadata in
//     clear beside them (a .meta Arca wrote has nothing else of Arca's);
//   - the key they name is one of the account's project's keys (the key
//     service says so), and the set opens under it at this request's path
//     and under the name of a .meta's set (objcrypt binds key id, path and
//     name): a set sealed for another object, another project, or a .data,
//     or altered anywhere, does not open.
//
// A set that opens is kept as sent (not sealed again: the key it names is
// the project's, the rewrap moves it when the project rotates, as it
// moves a reverted archive's); anything else refuses the POST (422, or
// the key service's answer), writes nothing, and the sender keeps its
// .meta and tries again on its next pass. Over a legacy object stored in
// clear, the opened values are written as a POST in clear writes them.
//
// What this does not prevent: a set that opens is one Arca wrote for this
// object, under this project's key, but not necessarily the newest (the
// seal does not bind the POST's timestamp); a peer that may send SSYNC may
// as well POST any metadata in clear, which the server seals.

// ssyncSentMeta returns the metadata to write in a newer SSYNC POST's
// .meta in place of sealing the request's (sealPost): the sealed set sent,
// once it opens; nil when the request is not an SSYNC subrequest or sends
// no sealed set.
func (s *Server) ssyncSentMeta(req *request, st *postState, path string) (map[string]string, error) {
	if !fromSsync(req) || !st.newer {
		return nil, nil
	}
	h := requestHeaders(req)
	sent := false
	for k := range h {
		if !sysmeta.IsArcaTransient(k) {
			continue
		}
		sent = true
		if !strings.EqualFold(k, sysmeta.TransientUserMeta) && !strings.EqualFold(k, sysmeta.TransientMetaKeyID) {
			return nil, s.refuseSentMeta(req, path, "unknown Arca metadata "+k, nil)
		}
	}
	if !sent {
		return nil, nil
	}
	if !s.cfg.Encrypt {
		return nil, s.refuseSentMeta(req, path, "sealed metadata sent to a server that does not decrypt", nil)
	}
	um, ok, err := sysmeta.OpenUserMeta(h, path, sysmeta.MetaSet, func(id string) (*objcrypt.MetaKey, error) {
		k, err := s.readKey(req.ctx, req.account, id)
		if err != nil {
			return nil, keyFailed(err)
		}
		defer clear(k.Key)
		return s.metaKeys.get(k)
	})
	switch {
	case errors.Is(err, objcrypt.ErrMetadataTampered) || errors.Is(err, objcrypt.ErrInvalid):
		return nil, s.refuseSentMeta(req, path, "sealed metadata does not open", err)
	case err != nil:
		req.log.Warn().Err(err).Str("path", path).Msg("SSYNC POST: the key of the sealed metadata sent")
		return nil, err
	case !ok:
		return nil, s.refuseSentMeta(req, path, "sealed metadata without its key id", nil)
	}
	if st.view.crypt == nil {
		return um, nil
	}
	sealed, _ := lookupFold(h, sysmeta.TransientUserMeta)
	id, _ := lookupFold(h, sysmeta.TransientMetaKeyID)
	return map[string]string{sysmeta.TransientUserMeta: sealed, sysmeta.TransientMetaKeyID: id}, nil
}

// refuseSentMeta is the answer to an SSYNC POST whose sealed metadata is
// not taken (422), logged and counted as an integrity failure.
func (s *Server) refuseSentMeta(req *request, path, why string, err error) error {
	req.log.Warn().Err(err).Str("path", path).Msg("SSYNC POST refused: " + why)
	if m := s.obs.Metrics; m != nil {
		project, _ := s.projectFor(req.account)
		m.IntegrityFailure(project, "invalid")
	}
	return answer(http.StatusUnprocessableEntity, why)
}
