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

// objConfig is what `benchreport obj`'s flags ask for.
type objConfig struct {
	targets        []objTarget
	user           string
	sizes          string
	smallC, largeC int
	dur            time.Duration
	largeN         int
	rounds         int
	out            string
}

func parseObjFlags(args []string) (objConfig, error) {
	var cfg objConfig
	fs := flag.NewFlagSet("obj", flag.ExitOnError)
	fs.Func("target", "NAME=URL of a Swift API endpoint (repeatable, measured in turn)", func(v string) error {
		n, u, ok := strings.Cut(v, "=")
		if !ok {
			return errors.New("want NAME=URL")
		}
		cfg.targets = append(cfg.targets, objTarget{n, strings.TrimSuffix(u, "/")})
		return nil
	})
	fs.StringVar(&cfg.user, "user", "demo", "stack account (ARCA_TEST_<USER>_*)")
	fs.StringVar(&cfg.sizes, "sizes", "4096,16777216", "object sizes in bytes")
	fs.IntVar(&cfg.smallC, "c-small", 16, "concurrency for objects under 1 MiB")
	fs.IntVar(&cfg.largeC, "c-large", 2, "concurrency for objects of 1 MiB and more")
	fs.DurationVar(&cfg.dur, "duration", 5*time.Second, "measured time per small-object phase")
	fs.IntVar(&cfg.largeN, "n-large", 12, "requests per large-object phase")
	fs.IntVar(&cfg.rounds, "rounds", 1, "rounds per phase, the targets in turn, the first one rotating (figures over all rounds)")
	fs.StringVar(&cfg.out, "out", "", "JSON output file")
	_ = fs.Parse(args)
	if len(cfg.targets) == 0 {
		return cfg, errors.New("obj: no -target")
	}
	if cfg.rounds < 1 {
		return cfg, errors.New("obj: -rounds must be at least 1")
	}
	return cfg, nil
}

// objCmd: benchreport obj -target NAME=URL ... -out FILE
func objCmd(args []string) error {
	cfg, err := parseObjFlags(args)
	if err != nil {
		return err
	}
	ctx := context.Background()
	token, project, err := login(ctx, cfg.user)
	if err != nil {
		return err
	}
	s := newObjSession(ctx, cfg.targets, token, project)
	if err := s.createContainers(); err != nil {
		return err
	}
	defer s.deleteAll()
	rows, err := s.measure(cfg)
	if err != nil {
		return err
	}
	if cfg.out != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(cfg.out, append(b, '\n'), 0o644); err != nil {
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

// objSession is one run of `benchreport obj`: the logged-in account, a
// container per target and the objects written to each, deleted at the end.
type objSession struct {
	ctx            context.Context
	client         *http.Client
	token, project string
	stamp          int64
	targets        []objTarget
	created        map[string]*[]string // target name -> object names PUT so far
}

func newObjSession(ctx context.Context, targets []objTarget, token, project string) *objSession {
	s := &objSession{
		ctx: ctx, token: token, project: project, targets: targets,
		client: &http.Client{Transport: &http.Transport{
			Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64, DisableCompression: true,
		}, Timeout: 2 * time.Minute},
		stamp:   time.Now().UnixNano(),
		created: map[string]*[]string{},
	}
	for _, t := range targets {
		s.created[t.name] = new([]string)
	}
	return s
}

func (s *objSession) do(method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(s.ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Auth-Token", s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// containerURL: one container per target, because the proxies share the
// account and container servers.
func (s *objSession) containerURL(t objTarget) string {
	return t.base + "/v1/AUTH_" + s.project + "/" + fmt.Sprintf("arca-bench-report-%d-%s", s.stamp, t.name)
}

func (s *objSession) createContainers() error {
	for _, t := range s.targets {
		st, b, err := s.do(http.MethodPut, s.containerURL(t), nil)
		if err != nil || st/100 != 2 {
			return fmt.Errorf("%s: create container: %d %v %.200s", t.name, st, err, b)
		}
	}
	return nil
}

// deleteAll deletes every object written and the containers, best effort.
func (s *objSession) deleteAll() {
	for _, t := range s.targets {
		names := *s.created[t.name]
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 8 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(names) {
						return
					}
					_, _, _ = s.do(http.MethodDelete, s.containerURL(t)+"/"+names[i], nil)
				}
			})
		}
		wg.Wait()
		_, _, _ = s.do(http.MethodDelete, s.containerURL(t), nil)
	}
}

