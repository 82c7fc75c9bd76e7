package objectserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/internal/etag"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// Fragment archives in objcrypt's EC layout (objcrypt/SPEC.md, "Erasure
// coding"): under an EC policy, an archive that is a sequence of
// liberasurecode fragments (every archive Swift's proxy and reconstructor
// send) is stored as those fragments, headers in clear and payloads
// encrypted in place, so the stored archive has the fragment archive's
// length and valid fragment headers: Swift's Python auditor checks it
// (get_metadata on every fragment, the MD5 of the stored bytes against
// the ETag in Swift's metadata) and Swift's Python reconstructor sizes a
// rebuilt archive from it. Anything else sent under an EC policy (bytes
// that are not fragments) is stored as one objcrypt stream, as every
// archive was before this layout; both are read.

// ecLayoutSource reports whether a PUT's body goes into the EC layout,
// and returns the body to read (what was peeked at included): an EC
// policy, and a body that is empty or starts with a fragment header.
func (s *Server) ecLayoutSource(req *request, src io.Reader) (bool, io.Reader) {
	if s.disk.ECFragments[req.policy] == 0 {
		return false, src
	}
	br := bufio.NewReaderSize(src, 64<<10)
	head, _ := br.Peek(objcrypt.ECHeaderLen)
	return len(head) == 0 || objcrypt.IsECFragmentHeader(head), br
}

// encryptECBody stores a fragment archive in the EC layout. Swift's ETag
// on disk is always the MD5 of the stored bytes here (the auditor's
// check), whatever stored_etag says.
func (s *Server) encryptECBody(req *request, f *os.File, name string, key objcrypt.ProjectKey, src io.Reader) (*putBody, error) {
	sums := etag.New(true)
	ew, err := objcrypt.NewECWriter(f, key, name, sums, nil)
	if err != nil {
		return nil, keyFailed(err)
	}
	bp := copyBufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(ew, src, *bp)
	copyBufPool.Put(bp)
	if err == nil {
		err = ew.Close()
	}
	if err != nil {
		if errors.Is(err, objcrypt.ErrInvalid) {
			return nil, answer(http.StatusBadRequest, "Invalid fragment archive")
		}
		return nil, bodyFailed(err)
	}
	s.countEncrypted(req, n)
	m := ew.Metadata()
	b := &putBody{
		n: n, plainMD5: sums.Plaintext(), storedMD5: sums.Stored(), storedLen: m.Length,
		crypt: &sysmeta.Object{
			Metadata: objcrypt.Metadata{KeyID: m.KeyID, WrappedKey: m.WrappedKey, PlaintextLength: n, StoredLength: m.Length},
			EC:       &m,
		},
		etagKeys: ew.ETagKeys(), ecLayout: true, fragIndex: ew.FragIndex(),
	}
	if err := sealEtag(b, b.etagKeys, name); err != nil {
		return nil, err
	}
	return b, nil
}

// openECArchive opens an archive in the EC layout: its key, its archive
// MAC, and the fragment index its (authenticated) headers carry against
// the one the file name and metadata say; a disagreement is metadata or
// a file moved on disk, refused.
func (s *Server) openECArchive(req *request, df *diskfile.DiskFile, obj *diskfile.Object, v *plainView, key objcrypt.ProjectKey) (cryptReader, error) {
	er, err := objcrypt.NewECReader(obj.File, obj.Size, key, obj.Metadata["name"], *v.ec)
	if err != nil {
		return nil, err
	}
	if fi := er.FragIndex(); fi >= 0 {
		want, ok := lookupFold(obj.DataMetadata, "X-Object-Sysmeta-Ec-Frag-Index")
		if !ok || want != strconv.Itoa(fi) {
			return nil, fmt.Errorf("%w: fragment headers carry index %d, the metadata %q", objcrypt.ErrMetadataTampered, fi, want)
		}
	}
	return er, nil
}
