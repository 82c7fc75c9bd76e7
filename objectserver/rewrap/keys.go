package rewrap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// keyNeed names keys an object needs that the key client may have to ask
// the key service for: they are asked for with no partition lock held
// (warming the client's cache) and the object is examined again.
type keyNeed struct {
	project, oldID string // oldID "": only the active key id
}

// warmFor is how long after the worker asked the key client for a key,
// with no lock held, it asks again under a partition lock: the client
// then answers from its cache. Past it, the object is not examined under
// the lock: the lock is released, the keys asked for again and the object
// examined again (worker.hash). The job keeps no key of its own, so what
// it uses is never older than the client's active_key_cache_ttl and
// key_cache_ttl.
const warmFor = time.Second

// warmFor is the job's warmFor: Options.warmFor, set by tests only, or
// the constant.
func (j *job) warmFor() time.Duration {
	if j.o.warmFor > 0 {
		return j.o.warmFor
	}
	return warmFor
}

// warmth is when prefetch last asked for some keys, and its failure: a
// failure is reported for warmFor without asking again under the lock
// (the client need not remember failures).
type warmth struct {
	at  time.Time
	err error // a *reasonError
}

// warm reports whether the keys of n were asked for less than warmFor ago,
// and the failure then.
func (w *worker) warm(n keyNeed) (bool, error) {
	e, ok := w.warmed[n]
	if !ok || time.Since(e.at) >= w.j.warmFor() {
		return false, nil
	}
	return true, e.err
}

// prefetch asks the key client for the keys of n with no lock held, so
// that asking again under the lock is a cache hit. The answers are
// dropped: they are asked for again where they are used.
func (w *worker) prefetch(ctx context.Context, n keyNeed) {
	j := w.j
	if len(w.warmed) > 4096 {
		clear(w.warmed)
	}
	k, err := j.o.Keys.ActiveKey(ctx, n.project)
	var aerr error
	if err != nil {
		aerr = keyError("active key", err)
	}
	w.warmed[keyNeed{project: n.project}] = warmth{time.Now(), aerr}
	if n.oldID == "" {
		return
	}
	if aerr == nil {
		if _, err := j.o.Keys.KeyMaterial(ctx, n.project, k.ID); err != nil {
			aerr = keyError("active key", err)
		} else if _, err := j.o.Keys.KeyMaterial(ctx, n.project, n.oldID); err != nil {
			aerr = keyError("old key", err)
		}
	}
	w.warmed[n] = warmth{time.Now(), aerr}
}

// activeKey returns the project's active key id from the key client, each
// time: the job keeps none, so a rotation during a run is seen within the
// client's active_key_cache_ttl. It records the id for the summary.
func (j *job) activeKey(ctx context.Context, project string) (string, error) {
	k, err := j.o.Keys.ActiveKey(ctx, project)
	if err != nil {
		return "", err
	}
	j.mu.Lock()
	j.s.Active[project] = k.ID
	j.mu.Unlock()
	return k.ID, nil
}

// material returns a copy of a key's bytes, from the key client; the
// caller wipes it when done.
func (j *job) material(ctx context.Context, project, id string) (objcrypt.ProjectKey, error) {
	raw, err := j.o.Keys.KeyMaterial(ctx, project, id)
	if err != nil {
		return objcrypt.ProjectKey{}, fmt.Errorf("key %s of project %s: %w", id, project, err)
	}
	return objcrypt.ProjectKey{ID: id, Key: append([]byte(nil), raw...)}, nil
}

// reasonError is an object's failure with the reason the summary counts
// it under.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// keyError is a failure to get one of an object's keys (which: "active
// key" or "old key"), counted under the key service's answer.
func keyError(which string, err error) error {
	return &reasonError{which + ": " + keyReason(err), err}
}

func reasonOf(err error) string {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return "error"
}

func keyReason(err error) string {
	switch {
	case errors.Is(err, keyclient.ErrDestroyed):
		return "key destroyed"
	case errors.Is(err, keyclient.ErrNotFound):
		return "key not of the project"
	case errors.Is(err, keyclient.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "key service unavailable"
	case errors.Is(err, keyclient.ErrDenied):
		return "key service denied access"
	}
	return "key service error"
}
