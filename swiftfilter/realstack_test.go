package swiftfilter

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// objectPuts are the object PUTs the object servers were sent since the
// n-th backend request for the object at path (/v1/AUTH_p/c/o); it fails
// the test when there is none.
func (e *shapeEnv) objectPuts(t *testing.T, n int, path string) []backendReq {
	t.Helper()
	suffix := strings.TrimPrefix(path, "/v1")
	var out []backendReq
	for _, p := range e.wire.puts(n, suffix) {
		if strings.HasSuffix(p.path, suffix) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no object PUT of %s reached the object servers", path)
	}
	return out
}

// wantKeyIDs checks the object PUTs of path since n: only the canonical
// header, and key id want on each (none when want is ""); with orNone, a
// PUT without one passes too (a write Swift builds itself, behind the
// reverse proxy: the object server keys it).
func (e *shapeEnv) wantKeyIDs(t *testing.T, shape string, n int, path, want string, orNone bool) {
	t.Helper()
	for _, p := range e.objectPuts(t, n, path) {
		for _, name := range p.names {
			if name != KeyIDHeader {
				t.Errorf("%s: PUT %s reached the object server with header %q", shape, p.path, name)
			}
		}
		switch {
		case want == "" && len(p.keyIDs) == 0:
		case want != "" && len(p.keyIDs) == 1 && p.keyIDs[0] == want:
		case orNone && len(p.keyIDs) == 0:
		default:
			t.Errorf("%s: PUT %s reached the object server with key ids %q, want [%s]", shape, p.path, p.keyIDs, want)
		}
	}
}

// nothingReached checks that no object PUT of path reached the object
// servers since n.
func (e *shapeEnv) nothingReached(t *testing.T, shape string, n int, path string) {
	t.Helper()
	if puts := e.wire.puts(n, strings.TrimPrefix(path, "/v1")); len(puts) != 0 {
		t.Errorf("%s: %d object PUTs of %s reached the object servers: %+v", shape, len(puts), path, puts)
	}
}

// TestRealStackFilter runs a Swift client's everyday requests through
// both shapes of the filter (shapeCases) on one object tier whose object
// servers' wire is recorded: the swift CLI's upload, copy and download, a
// forged key id, an invalid token, an SLO, TempURL and public reads
// without a token, COPY and a PUT into another account through an ACL.
// What reaches the object servers carries the project's active key id
// where the client's token owns the account, and none otherwise (the
// object server then keys the write itself). Behind the reverse proxy,
// also the Swift proxy stopped and started again. Neither shape's Go side
// logs a token or a TempURL signature.
func TestRealStackFilter(t *testing.T) {
	e := startShapes(t)
	s := e.stack
	acct := "/v1/AUTH_" + s.Project
	// The project's first write keys it (the object server makes its
	// key); the Go side's cached "no key yet" (error_cache_ttl) runs out.
	first := fmt.Sprintf("sf-first-%d", time.Now().UnixNano())
	e.must(t, 201, "PUT", e.shapes["pipeline"]+acct+"/"+first, s.Token, nil, nil)
	e.must(t, 201, "PUT", e.shapes["pipeline"]+acct+"/"+first+"/o", s.Token, []byte("first"), nil)
	active := e.activeKey(t, s.Project)
	time.Sleep(1500 * time.Millisecond)
	for _, sc := range shapeCases {
		t.Run(sc.name, func(t *testing.T) { e.everyday(t, sc, acct, active) })
	}
	for name, p := range map[string]*testenv.Proc{"reverse proxy": e.filter, "decision socket": e.decisions} {
		if logs := p.Log.String(); strings.Contains(logs, s.Token) || strings.Contains(logs, e.altTok) || strings.Contains(logs, "temp_url_sig") {
			t.Errorf("a token or TempURL signature appears in the %s's log", name)
		}
	}
}