// objPhase is one operation at one object size, run against each target in
// turn: c workers for d (small objects) or for n requests (large ones).
type objPhase struct {
	op   string
	size int
	data []byte
	sum  [md5.Size]byte
	c, n int
	d    time.Duration
	// round is the phase's round (-rounds), part of the names PUT writes so
	// that a later round writes new objects as the first one did.
	round int
}

// measure runs PUT then GET for every size, target after target.
func (s *objSession) measure(cfg objConfig) ([]ObjRow, error) {
	var rows []ObjRow
	for _, ss := range strings.Split(cfg.sizes, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(ss))
		if err != nil || size <= 0 {
			return nil, fmt.Errorf("bad size %q", ss)
		}
		p := objPhase{size: size, data: make([]byte, size), c: cfg.smallC, d: cfg.dur}
		_, _ = rand.Read(p.data)
		p.sum = md5.Sum(p.data)
		if size >= 1<<20 {
			p.c, p.n, p.d = cfg.largeC, cfg.largeN, 0
		}
		for _, op := range []string{"PUT", "GET"} {
			p.op = op
			rows = append(rows, s.alternate(p, cfg.rounds)...)
		}
	}
	return rows, nil
}

// alternate runs phase p against every target, rounds times, and returns
// one row per target over all its rounds. Each round starts with the next
// target, so that a machine that speeds up or slows down during the run
// (a neighbour, the page cache, ext4's inode allocator) favours none of
// them: a ratio near 1 is only worth judging that way.
func (s *objSession) alternate(p objPhase, rounds int) []ObjRow {
	n := len(s.targets)
	tallies := make([]*objTally, n)
	secs := make([]float64, n)
	failed := make([]*ObjRow, n)
	for r := range rounds {
		p.round = r
		for k := range n {
			i := (k + r) % n
			if failed[i] != nil {
				continue
			}
			tally, el, fail := s.runPhase(s.targets[i], p)
			if fail != nil {
				failed[i] = fail
				continue
			}
			if rounds > 1 {
				printRow(phaseRow(s.targets[i], p, tally, el), fmt.Sprintf("(round %d/%d)", r+1, rounds))
			}
			tallies[i] = tallies[i].add(tally)
			secs[i] += el
		}
	}
	rows := make([]ObjRow, n)
	for i, t := range s.targets {
		if failed[i] != nil {
			rows[i] = *failed[i]
			continue
		}
		rows[i] = phaseRow(t, p, tallies[i], secs[i])
		if rounds > 1 {
			printRow(rows[i], fmt.Sprintf("(%d rounds)", rounds))
		} else {
			printRow(rows[i], "")
		}
	}
	return rows
}

// phaseRow is the row of a phase's tally, measured over secs seconds.
func phaseRow(t objTarget, p objPhase, tally *objTally, secs float64) ObjRow {
	r := ObjRow{Target: t.name, Op: p.op, Size: p.size, Concurrency: p.c, Requests: len(tally.lats), Errors: tally.errs,
		RPS: float64(len(tally.lats)) / secs, P50ms: quantileMS(tally.lats, 0.5), P99ms: quantileMS(tally.lats, 0.99), ErrorSample: tally.sample}
	r.MBps = r.RPS * float64(p.size) / 1e6
	return r
}

// printRow prints a row's line, with note after it.
func printRow(r ObjRow, note string) {
	fmt.Printf("%-16s %3s %9d B c=%-2d %6d req %8.1f req/s %8.1f MB/s p50 %8.2f ms p99 %8.2f ms errors %d %s%s\n",
		r.Target, r.Op, r.Size, r.Concurrency, r.Requests, r.RPS, r.MBps, r.P50ms, r.P99ms, r.Errors, r.ErrorSample, note)
}

