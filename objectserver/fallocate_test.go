package objectserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/objectserver/diskfile"
)

// TestFallocateReserve: a PUT whose announced length would leave less than
// fallocate_reserve free on the device answers 507, before any 100
// Continue (as Swift, which allocates before it first reads the body: the
// proxy, which has sent nothing, goes to a handoff), and leaves nothing on
// the device; one of unknown length is not checked, as in Swift; with a
// reserve the device keeps, the PUT is stored.
func TestFallocateReserve(t *testing.T) {
	full := diskfile.Reserve{Value: 100, Percent: true}
	for _, tc := range []struct {
		name       string
		reserve    diskfile.Reserve
		disable    bool
		chunked    bool
		wantStatus int
	}{
		{name: "reserve kept", reserve: diskfile.DefaultReserve, wantStatus: http.StatusCreated},
		{name: "reserve refused", reserve: full, wantStatus: http.StatusInsufficientStorage},
		{name: "chunked: not checked", reserve: full, chunked: true, wantStatus: http.StatusCreated},
		{name: "disable_fallocate", reserve: full, disable: true, wantStatus: http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.FallocateReserve, c.DisableFallocate = tc.reserve, tc.disable })
			body := strings.Repeat("b", 10000)
			length := fmt.Sprintf("Content-Length: %d\r\n", len(body))
			if tc.chunked {
				length = "Transfer-Encoding: chunked\r\n"
			}
			conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nX-Timestamp: %s\r\nContent-Type: text/plain\r\n%sExpect: 100-continue\r\n"+
				"X-Container-Host: %s\r\nX-Container-Device: cd\r\nX-Container-Partition: 9\r\n\r\n", objPath, e.next(), length, e.contURL)
			br := bufio.NewReader(conn)
			first, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantStatus == http.StatusInsufficientStorage {
				if first.StatusCode != http.StatusInsufficientStorage {
					t.Fatalf("first answer %d, want 507 before any 100 Continue", first.StatusCode)
				}
				if got := readBody(t, first); !strings.Contains(got, "Insufficient Storage") {
					t.Errorf("507 body %q, want Swift's", got)
				}
				if files := e.files(); len(files) != 0 {
					t.Errorf("files after the refused PUT: %v", files)
				}
				return
			}
			if first.StatusCode != http.StatusContinue {
				t.Fatalf("first answer %d, want 100 Continue", first.StatusCode)
			}
			if tc.chunked {
				fmt.Fprintf(conn, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
			} else {
				_, _ = io.WriteString(conn, body)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("PUT: %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			get := e.do("GET", objPath, nil, nil)
			if got := readBody(t, get); get.StatusCode != http.StatusOK || got != body {
				t.Fatalf("GET after the PUT: %d, %d bytes", get.StatusCode, len(got))
			}
		})
	}
}

// TestLoadConfigFallocate: fallocate_reserve and disable_fallocate as
// Swift reads them, [app:object-server] over [DEFAULT], 1% by default, and
// a value that is neither bytes nor a percentage refused by name.
func TestLoadConfigFallocate(t *testing.T) {
	for _, tc := range []struct {
		conf        string
		want        diskfile.Reserve
		wantDisable bool
		wantErr     string
	}{
		{conf: "", want: diskfile.Reserve{Value: 1, Percent: true}},
		{conf: "[DEFAULT]\nfallocate_reserve = 10%\n", want: diskfile.Reserve{Value: 10, Percent: true}},
		{conf: "[DEFAULT]\nfallocate_reserve = 10%\n[app:object-server]\nfallocate_reserve = 1073741824\n", want: diskfile.Reserve{Value: 1 << 30}},
		{conf: "[DEFAULT]\nfallocate_reserve = 0\ndisable_fallocate = yes\n", want: diskfile.Reserve{}, wantDisable: true},
		{conf: "[DEFAULT]\nfallocate_reserve = ten\n", wantErr: "fallocate_reserve"},
		{conf: "[DEFAULT]\nfallocate_reserve = 150%\n", wantErr: "fallocate_reserve"},
	} {
		f, err := config.Parse([]byte(tc.conf + "[arca]\nkey_service_noauth = true\n"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(f)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: %v, want an error naming %s", tc.conf, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.conf, err)
		}
		if c.FallocateReserve != tc.want || c.DisableFallocate != tc.wantDisable {
			t.Errorf("%q: reserve %+v, disable %v; want %+v, %v", tc.conf, c.FallocateReserve, c.DisableFallocate, tc.want, tc.wantDisable)
		}
	}
}
