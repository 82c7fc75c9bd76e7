package manage_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestAuditPrune runs the retention commands of docs/operations.md against
// a real arca-api on MariaDB that goes on serving audited reads while the
// prune runs: the dry run counts, the prune removes exactly the records
// older than its cut-off (not one younger, not one written meanwhile), the
// documented 90-day prune removes nothing from a young table, and a
// missing or future cut-off is refused before anything is touched.
func TestAuditPrune(t *testing.T) {
	_, dsn := testenv.MySQL(t)
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: osloFromDSN(t, dsn)})
	const project = "pruneproj"
	header := map[string]string{"X-Project-Id": project, "X-User-Id": "prune-user", "X-Roles": "admin,member,reader"}
	code, body := testenv.Do(t, "POST", srv.URL+"/v1/secrets", `{"payload": "kept short", "payload_content_type": "text/plain"}`, header)
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/secrets: %d %s", code, body)
	}
	var created struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.Ref == "" {
		t.Fatalf("POST /v1/secrets answered %s (%v)", body, err)
	}
	payloadURL := created.Ref + "/payload"
	// read is an audited read: each one a secret:decrypt record.
	read := func() {
		t.Helper()
		if code, body := testenv.Do(t, "GET", payloadURL, "", header); code != http.StatusOK {
			t.Fatalf("GET payload: %d %s", code, body)
		}
	}
	// exported waits until at least want records have reached the
	// database, and for any batch still on its way (arca-api writes every
	// 200 ms), and returns every record's time.
	exported := func(want int) []time.Time {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		settled := false
		for {
			o, err := srv.Manage(t, "audit", "list", "--project", project, "--format", "json")
			if err != nil {
				t.Fatalf("audit list: %v\n%s", err, o)
			}
			events := parseLines(t, o)
			if len(events) < want && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if !settled {
				settled = true
				time.Sleep(300 * time.Millisecond)
				continue
			}
			var times []time.Time
			for _, ev := range events {
				at, err := time.Parse(time.RFC3339Nano, ev.EventTime)
				if err != nil {
					t.Fatalf("eventTime %q: %v", ev.EventTime, err)
				}
				times = append(times, at)
			}
			return times
		}
	}

	const reads = 25
	for range reads {
		read()
	}
	old := len(exported(reads))
	if old != reads {
		t.Fatalf("%d records after %d audited reads, want %d", old, reads, reads)
	}
	time.Sleep(20 * time.Millisecond)
	cut := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	for range reads {
		read()
	}
	young := len(exported(old+reads)) - old
	if young != reads {
		t.Fatalf("%d records after %d more audited reads, want %d", young, reads, reads)
	}
	before := cut.Format(time.RFC3339Nano)

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "prune"}, "--before T is required"},
		{[]string{"audit", "prune", "--before", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
		{[]string{"audit", "prune", "--before", "last week"}, "--before \"last week\""},
	} {
		if o, err := srv.Manage(t, bad.args...); err == nil || !strings.Contains(o, bad.want) {
			t.Errorf("arca-manage %s: %v, %q; want a refusal saying %q", strings.Join(bad.args, " "), err, o, bad.want)
		}
	}
	if n := len(exported(old + young)); n != old+young {
		t.Fatalf("a refused prune changed the table: %d records, want %d", n, old+young)
	}

	o, err := srv.Manage(t, "audit", "prune", "--before", before, "--dry-run")
	if want := fmt.Sprintf("%d audit records written before", old); err != nil || !strings.HasPrefix(o, want) || !strings.Contains(o, "would be removed") {
		t.Fatalf("audit prune --dry-run: %v %q, want %q ... would be removed", err, o, want)
	}

	// arca-api keeps appending while the prune runs, in batches of 4.
	var wg sync.WaitGroup
	var during atomic.Int32
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Not testenv.Do: its t.Fatal must not run on this goroutine.
			req, err := http.NewRequest("GET", payloadURL, nil)
			if err != nil {
				return
			}
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				during.Add(1)
			}
		}
	})
	o, err = srv.Manage(t, "audit", "prune", "--before", before, "--batch", "4")
	close(stop)
	wg.Wait()
	if want := fmt.Sprintf("%d audit records written before", old); err != nil || !strings.HasPrefix(o, want) || !strings.Contains(o, "removed") {
		t.Fatalf("audit prune: %v %q, want %q ... removed", err, o, want)
	}
	total := young + int(during.Load())
	left := exported(total)
	if len(left) != total {
		t.Fatalf("%d records left, want the %d younger ones and the %d written during the prune", len(left), young, during.Load())
	}
	for _, at := range left {
		if at.Before(cut) {
			t.Errorf("a record of %s, older than the cut-off %s, was left", at, before)
		}
	}

	// The documented retention: nothing in this table is 90 days old.
	o, err = srv.Manage(t, "audit", "prune", "--before", "2160h")
	if err != nil || !strings.HasPrefix(o, "0 audit records written before ") {
		t.Fatalf("audit prune --before 2160h: %v %q", err, o)
	}
	t.Logf("%d records pruned, %d younger kept, %d written during the prune", old, young, during.Load())
}
