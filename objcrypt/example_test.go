package objcrypt_test

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"hash"
	"io"
	"strings"

	"opendev.org/x/arca/objcrypt"
)

// plainMD5 observes a Writer's plaintext: an object server's ETag.
type plainMD5 struct{ hash.Hash }

func (h plainMD5) Observe(plain, _ []byte) { h.Write(plain) }

// An object server's PUT and ranged GET, in memory.
func Example() {
	key := objcrypt.ProjectKey{ID: "6f1c2c7e-0d7b-4a8e-9c55-2d1f3f0a9b11", Key: bytes.Repeat([]byte{7}, 32)}
	path := "/AUTH_p/c/o"

	// PUT: plaintext in, stored bytes out, metadata for the server to keep.
	var disk bytes.Buffer
	etag := plainMD5{md5.New()}
	w, err := objcrypt.NewWriter(&disk, key, path, &objcrypt.WriterOptions{Observer: etag})
	if err != nil {
		panic(err)
	}
	if _, err := io.Copy(w, strings.NewReader("hello, encrypted world")); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	md := w.Metadata()
	fmt.Printf("%d %x %v\n", md.PlaintextLength, etag.Sum(nil), md.StoredLength == w.Layout().EncryptedSize(md.PlaintextLength))

	// GET Range: bytes=7-15, with the key found through the kept key id.
	_ = md.KeyID // the object server fetches this key from the key service
	r, err := objcrypt.NewReader(bytes.NewReader(disk.Bytes()), int64(disk.Len()), key, path, nil)
	if err != nil {
		panic(err)
	}
	if err := r.Range(7, 9); err != nil {
		panic(err)
	}
	part, err := io.ReadAll(r)
	fmt.Printf("%q %v\n", part, err)

	// The same file read as another object fails closed.
	_, err = objcrypt.NewReader(bytes.NewReader(disk.Bytes()), int64(disk.Len()), key, "/AUTH_p/c/other", nil)
	fmt.Println(err != nil)
	// Output:
	// 22 cb6fc5e0b6b3cd981404333b418e7433 true
	// "encrypted" <nil>
	// true
}
