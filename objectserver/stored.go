package objectserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"

	"opendev.org/x/arca/internal/bufpool"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// Whether an object is decrypted is the server's decision, never the
// disk's. With crypto_driver = objcrypt every object
// this server stores has Arca sysmeta in its .data file's xattrs and an
// objcrypt stream as its data; anything else found under that
// configuration was not written by it: xattrs stripped by a backup tool or
// an attacker (ciphertext that would be served as the object), a plain
// file planted with forged metadata, or metadata edited by hand. Such an
// object is refused and quarantined as Swift's diskfile and auditor do
// with a file they cannot trust (moved to <device>/quarantined/objects/),
// and answered 404 as Swift answers a quarantined object: the proxy then
// asks the next node, and replication restores a good copy. The one
// exception is explicit: legacy_plaintext_before (see Config) serves
// objects older than a cutoff that have neither Arca metadata nor an
// objcrypt header, for clusters that held data before encryption was
// turned on.

// objcryptMagic is the first four bytes of every objcrypt stream
// (objcrypt/SPEC.md, offset 0).
const objcryptMagic = "ARCA"

// refusal is an object the server will not serve; reason goes to the log
// and to the quarantine, never to the client.
type refusal struct{ reason string }

func (r *refusal) Error() string { return "objectserver: stored object refused: " + r.reason }

func refuse(format string, args ...any) error { return &refusal{reason: fmt.Sprintf(format, args...)} }

// errEncryptedNoDriver: an encrypted object on a server with
// crypto_driver = none, which has no keys to open it.
var errEncryptedNoDriver = errors.New("objectserver: encrypted object, but crypto_driver = none")

// arcaKeys reports whether md has Arca sysmeta, and refuses metadata that
// names one Arca key twice in different cases: which of the two a reader
// took would depend on map order. The server writes canonical names, and
// names that are all canonical cannot repeat (they are one map's keys), so
// only metadata with a non-canonical Arca name pays for the set.
func arcaKeys(md map[string]string) (bool, error) {
	found, canonical := false, true
	for k := range md {
		if sysmeta.IsArca(k) {
			found = true
			canonical = canonical && textproto.CanonicalMIMEHeaderKey(k) == k
		}
	}
	if canonical {
		return found, nil
	}
	seen := map[string]bool{}
	for k := range md {
		if !sysmeta.IsArca(k) {
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if seen[ck] {
			return true, refuse("Arca metadata key %s appears twice", ck)
		}
		seen[ck] = true
	}
	return true, nil
}

// smallData is the largest data file read whole when it is opened: as
// large as objcrypt.NewReader reads whole (one segment of the default
// size, the header and the trailer).
const smallData = 64<<10 + 4096

// readHead reports whether the data file starts with objcrypt's magic,
// with one pread(2): of the whole file when it is at most smallData bytes
// (returned as whole, lent by bufpool: the reader then takes it from
// memory instead of reading it again), else of four bytes.
func readHead(obj *diskfile.Object) (magic bool, whole *[]byte, err error) {
	if obj.Size < int64(len(objcryptMagic)) {
		return false, nil, nil
	}
	var small [len(objcryptMagic)]byte
	b := small[:]
	if obj.Size <= smallData {
		whole = bufpool.Get(int(obj.Size))
		b = *whole
	}
	n, err := obj.File.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		bufpool.Put(whole)
		return false, nil, fmt.Errorf("diskfile: reading the data header: %w", err)
	}
	magic = n >= len(objcryptMagic) && string(b[:len(objcryptMagic)]) == objcryptMagic
	if whole != nil && int64(n) != obj.Size {
		bufpool.Put(whole)
		whole = nil
	}
	return magic, whole, nil
}

