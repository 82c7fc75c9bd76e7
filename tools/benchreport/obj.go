package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ObjRow is one measured (target, operation, size) of the object path.
type ObjRow struct {
	Target      string  `json:"target"`
	Op          string  `json:"op"`
	Size        int     `json:"size"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"rps"`
	MBps        float64 `json:"mb_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	ErrorSample string  `json:"error_sample,omitempty"`
}

type objTarget struct {
	name, base string // base: http://host:port (a Swift API endpoint)
}

// login returns a project-scoped token and the project id of the
// ARCA_TEST_<USER>_* account of `tools/stack.sh env`.
func login(ctx context.Context, user string) (token, project string, err error) {
	env := func(k string) string { return os.Getenv("ARCA_TEST_" + k) }
	u := strings.ToUpper(user)
	ks := strings.TrimSuffix(env("KEYSTONE_URL"), "/")
	if ks == "" || env(u+"_USER") == "" {
		return "", "", errors.New("ARCA_TEST_KEYSTONE_URL / ARCA_TEST_" + u + "_USER not set (eval \"$(tools/stack.sh env)\")")
	}
	if !strings.HasSuffix(ks, "/v3") {
		ks += "/v3"
	}
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": env(u + "_USER"), "password": env(u + "_PASSWORD"), "domain": map[string]string{"name": env("USER_DOMAIN")},
		}}},
		"scope": map[string]any{"project": map[string]any{"name": env(u + "_PROJECT"), "domain": map[string]string{"name": env("PROJECT_DOMAIN")}}},
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ks+"/auth/tokens", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("keystone login %s: %d %.200s", user, resp.StatusCode, b)
	}
	var r struct {
		Token struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"token"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", "", err
	}
	return resp.Header.Get("X-Subject-Token"), r.Token.Project.ID, nil
}

func quantileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(q * float64(len(d)-1))
	return float64(d[i]) / 1e6
}

// objCmd: benchreport obj -target NAME=URL ... -out FILE
func objCmd(args []string) error {
	fs := flag.NewFlagSet("obj", flag.ExitOnError)
	var targets []objTarget
	fs.Func("target", "NAME=URL of a Swift API endpoint (repeatable, measured in turn)", func(v string) error {
		n, u, ok := strings.Cut(v, "=")
		if !ok {
			return errors.New("want NAME=URL")
		}
		targets = append(targets, objTarget{n, strings.TrimSuffix(u, "/")})
		return nil
	})
	user := fs.String("user", "demo", "stack account (ARCA_TEST_<USER>_*)")
	sizes := fs.String("sizes", "4096,16777216", "object sizes in bytes")
	smallC := fs.Int("c-small", 16, "concurrency for objects under 1 MiB")
	largeC := fs.Int("c-large", 2, "concurrency for objects of 1 MiB and more")
	dur := fs.Duration("duration", 5*time.Second, "measured time per small-object phase")
	largeN := fs.Int("n-large", 12, "requests per large-object phase")
	out := fs.String("out", "", "JSON output file")
	_ = fs.Parse(args)
	if len(targets) == 0 {
		return errors.New("obj: no -target")
	}
	ctx := context.Background()
	token, project, err := login(ctx, *user)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64, DisableCompression: true,
	}, Timeout: 2 * time.Minute}
	do := func(method, u string, body []byte) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("X-Auth-Token", token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	// one container per target: the proxies share the account and container servers
	stamp := time.Now().UnixNano()
	contOf := func(t objTarget) string { return fmt.Sprintf("arca-bench-report-%d-%s", stamp, t.name) }
	for _, t := range targets {
		st, b, err := do(http.MethodPut, t.base+"/v1/AUTH_"+project+"/"+contOf(t), nil)
		if err != nil || st/100 != 2 {
			return fmt.Errorf("%s: create container: %d %v %.200s", t.name, st, err, b)
		}
	}
	var rows []ObjRow
	type made struct{ names []string }
	created := map[string]*made{}
	for _, t := range targets {
		created[t.name] = &made{}
	}
	defer func() { // delete everything, best effort
		for _, t := range targets {
			names := created[t.name].names
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 8 {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= len(names) {
							return
						}
						_, _, _ = do(http.MethodDelete, t.base+"/v1/AUTH_"+project+"/"+contOf(t)+"/"+names[i], nil)
					}
				})
			}
			wg.Wait()
			_, _, _ = do(http.MethodDelete, t.base+"/v1/AUTH_"+project+"/"+contOf(t), nil)
		}
	}()
	for _, ss := range strings.Split(*sizes, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(ss))
		if err != nil || size <= 0 {
			return fmt.Errorf("bad size %q", ss)
		}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		sum := md5.Sum(data)
		c, n, d := *smallC, 0, *dur
		if size >= 1<<20 {
			c, n, d = *largeC, *largeN, 0
		}
		for _, op := range []string{"PUT", "GET"} {
		perTarget:
			for _, t := range targets {
				base := t.base + "/v1/AUTH_" + project + "/" + contOf(t) + "/"
				m := created[t.name]
				// failed: a row that says why this phase was not measured,
				// so one target's failure leaves the others' figures.
				failed := func(format string, a ...any) {
					r := ObjRow{Target: t.name, Op: op, Size: size, Concurrency: c, Errors: 1, ErrorSample: fmt.Sprintf(format, a...)}
					rows = append(rows, r)
					fmt.Printf("%-16s %3s %9d B not measured: %s\n", r.Target, r.Op, r.Size, r.ErrorSample)
				}
				var pool []string
				if op == "GET" {
					for _, nm := range m.names {
						if strings.HasPrefix(nm, fmt.Sprintf("s%d-", size)) {
							pool = append(pool, nm)
						}
					}
					if len(pool) == 0 {
						failed("no %d-byte objects to GET (their PUT failed)", size)
						continue
					}
				}
				// unmeasured warm-up: a few requests
				for i := range 2 {
					if op == "PUT" {
						nm := fmt.Sprintf("s%d-warm-%d", size, i)
						if st, b, err := do(http.MethodPut, base+nm, data); err != nil || st != http.StatusCreated {
							failed("warm-up PUT: %d %v %.200s", st, err, b)
							continue perTarget
						}
						m.names = append(m.names, nm)
					} else {
						_, _, _ = do(http.MethodGet, base+pool[i%len(pool)], nil)
					}
				}
				var mu sync.Mutex
				var lats []time.Duration
				var errs int
				var sample string
				var next atomic.Int64
				deadline := time.Now().Add(d)
				start := time.Now()
				var wg sync.WaitGroup
				for w := range c {
					wg.Go(func() {
						for {
							i := int(next.Add(1) - 1)
							if (n > 0 && i >= n) || (n == 0 && time.Now().After(deadline)) {
								return
							}
							var nm string
							t0 := time.Now()
							var st int
							var b []byte
							var err error
							if op == "PUT" {
								nm = fmt.Sprintf("s%d-w%d-%d", size, w, i)
								st, b, err = do(http.MethodPut, base+nm, data)
								if err == nil && st != http.StatusCreated {
									err = fmt.Errorf("status %d: %.120s", st, b)
								}
							} else {
								st, b, err = do(http.MethodGet, base+pool[i%len(pool)], nil)
								if err == nil && (st != http.StatusOK || md5.Sum(b) != sum) {
									err = fmt.Errorf("status %d, %d bytes, checksum mismatch or error", st, len(b))
								}
							}
							el := time.Since(t0)
							mu.Lock()
							if err != nil {
								errs++
								if sample == "" {
									sample = err.Error()
								}
							} else {
								lats = append(lats, el)
								if op == "PUT" {
									m.names = append(m.names, nm)
								}
							}
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				el := time.Since(start).Seconds()
				r := ObjRow{Target: t.name, Op: op, Size: size, Concurrency: c, Requests: len(lats), Errors: errs,
					RPS: float64(len(lats)) / el, P50ms: quantileMS(lats, 0.5), P99ms: quantileMS(lats, 0.99), ErrorSample: sample}
				r.MBps = r.RPS * float64(size) / 1e6
				rows = append(rows, r)
				fmt.Printf("%-16s %3s %9d B c=%-2d %6d req %8.1f req/s %8.1f MB/s p50 %8.2f ms p99 %8.2f ms errors %d %s\n",
					r.Target, r.Op, r.Size, r.Concurrency, r.Requests, r.RPS, r.MBps, r.P50ms, r.P99ms, r.Errors, r.ErrorSample)
			}
		}
	}
	if *out != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if r.Errors > 0 {
			return fmt.Errorf("%s %s %d: %d errors (e.g. %s)", r.Target, r.Op, r.Size, r.Errors, r.ErrorSample)
		}
	}
	return nil
}
