package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Scenario names.
const (
	ScenarioStore      = "secret-store"
	ScenarioGetPayload = "secret-get-payload"
	ScenarioGet        = "secret-get"
	ScenarioProjectKey = "project-key-payload"
	ScenarioOrder      = "order-create"
)

var scenarioNames = []string{ScenarioStore, ScenarioGetPayload, ScenarioGet, ScenarioProjectKey, ScenarioOrder}

// ErrSkip marks a scenario a target cannot run (a route not there yet).
var ErrSkip = errors.New("skipped")

// skip is an ErrSkip with its reason.
type skip string

func (s skip) Error() string        { return string(s) }
func (s skip) Is(target error) bool { return target == ErrSkip }

// Workload is one scenario prepared against one target: how to build the
// i-th request of a worker, and what to undo afterwards.
type Workload struct {
	Build func(ctx context.Context, worker int, i uint64) (*http.Request, error)
	// Keep, when set, receives the body of every 2xx response.
	Keep    func(body []byte)
	Cleanup func(ctx context.Context) error
}

// Env is what scenarios share: the HTTP client and sizes.
type Env struct {
	Client      *http.Client
	PoolSize    int
	PayloadSize int
	PKProject   string // project_id for project-key payloads ("" = the target's own)
	SetupConc   int
}

// Prepare sets up scenario name against t.
func (e *Env) Prepare(ctx context.Context, name string, t *Target) (*Workload, error) {
	switch name {
	case ScenarioStore:
		return e.storeWorkload(t), nil
	case ScenarioGetPayload, ScenarioGet:
		ids, err := e.createPool(ctx, t)
		if err != nil {
			return nil, err
		}
		suffix, accept := "", "application/json"
		if name == ScenarioGetPayload {
			suffix, accept = "/payload", "text/plain"
		}
		w := &Workload{
			Build: func(ctx context.Context, worker int, i uint64) (*http.Request, error) {
				id := ids[(uint64(worker)*7919+i)%uint64(len(ids))]
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/v1/secrets/"+id+suffix, nil)
				if err != nil {
					return nil, err
				}
				req.Header.Set("Accept", accept)
				t.authorize(req, false)
				return req, nil
			},
			Cleanup: func(ctx context.Context) error { return e.deleteSecrets(ctx, t, ids) },
		}
		return w, nil
	case ScenarioProjectKey:
		return e.projectKeyWorkload(ctx, t)
	case ScenarioOrder:
		return e.orderWorkload(t), nil
	}
	return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(scenarioNames, ", "))
}

// storeBody is a small text secret, distinct per request: the JSON
// encoding of {"name": "loadgen", "payload": "w<worker>-<i>-xxx...",
// "payload_content_type": "text/plain"}, written directly (nothing in it
// needs escaping) to keep the load generator's CPU per request low.
func (e *Env) storeBody(worker int, i uint64) []byte {
	b := make([]byte, 0, 96+e.PayloadSize)
	b = append(b, `{"name":"loadgen","payload":"w`...)
	start := len(b) - 1
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, i, 10)
	b = append(b, '-')
	for n := len(b) - start; n < e.PayloadSize; n++ {
		b = append(b, 'x')
	}
	return append(b, `","payload_content_type":"text/plain"}`...)
}

func (e *Env) storeRequest(ctx context.Context, t *Target, worker int, i uint64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/v1/secrets", bytes.NewReader(e.storeBody(worker, i)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	t.authorize(req, false)
	return req, nil
}

func (e *Env) storeWorkload(t *Target) *Workload {
	w := &Workload{
		Build: func(ctx context.Context, worker int, i uint64) (*http.Request, error) {
			return e.storeRequest(ctx, t, worker, i)
		},
	}
	if t.Cleanup {
		var mu sync.Mutex
		var ids []string
		w.Keep = func(body []byte) {
			if id, err := secretID(body); err == nil {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}
		w.Cleanup = func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return e.deleteSecrets(ctx, t, ids)
		}
	}
	return w
}

// secretID takes the id from a secret_ref (the last path segment).
func secretID(body []byte) (string, error) {
	var r struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Ref == "" {
		return "", fmt.Errorf("no secret_ref in %.200q", body)
	}
	return r.Ref[strings.LastIndexByte(r.Ref, '/')+1:], nil
}

// parallel runs fn(i) for i in [0,n) on e.SetupConc goroutines and returns
// the first error.
func (e *Env) parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(min(e.SetupConc, n), 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func (e *Env) createPool(ctx context.Context, t *Target) ([]string, error) {
	ids := make([]string, e.PoolSize)
	err := e.parallel(len(ids), func(i int) error {
		req, err := e.storeRequest(ctx, t, -1, uint64(i))
		if err != nil {
			return err
		}
		status, body, err := e.do(req)
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("%s: creating the secret pool: status %d: %.300s", t.Name, status, body)
		}
		ids[i], err = secretID(body)
		return err
	})
	if err != nil {
		// best effort: remove what was created
		var made []string
		for _, id := range ids {
			if id != "" {
				made = append(made, id)
			}
		}
		_ = e.deleteSecrets(ctx, t, made)
		return nil, err
	}
	return ids, nil
}

