package objectserver

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestLentBuffersNeverMixObjects: GETs borrow their buffers (the data
// file read whole, the reader's plaintext, the first window) from pools
// shared by every request. Objects of two projects, of sizes that share
// the pools' classes, read whole, by range and by HEAD from eight clients
// at once: every answer is exactly its own object's bytes, never another
// object's left in a reused buffer.
func TestLentBuffersNeverMixObjects(t *testing.T) {
	e := newEnv(t)
	rnd := rand.New(rand.NewPCG(7, 11))
	objects := map[string]string{}
	for i, size := range []int{7000, 5000, 10, 4300, 4096, 8100, 1, 60000} {
		project := []string{"AUTH_p1", "AUTH_p2"}[i%2]
		path := fmt.Sprintf("/sda/1/%s/c/o%d", project, i)
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		body := string(b)
		if resp := e.put(path, body, nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d", path, resp.StatusCode)
		}
		objects[path] = body
	}
	paths := make([]string, 0, len(objects))
	for p := range objects {
		paths = append(paths, p)
	}
	check := func(r *rand.Rand) error {
		path := paths[r.IntN(len(paths))]
		want := objects[path]
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
		switch r.IntN(3) {
		case 1:
			off := r.IntN(len(want))
			end := off + r.IntN(len(want)-off)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, end))
			want = want[off : end+1]
		case 2:
			req.Method = http.MethodHead
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", req.Method, path, err)
		}
		if req.Method == http.MethodHead {
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(want)) {
				return fmt.Errorf("HEAD %s: %d, length %d, want %d", path, resp.StatusCode, resp.ContentLength, len(want))
			}
			return nil
		}
		if string(got) != want {
			return fmt.Errorf("%s %s (Range %q): %d: %d bytes, not the object's own %d", req.Method, path,
				req.Header.Get("Range"), resp.StatusCode, len(got), len(want))
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 99))
			for range 60 {
				if err := check(r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var failures []string
	for err := range errs {
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		t.Fatal(strings.Join(failures, "\n"))
	}
}
