package keyservice

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// pickyAudit takes batches of audit records all or none, as the SQL store
// does: it refuses any batch holding a record whose Detail is
// "unwritable" (a value the database cannot hold), and every batch while
// down.
type pickyAudit struct {
	AuditStore
	mu      sync.Mutex
	down    bool
	written []string
}

func (p *pickyAudit) AppendKeyAudit(_ context.Context, recs []KeyAuditRecord) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("database unreachable")
	}
	for _, r := range recs {
		if r.Detail == "unwritable" {
			return errors.New("Error 1366: Incorrect string value")
		}
	}
	for _, r := range recs {
		p.written = append(p.written, r.RequestID)
	}
	return nil
}

func (p *pickyAudit) got() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.written, " ")
}

// TestAuditRecordRefusedAlone: one record the database refuses while it
// takes the others is dropped (its log line stands, and an error line
// says so), and the records queued beside and behind it are written:
// before, the batch holding it was retried for ever, nothing more was
// written, and once the queue was full every audited read was refused.
// While the database refuses everything, nothing is dropped.
func TestAuditRecordRefusedAlone(t *testing.T) {
	var logs bytes.Buffer
	store := &pickyAudit{}
	a := newAuditWriter(store, zerolog.New(&logs))
	defer func() { _ = a.close(context.Background()) }()
	flush := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.flush(ctx); err != nil {
			t.Fatalf("flush: %v (written: %s)", err, store.got())
		}
	}
	queue := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			rec := KeyAuditRecord{RequestID: id, Action: AuditGet, Outcome: OutcomeNotFound, ProjectID: "p", EventID: "ev-" + id}
			if strings.HasPrefix(id, "bad") {
				rec.Detail = "unwritable"
			}
			if err := a.record(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		}
	}

	queue("r1", "r2", "bad1", "r3", "r4")
	flush()
	if got := store.got(); got != "r1 r2 r3 r4" {
		t.Fatalf("written %q, want the four writable records", got)
	}
	if !strings.Contains(logs.String(), `"event_id":"ev-bad1"`) || !strings.Contains(logs.String(), "dropped") {
		t.Fatalf("no error line for the dropped record:\n%s", logs.String())
	}

	store.mu.Lock()
	store.down = true
	store.mu.Unlock()
	queue("r5", "r6", "r7", "r8")
	time.Sleep(3 * auditFlushInterval) // the writer tries, and fails
	a.mu.Lock()
	waiting := len(a.queue) + a.pending
	a.mu.Unlock()
	if waiting != 4 {
		t.Fatalf("%d records waiting while the database is down, want all 4 kept", waiting)
	}
	store.mu.Lock()
	store.down = false
	store.mu.Unlock()
	flush()
	if got, want := store.got(), "r1 r2 r3 r4 r5 r6 r7 r8"; got != want {
		t.Fatalf("written %q, want %q", got, want)
	}
	if n := strings.Count(logs.String(), "dropped"); n != 1 {
		t.Fatalf("%d records dropped in all, want 1:\n%s", n, logs.String())
	}
}
