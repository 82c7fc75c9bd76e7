package objectserver

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/ringhash"
)

// benchServer is an in-process arca-object-server over loopback HTTP.
func benchServer(b testing.TB, encrypt bool) (url string, cleanup func()) {
	b.Helper()
	devices := b.TempDir()
	if err := os.MkdirAll(filepath.Join(devices, "sda"), 0o755); err != nil {
		b.Fatal(err)
	}
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "p", Suffix: "s"}, Policies: map[int]ringhash.Policy{0: {Type: "replication"}}}
	keys := newMemResolver()
	srv, err := New(Config{Devices: devices, Encrypt: encrypt, Algorithm: objcrypt.AES128CBC, StoredEtag: true,
		ReclaimAge: time.Hour}, swift, keys, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL + "/sda/1", ts.Close
}

var benchSizes = []int{4 << 10, 1 << 20}

func benchBody(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b[:min(n, 1<<20)])
	for i := 1 << 20; i < n; i += 1 << 20 {
		copy(b[i:], b[:1<<20])
	}
	return b
}

var tsCounter atomic.Int64

func nextTS() string {
	base := time.Now().UnixNano() / 10000
	n := tsCounter.Add(1)
	return diskfile.Timestamp{Raw: base + n}.Internal()
}

func doPut(c *http.Client, url string, body []byte) error {
	req, _ := http.NewRequest("PUT", url, bytes.NewReader(body))
	req.Header.Set("X-Timestamp", nextTS())
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Object-Meta-Color", "blue") // user metadata to open on HEAD and GET
	req.ContentLength = int64(len(body))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("PUT %d", resp.StatusCode)
	}
	return nil
}

func doGet(c *http.Client, url string) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return n, fmt.Errorf("GET %d", resp.StatusCode)
	}
	return n, err
}

// doHead answers an error unless HEAD is 200.
func doHead(c *http.Client, url string) error {
	resp, err := c.Head(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HEAD %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkObjectServer measures PUT, HEAD and GET through loopback HTTP, with and
// without encryption (b.SetBytes gives MB/s).
func BenchmarkObjectServer(b *testing.B) {
	for _, enc := range []bool{true, false} {
		url, done := benchServer(b, enc)
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		for _, size := range benchSizes {
			body := benchBody(size)
			name := fmt.Sprintf("encrypt=%v/%dKiB", enc, size>>10)
			b.Run("PUT/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				var i atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := doPut(c, fmt.Sprintf("%s/AUTH_b/c/o%d", url, i.Add(1)%64), body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			if err := doPut(c, url+"/AUTH_b/c/get", body); err != nil {
				b.Fatal(err)
			}
			b.Run("HEAD/"+name, func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := doHead(c, url+"/AUTH_b/c/get"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("GET/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := doGet(c, url+"/AUTH_b/c/get"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
		done()
	}
}
