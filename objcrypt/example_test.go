package objcrypt_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"opendev.org/x/arca/objcrypt"
)

// An object server's PUT and ranged GET, in memory.
func Example() {
	key := objcrypt.ProjectKey{ID: "6f1c2c7e-0d7b-4a8e-9c55-2d1f3f0a9b11", Key: bytes.Repeat([]byte{7}, 32)}
	path := "/AUTH_p/c/o"

	// PUT: plaintext in, stored bytes out, metadata for the sysmeta headers.
	var disk bytes.Buffer
	w, err := objcrypt.NewWriter(&disk, key, path, nil)
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
	fmt.Println(md.PlaintextLength, md.PlaintextMD5, md.StoredLength == w.Layout().EncryptedSize(md.PlaintextLength))
	sysmeta := md.Map()

	// GET Range: bytes=7-15, with the key found through the stored key id.
	back, err := objcrypt.ParseMetadata(sysmeta)
	if err != nil {
		panic(err)
	}
	_ = back.KeyID // the object server fetches this key from the key service
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