func (e *Env) deleteSecrets(ctx context.Context, t *Target, ids []string) error {
	var failed atomic.Int64
	_ = e.parallel(len(ids), func(i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, t.URL+"/v1/secrets/"+ids[i], nil)
		if err != nil {
			return err
		}
		t.authorize(req, false)
		if status, _, err := e.do(req); err != nil || status != http.StatusNoContent {
			failed.Add(1)
		}
		return nil
	})
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%s: %d of %d secret deletions failed", t.Name, n, len(ids))
	}
	return nil
}

// do sends a set-up request and returns status and (bounded) body.
func (e *Env) do(req *http.Request) (int, []byte, error) {
	resp, err := e.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// projectKeyWorkload resolves the project's active key once, then reads
// its payload over and over as an object server would on a cache miss.
// A 404 from GET /v1/project-keys/active (which has no id to be missing)
// or from the payload of the id it just returned means the routes are not
// there yet: the scenario is skipped.
func (e *Env) projectKeyWorkload(ctx context.Context, t *Target) (*Workload, error) {
	project := e.PKProject
	if project == "" {
		project = t.Project
	}
	q := "?project_id=" + url.QueryEscape(project)
	get := func(path, accept string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+path, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Accept", accept)
		t.authorize(req, true)
		return e.do(req)
	}
	status, body, err := get("/v1/project-keys/active"+q, "application/json")
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return nil, skip(fmt.Sprintf("GET /v1/project-keys/active answers %d (the project-key resource is not in this server yet)", status))
	case status/100 != 2:
		return nil, fmt.Errorf("%s: GET /v1/project-keys/active: status %d: %.300s", t.Name, status, body)
	}
	id, err := projectKeyID(body)
	if err != nil {
		return nil, fmt.Errorf("%s: GET /v1/project-keys/active: %w", t.Name, err)
	}
	path := "/v1/project-keys/" + url.PathEscape(id) + "/payload" + q
	status, body, err = get(path, "application/octet-stream")
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound:
		return nil, skip("GET /v1/project-keys/{id}/payload answers 404 for the active key (route not there yet)")
	case status/100 != 2:
		return nil, fmt.Errorf("%s: GET %s: status %d: %.300s", t.Name, path, status, body)
	}
	return &Workload{
		Build: func(ctx context.Context, _ int, _ uint64) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+path, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Accept", "application/octet-stream")
			t.authorize(req, true)
			return req, nil
		},
	}, nil
}

// projectKeyID finds the key id in the active-key answer, whichever of the
// usual shapes it has: {"id"}, {"key_id"}, a ref ending in the id, or the
// same inside one wrapping object.
func projectKeyID(body []byte) (string, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("not a JSON object: %.200q", body)
	}
	for depth := 0; depth < 3; depth++ {
		for _, k := range []string{"id", "key_id", "project_key_id"} {
			if s, ok := m[k].(string); ok && s != "" {
				return s, nil
			}
		}
		for _, k := range []string{"key_ref", "project_key_ref", "ref"} {
			if s, ok := m[k].(string); ok && s != "" {
				return s[strings.LastIndexByte(s, '/')+1:], nil
			}
		}
		var inner map[string]any
		for _, v := range m {
			if o, ok := v.(map[string]any); ok {
				inner = o
				break
			}
		}
		if inner == nil {
			break
		}
		m = inner
	}
	return "", fmt.Errorf("no key id in %.200q", body)
}

// orderWorkload creates AES-256 key orders (POST /v1/orders, 202). With
// the target's cleanup flag, the orders and the secrets they produced are
// deleted afterwards.
func (e *Env) orderWorkload(t *Target) *Workload {
	body := []byte(`{"type":"key","meta":{"name":"loadgen","algorithm":"aes","bit_length":256,"mode":"cbc","payload_content_type":"application/octet-stream"}}`)
	w := &Workload{
		Build: func(ctx context.Context, _ int, _ uint64) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/v1/orders", bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
			t.authorize(req, false)
			return req, nil
		},
	}
	if !t.Cleanup {
		return w
	}
	var mu sync.Mutex
	var refs []string
	w.Keep = func(b []byte) {
		var r struct {
			Ref string `json:"order_ref"`
		}
		if json.Unmarshal(b, &r) == nil && r.Ref != "" {
			mu.Lock()
			refs = append(refs, r.Ref[strings.LastIndexByte(r.Ref, '/')+1:])
			mu.Unlock()
		}
	}
	w.Cleanup = func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		var failed atomic.Int64
		_ = e.parallel(len(refs), func(i int) error {
			u := t.URL + "/v1/orders/" + refs[i]
			if req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil); err == nil {
				req.Header.Set("Accept", "application/json")
				t.authorize(req, false)
				if status, b, err := e.do(req); err == nil && status == http.StatusOK {
					if id, err := secretID(b); err == nil {
						_ = e.deleteSecrets(ctx, t, []string{id})
					}
				}
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
			if err != nil {
				return err
			}
			t.authorize(req, false)
			if status, _, err := e.do(req); err != nil || status != http.StatusNoContent {
				failed.Add(1)
			}
			return nil
		})
		if n := failed.Load(); n > 0 {
			return fmt.Errorf("%s: %d of %d order deletions failed", t.Name, n, len(refs))
		}
		return nil
	}
	return w
}