// runPhase measures one round of a phase against one target: its tally
// and the seconds it took. A phase that cannot run gives a row that says
// why (printed), so one target's failure leaves the others' figures.
func (s *objSession) runPhase(t objTarget, p objPhase) (*objTally, float64, *ObjRow) {
	failed := func(format string, a ...any) (*objTally, float64, *ObjRow) {
		r := ObjRow{Target: t.name, Op: p.op, Size: p.size, Concurrency: p.c, Errors: 1, ErrorSample: fmt.Sprintf(format, a...)}
		fmt.Printf("%-16s %3s %9d B not measured: %s\n", r.Target, r.Op, r.Size, r.ErrorSample)
		return nil, 0, &r
	}
	base := s.containerURL(t) + "/"
	names := s.created[t.name]
	var pool []string
	if p.op == "GET" {
		prefix := fmt.Sprintf("s%d-", p.size)
		for _, nm := range *names {
			if strings.HasPrefix(nm, prefix) {
				pool = append(pool, nm)
			}
		}
		if len(pool) == 0 {
			return failed("no %d-byte objects to GET (their PUT failed)", p.size)
		}
	}
	// unmeasured warm-up: a few requests
	for i := range 2 {
		if p.op == "PUT" {
			nm := fmt.Sprintf("s%d-warm-r%d-%d", p.size, p.round, i)
			if st, b, err := s.do(http.MethodPut, base+nm, p.data); err != nil || st != http.StatusCreated {
				return failed("warm-up PUT: %d %v %.200s", st, err, b)
			}
			*names = append(*names, nm)
		} else {
			_, _, _ = s.do(http.MethodGet, base+pool[i%len(pool)], nil)
		}
	}
	tally, el := s.timed(base, p, pool, names)
	return tally, el, nil
}

// objTally collects a phase's latencies and errors from its workers.
type objTally struct {
	mu     sync.Mutex
	lats   []time.Duration
	errs   int
	sample string
}

// add is t with u's requests added (u itself when t is nil): one tally
// over several rounds. Neither is in use by workers any more.
func (t *objTally) add(u *objTally) *objTally {
	if t == nil {
		return u
	}
	t.lats = append(t.lats, u.lats...)
	t.errs += u.errs
	if t.sample == "" {
		t.sample = u.sample
	}
	return t
}

// timed runs the measured part of a phase and returns its tally and the
// seconds it took; names gains every object a PUT wrote.
func (s *objSession) timed(base string, p objPhase, pool []string, names *[]string) (*objTally, float64) {
	tally := &objTally{}
	var next atomic.Int64
	deadline := time.Now().Add(p.d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range p.c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if (p.n > 0 && i >= p.n) || (p.n == 0 && time.Now().After(deadline)) {
					return
				}
				t0 := time.Now()
				nm, err := s.request(base, p, pool, w, i)
				el := time.Since(t0)
				tally.mu.Lock()
				if err != nil {
					tally.errs++
					if tally.sample == "" {
						tally.sample = err.Error()
					}
				} else {
					tally.lats = append(tally.lats, el)
					if p.op == "PUT" {
						*names = append(*names, nm)
					}
				}
				tally.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return tally, time.Since(start).Seconds()
}

// request is worker w's i-th measured request: a PUT of a new object (whose
// name it returns) or a GET of one already written, checked against p.sum.
func (s *objSession) request(base string, p objPhase, pool []string, w, i int) (string, error) {
	if p.op == "PUT" {
		nm := fmt.Sprintf("s%d-r%d-w%d-%d", p.size, p.round, w, i)
		st, b, err := s.do(http.MethodPut, base+nm, p.data)
		if err == nil && st != http.StatusCreated {
			err = fmt.Errorf("status %d: %.120s", st, b)
		}
		return nm, err
	}
	st, b, err := s.do(http.MethodGet, base+pool[i%len(pool)], nil)
	if err == nil && (st != http.StatusOK || md5.Sum(b) != p.sum) {
		err = fmt.Errorf("status %d, %d bytes, checksum mismatch or error", st, len(b))
	}
	return "", err
}
