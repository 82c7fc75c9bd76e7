package keyservice

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Audit writing. Records are logged at once and written to the store in
// batches by one goroutine per Service: a batch is written at the latest
// auditFlushInterval after its first record (well within the promised
// second), retried while the database fails, and everything queued is
// written by Close. When the queue is full (the database has been failing
// for a while), recording fails and the operation being audited is refused:
// key material is not handed out unaudited.
const (
	auditFlushInterval = 200 * time.Millisecond
	auditBatchSize     = 500
	auditQueueSize     = 50000
)

type auditWriter struct {
	store AuditStore
	log   zerolog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []KeyAuditRecord
	pending int    // records taken by the writer, not yet written
	written uint64 // records written, or dropped as refused (isolate), so far (for FlushAudit)
	queued  uint64 // records ever queued
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

func newAuditWriter(store AuditStore, log zerolog.Logger) *auditWriter {
	a := &auditWriter{store: store, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// auditor returns the Service's audit writer, starting it on first use.
func (s *Service) auditor() *auditWriter {
	s.auditOnce.Do(func() {
		s.audits = newAuditWriter(s.store, s.auditLog)
	})
	return s.audits
}

func (a *auditWriter) record(_ context.Context, rec KeyAuditRecord) error {
	ev := a.log.Info()
	if rec.Outcome != OutcomeSuccess {
		ev = a.log.Warn()
	}
	ev.Str("audit", "project_key").Str("action", rec.Action).Str("outcome", rec.Outcome).
		Str("project_id", rec.ProjectID).Str("key_id", rec.KeyID).Str("user_id", rec.UserID).
		Str("user_project_id", rec.UserProjectID).Bool("service", rec.Service).
		Str("request_id", rec.RequestID).Str("detail", rec.Detail).Msg("project key audit")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("audit: %w: shutting down", ErrUnavailable)
	}
	if len(a.queue)+a.pending >= auditQueueSize {
		return fmt.Errorf("audit: %w: %d records waiting for the database", ErrUnavailable, len(a.queue)+a.pending)
	}
	a.queue = append(a.queue, rec)
	a.queued++
	if len(a.queue) >= auditBatchSize {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// newEventID returns a fresh audit event id: a UUID version 7 (RFC 9562),
// whose leading bits are the time in milliseconds, so ids made later sort
// later. key_audit's unique index on event_id then grows at its right
// edge, as the primary key does. Random version 4 ids scattered every
// insert across the whole index: on MariaDB, with a million rows in
// key_audit, a row with a random id cost 33-56 µs of server CPU and one
// with a time-ordered id 17-26 µs, and once a random index outgrows the
// buffer pool each insert waits for a read (docs/benchmarks.md).
func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil { // the system's random source failed
		return NewID()
	}
	return id.String()
}

// run writes batches until closed and drained.
func (a *auditWriter) run() {
	defer close(a.done)
	tick := time.NewTicker(auditFlushInterval)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-tick.C:
		case <-a.kick:
		}
		for {
			a.mu.Lock()
			n := min(len(a.queue), auditBatchSize)
			closed := a.closed
			if n == 0 {
				a.mu.Unlock()
				if closed {
					return
				}
				break
			}
			batch := a.queue[:n:n]
			a.queue = a.queue[n:]
			a.pending += n
			a.mu.Unlock()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := a.store.AppendKeyAudit(ctx, batch)
			if err != nil && n > 1 {
				batch, err = a.isolate(ctx, batch, err)
			}
			cancel()

			a.mu.Lock()
			a.pending -= n
			if err != nil {
				// Put what is left of the batch back in front and retry at
				// the next tick (or at once when closing, a bounded number
				// of times); what isolate wrote or dropped is done.
				a.written += uint64(n - len(batch))
				a.queue = append(batch, a.queue...)
				failures++
				a.mu.Unlock()
				a.log.Error().Err(err).Int("records", n).Int("attempt", failures).Msg("writing project key audit records failed; retrying")
				if closed && failures >= 5 {
					a.mu.Lock()
					lost := len(a.queue)
					a.queue = nil
					a.cond.Broadcast()
					a.mu.Unlock()
					a.log.Error().Int("records", lost).Msg("project key audit records could not be written before shutdown; they are in the log only")
					return
				}
				if closed {
					time.Sleep(time.Duration(failures) * 200 * time.Millisecond)
					continue
				}
				break
			}
			failures = 0
			a.written += uint64(n)
			a.cond.Broadcast()
			a.mu.Unlock()
		}
	}
}

// isolate writes a batch the store refused record by record, so that one
// record the database refuses while it takes the others (a value it
// cannot hold) does not hold up every record behind it for ever: with the
// queue full, every audited operation would be refused. A record that
// fails alone between records that are written is dropped, with an error
// line; its log line stands (record). Failures in a row with none written
// after them are the database failing, not records: isolate returns those
// records and the ones it has not tried, to be retried whole, with the
// batch's error. It returns nil once every record is written or dropped.
func (a *auditWriter) isolate(ctx context.Context, batch []KeyAuditRecord, batchErr error) ([]KeyAuditRecord, error) {
	// outageAfter failures in a row are taken for the database failing
	const outageAfter = 3
	var failed []KeyAuditRecord // since the last record written
	var failedErr error
	for i, rec := range batch {
		err := a.store.AppendKeyAudit(ctx, []KeyAuditRecord{rec})
		if err != nil {
			failed, failedErr = append(failed, rec), err
			if len(failed) >= outageAfter {
				return append(failed, batch[i+1:]...), batchErr
			}
			continue
		}
		for _, bad := range failed {
			a.log.Error().Err(failedErr).Str("event_id", bad.EventID).Str("action", bad.Action).
				Str("project_id", bad.ProjectID).Str("request_id", bad.RequestID).
				Msg("the database refused a project key audit record and took the next one; dropped (its log line stands)")
		}
		failed = nil
	}
	if len(failed) > 0 {
		return failed, batchErr
	}
	return nil, nil
}

// flush waits until every record queued before the call is written.
func (a *auditWriter) flush(ctx context.Context) error {
	a.mu.Lock()
	target := a.queued
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	stop := context.AfterFunc(ctx, func() {
		a.mu.Lock()
		a.cond.Broadcast()
		a.mu.Unlock()
	})
	defer stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.written < target {
		if ctx.Err() != nil {
			return fmt.Errorf("audit flush: %w", ctx.Err())
		}
		if a.closed && len(a.queue) == 0 && a.pending == 0 {
			break
		}
		a.cond.Wait()
	}
	return nil
}

func (a *auditWriter) close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: closing: %w", ctx.Err())
	}
}

// FlushAudit waits until the audit records queued so far are written.
func (s *Service) FlushAudit(ctx context.Context) error {
	return s.auditor().flush(ctx)
}

// Close writes every queued audit record and stops the writer. Call it
// after the HTTP server stopped taking requests.
func (s *Service) Close(ctx context.Context) error {
	s.stopKEKSweeper()
	s.auditOnce.Do(func() {}) // never started: nothing to write
	if s.audits == nil {
		return nil
	}
	return s.audits.close(ctx)
}