// everyday is TestRealStackFilter's scenarios through shape sc, as the
// stack's demo user whose account is acct and active key id active.
func (e *shapeEnv) everyday(t *testing.T, sc shapeCase, acct, active string) {
	s := e.stack
	base := e.shapes[sc.name]
	cont := fmt.Sprintf("sf-%s-%d", sc.name, time.Now().UnixNano())
	e.must(t, 201, "PUT", base+acct+"/"+cont, s.Token, nil, nil)

	t.Run("swift CLI upload download copy", func(t *testing.T) {
		testenv.RequireTools(t, "swift") // python3-swiftclient
		dir := t.TempDir()
		src := filepath.Join(dir, "in.bin")
		data := bytes.Repeat([]byte("arca swift filter "), 100000)
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		swift := func(args ...string) {
			t.Helper()
			cmd := exec.Command("swift", append([]string{"--os-auth-token", s.Token, "--os-storage-url", base + acct}, args...)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("swift %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		n := e.wire.count()
		swift("upload", cont, "in.bin", "--object-name", "cli/obj")
		e.wantKeyIDs(t, sc.name, n, acct+"/"+cont+"/cli/obj", active, false)
		swift("copy", cont, "cli/obj", "--destination", "/"+cont+"/cli/copy")
		// copy's PUT is built inside Swift: keyed by the middleware;
		// behind the reverse proxy it keeps the key id the filter gave
		// the client's request, or the object server keys it.
		e.wantKeyIDs(t, sc.name, n, acct+"/"+cont+"/cli/copy", active, !sc.subrequestsKeyed)
		swift("download", cont, "cli/copy", "-o", "out.bin")
		got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("downloaded copy differs (%d bytes, %v)", len(got), err)
		}
	})

	t.Run("forged key id never reaches the object servers", func(t *testing.T) {
		n := e.wire.count()
		e.must(t, 201, "PUT", base+acct+"/"+cont+"/forged", s.Token, []byte("x"), forgedSpellings)
		e.wantKeyIDs(t, sc.name, n, acct+"/"+cont+"/forged", active, false)
		n = e.wire.count()
		e.must(t, 200, "GET", base+acct+"/"+cont+"/forged", s.Token, nil, forgedSpellings)
		for _, r := range e.wire.since(n) {
			if len(r.names) != 0 {
				t.Errorf("%s %s reached the object server with key id headers %q", r.method, r.path, r.names)
			}
		}
	})

	t.Run("invalid token", func(t *testing.T) {
		n := e.wire.count()
		req, err := http.NewRequest("PUT", base+acct+"/"+cont+"/nope", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", "gAAAAABinvalidtoken")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Keystone's challenge, from the filter or from Swift's authtoken.
		if challenges := strings.Join(resp.Header.Values("WWW-Authenticate"), ", "); resp.StatusCode != 401 || !strings.Contains(challenges, e.ks.URL) {
			t.Errorf("invalid token: %d, WWW-Authenticate %q", resp.StatusCode, challenges)
		}
		e.nothingReached(t, sc.name, n, acct+"/"+cont+"/nope")
	})

	t.Run("SLO upload", func(t *testing.T) {
		seg1, seg2 := bytes.Repeat([]byte("a"), 1<<20), []byte("tail")
		n := e.wire.count()
		e.must(t, 201, "PUT", base+acct+"/"+cont+"/slo/1", s.Token, seg1, nil)
		e.must(t, 201, "PUT", base+acct+"/"+cont+"/slo/2", s.Token, seg2, nil)
		manifest := fmt.Sprintf(`[{"path":"/%s/slo/1","etag":"%x","size_bytes":%d},{"path":"/%s/slo/2","etag":"%x","size_bytes":%d}]`,
			cont, md5.Sum(seg1), len(seg1), cont, md5.Sum(seg2), len(seg2))
		e.must(t, 201, "PUT", base+acct+"/"+cont+"/slo/big?multipart-manifest=put", s.Token, []byte(manifest), nil)
		for _, o := range []string{"slo/1", "slo/2", "slo/big"} {
			e.wantKeyIDs(t, sc.name, n, acct+"/"+cont+"/"+o, active, false)
		}
		got := e.must(t, 200, "GET", base+acct+"/"+cont+"/slo/big", s.Token, nil, nil)
		if !bytes.Equal(got, append(seg1, seg2...)) {
			t.Errorf("SLO GET: %d bytes", len(got))
		}
	})

	t.Run("TempURL GET and PUT without a token", func(t *testing.T) {
		key := "tempurl-key-" + cont
		e.must(t, 204, "POST", base+acct, s.Token, nil, map[string][]string{"X-Account-Meta-Temp-URL-Key": {key}})
		sign := func(method, path string) string {
			exp := time.Now().Add(5 * time.Minute).Unix()
			mac := hmac.New(sha256.New, []byte(key))
			fmt.Fprintf(mac, "%s\n%d\n%s", method, exp, path)
			return fmt.Sprintf("%s?temp_url_sig=%s&temp_url_expires=%d", path, hex.EncodeToString(mac.Sum(nil)), exp)
		}
		path := acct + "/" + cont + "/tmp/obj"
		n := e.wire.count()
		// No token, so no key id: Swift checks the signature, and the
		// object server resolves the account's key itself.
		e.must(t, 201, "PUT", base+sign("PUT", path), "", []byte("temp data"), forgedSpellings)
		e.wantKeyIDs(t, sc.name, n, path, "", false)
		if got := e.must(t, 200, "GET", base+sign("GET", path), "", nil, nil); string(got) != "temp data" {
			t.Errorf("TempURL GET: %q", got)
		}
		e.must(t, 401, "GET", base+path, "", nil, nil) // no token, no signature: Swift says no
	})

	t.Run("public container without a token", func(t *testing.T) {
		pub := cont + "-pub"
		e.must(t, 201, "PUT", base+acct+"/"+pub, s.Token, nil, map[string][]string{"X-Container-Read": {".r:*"}})
		e.must(t, 201, "PUT", base+acct+"/"+pub+"/o", s.Token, []byte("public"), nil)
		if got := e.must(t, 200, "GET", base+acct+"/"+pub+"/o", "", nil, nil); string(got) != "public" {
			t.Errorf("public GET: %q", got)
		}
	})

	t.Run("COPY into another account through an ACL", func(t *testing.T) {
		altAcct := "/v1/AUTH_" + e.alt
		shared := cont + "-shared"
		e.must(t, 201, "PUT", base+altAcct+"/"+shared, e.altTok, nil, map[string][]string{"X-Container-Write": {s.Project + ":*"}})
		e.must(t, 201, "PUT", base+acct+"/"+cont+"/src", s.Token, []byte("shared data"), nil)
		n := e.wire.count()
		e.must(t, 201, "COPY", base+acct+"/"+cont+"/src", s.Token, nil,
			map[string][]string{"Destination": {shared + "/dst"}, "Destination-Account": {"AUTH_" + e.alt}, "X-Arca-Key-Id": {"forged"}})
		// demo's token does not own alt's account: no key id (the object
		// server resolves alt's key once Swift allowed the write).
		e.wantKeyIDs(t, sc.name, n, altAcct+"/"+shared+"/dst", "", false)
		e.must(t, 201, "PUT", base+altAcct+"/"+shared+"/put", s.Token, []byte("by demo"), forgedSpellings)
		e.wantKeyIDs(t, sc.name, n, altAcct+"/"+shared+"/put", "", false)
		if got := e.must(t, 200, "GET", base+altAcct+"/"+shared+"/dst", e.altTok, nil, nil); string(got) != "shared data" {
			t.Errorf("alt reads %q", got)
		}
	})

	// The pipeline shape has no hop of its own to lose; its counterpart,
	// the decision socket gone, is TestRealStackPipelineKeyIDs'.
	if sc.name == "reverse-proxy" {
		t.Run("Swift proxy stopped and started again", func(t *testing.T) {
			e.upstream.Stop()
			code, b := e.do(t, "GET", base+acct+"/"+cont+"/forged", s.Token, nil, nil)
			if code != http.StatusServiceUnavailable {
				t.Fatalf("proxy down: %d %s", code, b)
			}
			e.upstream = testenv.StartProc(t, testenv.NewLog(t, "wholepath-proxy (restarted)"), "swift-proxy-server", e.upstreamConf, "-v")
			e.upstream.WaitHealthy(t, e.upstreamURL+"/healthcheck")
			e.must(t, 200, "GET", base+acct+"/"+cont+"/forged", s.Token, nil, nil)
		})
	}
}
