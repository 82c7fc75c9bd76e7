package objectserver

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/ringhash"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// BenchmarkPutCrypto4KiB: what encryption adds to a 4 KiB PUT in user
// space, without the file system's work: the key lookup, the Writer (data
// key, wrapping, key derivation, CBC, HMAC, both MD5s), the sealed ETag and
// user metadata, into /dev/null. Its cpu-µs/op is the process's CPU.
func BenchmarkPutCrypto4KiB(b *testing.B) {
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "p", Suffix: "s"}, Policies: map[int]ringhash.Policy{0: {Type: "replication"}}}
	srv, err := New(Config{Devices: b.TempDir(), Encrypt: true, Algorithm: objcrypt.AES128CBC, StoredEtag: true,
		ReclaimAge: time.Hour}, swift, newMemResolver(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	body := benchBody(4 << 10)
	const name = "/AUTH_b/c/o"
	req := &request{account: "AUTH_b"}
	ctx := context.Background()
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		key, err := srv.writeKey(ctx, "AUTH_b", http.Header{})
		if err != nil {
			b.Fatal(err)
		}
		pb, err := srv.encryptBody(req, f, name, key, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		meta := map[string]string{"X-Object-Meta-Color": "blue", "Content-Type": "application/octet-stream"}
		if err := srv.sealUserMeta(meta, key, name, sysmeta.DataSet); err != nil {
			b.Fatal(err)
		}
		if err := sealSysmeta(meta, pb.etagKeys, name); err != nil {
			b.Fatal(err)
		}
		for k, v := range pb.crypt.Map() {
			meta[k] = v
		}
	}
	b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/1e3, "cpu-µs/op")
}