// isHexMD5 reports whether s is an MD5 in lower-case hex, as the server
// stores the plaintext ETag.
func isHexMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// storedView decides how obj may be answered, from the server's
// configuration and the whole of what is stored: a view of an encrypted
// object (its Arca metadata checked for consistency), of a plaintext one
// (crypto_driver = none, or a legacy object the migration option admits),
// or a *refusal.
func (s *Server) storedView(obj *diskfile.Object) (*plainView, error) {
	arca, err := arcaKeys(obj.DataMetadata)
	if !s.cfg.Encrypt {
		// This server never decrypts: an encrypted object is not data it
		// can answer (and never ciphertext served as the object).
		if arca {
			return nil, errEncryptedNoDriver
		}
		return &plainView{obj: obj, timestamp: obj.Timestamp(), etag: obj.Metadata["ETag"], length: obj.Size}, nil
	}
	if err != nil {
		return nil, err
	}
	// A fast-POST .meta never carries crypto metadata (the server takes
	// sysmeta from the .data file): one that does was not written here.
	if inMeta, _ := arcaKeys(obj.MetaMetadata); inMeta {
		return nil, refuse("Arca metadata in a .meta file")
	}
	magic, whole, err := readHead(obj)
	if err != nil {
		return nil, err
	}
	defer func() { bufpool.Put(whole) }() // unless a view took it (whole = nil)
	if arca {
		m, err := sysmeta.Parse(obj.DataMetadata)
		switch {
		case err != nil:
			return nil, refuse("invalid Arca metadata: %v", err)
		case m.IsLegacy() && !isHexMD5(m.PlaintextEtag):
			return nil, refuse("invalid Arca metadata: plaintext ETag %q", m.PlaintextEtag)
		case m.EC != nil:
			// a fragment archive in the EC layout (ecstore.go): no objcrypt
			// header; the reader authenticates every fragment
			return &plainView{
				obj: obj, crypt: &m.Metadata, ec: m.ECMetadata(), length: m.PlaintextLength,
				sealedEtag: m.SealedEtag, etagMAC: m.EtagMAC, timestamp: obj.Timestamp(),
			}, nil
		case !magic:
			return nil, refuse("Arca metadata on data that is not an objcrypt stream")
		}
		// A sealed ETag is opened with the data (openCrypt); an object
		// written before ETags were encrypted has its plaintext ETag.
		v := &plainView{
			obj: obj, crypt: &m.Metadata, length: m.PlaintextLength, etag: m.PlaintextEtag,
			sealedEtag: m.SealedEtag, etagMAC: m.EtagMAC, timestamp: obj.Timestamp(), whole: whole,
		}
		whole = nil
		return v, nil
	}
	if magic {
		return nil, refuse("objcrypt data without Arca metadata")
	}
	if s.legacyBefore.IsZero() {
		return nil, refuse("no Arca metadata, and legacy_plaintext_before is not set")
	}
	if !s.legacyBefore.After(obj.DataTS) {
		return nil, refuse("no Arca metadata, and written at %s, not before legacy_plaintext_before", obj.DataTS.Normal())
	}
	return &plainView{obj: obj, timestamp: obj.Timestamp(), etag: obj.Metadata["ETag"], length: obj.Size}, nil
}

// openView is storedView for a request: a refused object is quarantined
// and answered 404 (as Swift answers a quarantined object), an encrypted
// one on a server that cannot decrypt 503.
func (s *Server) openView(req *request, df *diskfile.DiskFile, obj *diskfile.Object) (*plainView, error) {
	v, err := s.storedView(obj)
	if err == nil {
		return v, nil
	}
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		s.quarantine(req, df, ref.reason)
		return nil, notFound(req, nil)
	case errors.Is(err, errEncryptedNoDriver):
		req.log.Error().Str("path", df.Name).Msg("encrypted object on a server with crypto_driver = none: not served")
		return nil, answer(http.StatusServiceUnavailable, "encrypted object: this server has crypto_driver = none")
	}
	return nil, diskFailed(err)
}

// quarantine moves a refused object aside and says so in the log (path
// and reason; nothing of its contents).
func (s *Server) quarantine(req *request, df *diskfile.DiskFile, reason string) {
	_ = df.Quarantine(reason)
	req.log.Error().Str("path", df.Name).Str("device", req.device).Str("reason", reason).
		Msg("stored object refused and quarantined: not an object this server wrote with crypto_driver = objcrypt")
	if m := s.obs.Metrics; m != nil {
		project, _ := s.projectFor(req.account)
		m.IntegrityFailure(project, "invalid")
	}
}
