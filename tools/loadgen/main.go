// Command loadgen is Arca's HTTP load generator for `make bench`: it drives
// the Barbican v1 API of arca-api and of a reference Barbican side by side,
// with a fixed number of keep-alive workers, and prints requests/s and
// latency percentiles per scenario and target, then checks the figures
// against targets given as flags.
//
//	go run ./tools/loadgen -c 16 -duration 10s \
//	  -target 'arca,http://127.0.0.1:19311,noauth:bench' \
//	  -target 'barbican,http://127.0.0.1:9312,keystone:demo,cleanup' \
//	  -scenarios secret-store,secret-get-payload \
//	  -ratio 'arca/barbican>=20' -max-p99 arca=10ms
//
// Targets are "name,url,auth[,cleanup]", auth being "noauth:PROJECT"
// (X-Project-Id) or "keystone:USER" (a token for the ARCA_TEST_<USER>_*
// account of `tools/stack.sh env`, sent as X-Auth-Token). Targets run one
// after the other, never at once. Any non-2xx answer or transport error in
// a measured phase fails the run (exit status 2); a missed target exits 1.
//
// It runs on the machine it measures and shares its CPUs with the servers:
// the figures are what this machine does with client and server together.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"opendev.org/x/arca/internal/config"
)

type options struct {
	targets     []*Target
	scenarios   []string
	concurrency int
	rate        float64
	duration    time.Duration
	requests    uint64
	warmup      time.Duration
	rounds      int
	watches     []Watch
	sql         *SQLStats
	title       string
	checks      []Check
	slow        *slowLog
	slowAfter   time.Duration
}

func main() {
	os.Exit(run())
}

// cliFlags are the command line's values, before options checks them.
type cliFlags struct {
	targetSpecs, ratios, maxP99s, maxP999s, minRPSs, maxCPUs, pids config.StringList

	scenarios   string
	projectKeys bool
	pkProject   string
	concurrency int
	rate        float64
	duration    time.Duration
	requests    uint64
	warmup      time.Duration
	pool        int
	payloadSize int
	timeout     time.Duration
	rounds      int
	title       string
	mysqlDSN    string
	jsonOut     string
	slowLog     string
	slowAfter   time.Duration
}

// defineFlags registers the command line on fs.
func defineFlags(fs *flag.FlagSet) *cliFlags {
	f := &cliFlags{}
	fs.StringVar(&f.scenarios, "scenarios", ScenarioStore+","+ScenarioGetPayload, "comma-separated scenarios: "+strings.Join(scenarioNames, ", "))
	fs.BoolVar(&f.projectKeys, "project-keys", false, "add the "+ScenarioProjectKey+" scenario (skipped with a note where the route answers 404)")
	fs.StringVar(&f.pkProject, "pk-project", "", "project_id for project-key payloads (default: the target's own project)")
	fs.IntVar(&f.concurrency, "c", 16, "concurrent workers (keep-alive connections)")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: start this many requests per second on a fixed schedule, latency measured from each scheduled start (0: closed loop, each worker sends as soon as it is answered)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured time per scenario and target")
	fs.Uint64Var(&f.requests, "requests", 0, "measure this many requests instead of a duration")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured warm-up per scenario and target (connections, caches, token cache)")
	fs.IntVar(&f.pool, "pool", 100, "secrets created beforehand for the GET scenarios")
	fs.IntVar(&f.payloadSize, "payload-size", 32, "bytes of text payload per stored secret")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.IntVar(&f.rounds, "rounds", 1, "split each target's measurement into this many slices, alternating between targets")
	fs.StringVar(&f.title, "title", "", "label printed on the table and CHECK lines")
	fs.StringVar(&f.mysqlDSN, "mysql", "", "go-sql-driver DSN of the MariaDB behind the targets: report SQL statements per request")
	fs.StringVar(&f.jsonOut, "json", "", "also write every result (scenario, target, concurrency, req/s, p50/p99 ms, errors) to this file as JSON")
	fs.StringVar(&f.slowLog, "slow-log", "", "open loop: append each measured request that took at least -slow from its scheduled start to this file (scheduled start, the load generator's own lag in sending it, latency), to line up with the servers' own logs")
	fs.DurationVar(&f.slowAfter, "slow", 5*time.Millisecond, "open loop: the latency from which a request is counted as slow (send lag line) and recorded by -slow-log")
	fs.Var(&f.targetSpecs, "target", "name,url,noauth:PROJECT|keystone:USER[,cleanup] (repeatable, run in order)")
	fs.Var(&f.ratios, "ratio", "[SCENARIO:]A/B>=X or A/B<=X: req/s of target A over target B (repeatable)")
	fs.Var(&f.maxP99s, "max-p99", "[SCENARIO:]NAME=DURATION: target NAME's p99 must be below it (repeatable)")
	fs.Var(&f.maxP999s, "max-p999", "[SCENARIO:]NAME=DURATION: target NAME's p99.9 must be below it (repeatable)")
	fs.Var(&f.minRPSs, "min-rps", "[SCENARIO:]NAME=N: target NAME must reach N req/s (repeatable)")
	fs.Var(&f.maxCPUs, "max-cpu", "[SCENARIO:]TARGET[/PROCESS]=DURATION: the -pid process PROCESS (default: named like TARGET) must spend at most this CPU time per request of TARGET (repeatable)")
	fs.Var(&f.pids, "pid", "NAME=PID: report the CPU time per request of this process and its descendants (repeatable)")
	return f
}

// options checks the flags and turns them into the run's options; it
// opens the -mysql connection last.
func (f *cliFlags) options() (options, error) {
	o := options{concurrency: f.concurrency, rate: f.rate, duration: f.duration, requests: f.requests, warmup: f.warmup, rounds: f.rounds, title: f.title, slowAfter: f.slowAfter}
	if o.concurrency < 1 || f.pool < 1 || o.rounds < 1 || o.rate < 0 || len(f.targetSpecs) == 0 {
		return o, errors.New("need -c >= 1, -pool >= 1, -rounds >= 1, -rate >= 0 and at least one -target")
	}
	for _, s := range f.targetSpecs {
		t, err := ParseTarget(s)
		if err != nil {
			return o, err
		}
		o.targets = append(o.targets, t)
	}
	for _, s := range f.pids {
		name, v, ok := strings.Cut(s, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || name == "" || pid <= 1 {
			return o, fmt.Errorf("-pid %q: want NAME=PID", s)
		}
		o.watches = append(o.watches, Watch{Name: name, PID: pid})
	}
	for _, s := range strings.Split(f.scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if !slices.Contains(scenarioNames, s) {
				return o, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(scenarioNames, ", "))
			}
			o.scenarios = append(o.scenarios, s)
		}
	}
	if f.projectKeys && !slices.Contains(o.scenarios, ScenarioProjectKey) {
		o.scenarios = append(o.scenarios, ScenarioProjectKey)
	}
	var err error
	if o.checks, err = parseChecks(checkFlags{ratios: f.ratios, maxP99s: f.maxP99s, maxP999s: f.maxP999s, minRPSs: f.minRPSs, maxCPUs: f.maxCPUs}); err != nil {
		return o, err
	}
	if f.slowLog != "" {
		if o.slow, err = openSlowLog(f.slowLog); err != nil {
			return o, err
		}
	}
	if o.sql, err = OpenSQLStats(f.mysqlDSN); err != nil {
		return o, err
	}
	return o, nil
}

// fatal reports an error that stops the run before its figures are valid.
func fatal(err error) int {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	return 2
}

func run() int {
	f := defineFlags(flag.CommandLine)
	flag.Parse()
	o, err := f.options()
	if err != nil {
		return fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{
		Client: newClient(o.concurrency, f.timeout), PoolSize: f.pool, PayloadSize: f.payloadSize,
		PKProject: f.pkProject, SetupConc: min(o.concurrency, 8),
	}
	for _, t := range o.targets {
		if err := t.Login(ctx); err != nil {
			return fatal(err)
		}
	}
	printHeader(o)

	var all []*Result
	for _, sc := range o.scenarios {
		results, err := runScenario(ctx, env, o, sc)
		if err != nil {
			return fatal(err)
		}
		printTable(o, sc, results)
		all = append(all, results...)
	}

	if f.jsonOut != "" {
		if err := writeJSON(f.jsonOut, o, all); err != nil {
			return fatal(err)
		}
	}
	if err := o.slow.Close(); err != nil {
		return fatal(err)
	}
	return printSummary(o, all)
}

// printHeader says what the run measures, on what, and against which targets.
func printHeader(o options) {
	measure := fmt.Sprintf("%v measured", o.duration)
	if o.requests > 0 {
		measure = fmt.Sprintf("%d requests measured", o.requests)
	}
	pace := fmt.Sprintf("closed loop, concurrency %d", o.concurrency)
	if o.rate > 0 {
		pace = fmt.Sprintf("open loop at %.0f req/s on %d connections (latency from each request's scheduled start)", o.rate, o.concurrency)
	}
	fmt.Printf("loadgen %s: %s, %s after %v warm-up, per scenario and target, one target at a time in %d alternating round(s)\n",
		o.title, pace, measure, o.warmup, o.rounds)
	fmt.Printf("note: the load generator runs on this machine and shares its %d CPUs (GOMAXPROCS %d) with the servers, MariaDB and Keystone: figures are for client and server together, not for a dedicated server\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("note: load1 is the 1-minute load average after each phase (highest of the rounds; now %s); above %d, other work competed for the CPUs\n",
		fmtLoad(loadAverage()), runtime.NumCPU())
	for _, t := range o.targets {
		fmt.Printf("  target %s\n", t)
	}
}

// printSummary prints every scenario's figures, the CHECK lines and the
// failed requests, and returns the exit status: 1 when a target is missed,
// 2 when requests failed in a measured phase.
func printSummary(o options, all []*Result) int {
	fmt.Println()
	fmt.Printf("== loadgen %s: all scenarios\n", o.title)
	printRows(all)
	status := 0
	for _, line := range evaluate(o, all) {
		fmt.Println(line)
		if strings.HasPrefix(line, "CHECK FAIL") && status == 0 {
			status = 1
		}
	}
	for _, r := range all {
		record := recordOnly(o, r.Target)
		if r.Missed > 0 {
			verdict := "CHECK FAIL"
			if record {
				verdict = "NOTE (for the record)"
			} else if status == 0 {
				status = 1
			}
			fmt.Printf("%s %s %s %s: %d scheduled requests never sent: it fell behind the %.0f req/s schedule\n",
				verdict, o.title, r.Scenario, r.Target, r.Missed, o.rate)
		}
		if r.Errors > 0 {
			if record {
				fmt.Printf("NOTE (for the record) %s %s %s: %d errors (non-2xx or transport), e.g. %s\n",
					o.title, r.Scenario, r.Target, r.Errors, r.ErrorSamples[0])
				continue
			}
			fmt.Printf("CHECK FAIL %s %s %s: %d errors (non-2xx or transport) in the measured phase\n", o.title, r.Scenario, r.Target, r.Errors)
			for _, s := range r.ErrorSamples {
				fmt.Printf("    e.g. %s\n", s)
			}
			status = 2
		}
	}
	if status == 2 {
		fmt.Fprintln(os.Stderr, "loadgen: FAILED: requests failed during measurement, the figures above are not valid")
	}
	return status
}

// runScenario prepares sc on every target, warms each up, then measures
// them in o.rounds alternating slices (A B A B ...) so that a change in
// the machine's background load during the run hits every target alike.
func runScenario(ctx context.Context, env *Env, o options, sc string) ([]*Result, error) {
	results := make([]*Result, len(o.targets))
	loads := make([]*Workload, len(o.targets))
	defer func() {
		for i, w := range loads {
			if w != nil && w.Cleanup != nil {
				if err := w.Cleanup(context.WithoutCancel(ctx)); err != nil {
					fmt.Printf("note: cleanup after %s on %s: %v\n", sc, o.targets[i].Name, err)
				}
			}
		}
	}()
	for i, t := range o.targets {
		results[i] = &Result{Scenario: sc, Target: t.Name, Load: -1}
		w, err := env.Prepare(ctx, sc, t)
		if errors.Is(err, ErrSkip) {
			fmt.Printf("SKIP %s on %s: %v\n", sc, t.Name, err)
			results[i].Skipped = err.Error()
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", sc, t.Name, err)
		}
		loads[i] = w
	}
	slice, perSlice := o.duration/time.Duration(o.rounds), o.requests/uint64(o.rounds)
	for round := range o.rounds {
		for i, t := range o.targets {
			w := loads[i]
			if w == nil {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if round == 0 && o.warmup > 0 {
				wr := Phase(ctx, env.Client, w, o.pace("", ""), o.warmup, 0)
				if wr.Errors > 0 {
					fmt.Printf("warm-up %s on %s: %d errors, e.g. %s\n", sc, t.Name, wr.Errors, wr.ErrorSamples[0])
				}
			}
			sqlBefore := o.sql.Sample(ctx)
			before := SampleCPU(o.watches)
			r := Phase(ctx, env.Client, w, o.pace(sc, t.Name), slice, perSlice)
			r.CPU = SampleCPU(o.watches).Sub(before)
			if sqlAfter := o.sql.Sample(ctx); sqlBefore != nil && sqlAfter != nil {
				r.SQL = map[string]uint64{}
				for k, v := range sqlAfter {
					if b, ok := sqlBefore[k]; ok && v >= b {
						r.SQL[k] = v - b
					}
				}
			}
			results[i].add(r)
		}
	}
	return results, nil
}

// loadAverage is the 1-minute load average (-1 where /proc has none).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			return v
		}
	}
	return -1
}

func fmtLoad(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

// pace is how the run's phases send their requests; a measured phase
// (scenario and target named) counts its slow requests, and logs them when
// -slow-log says so.
func (o options) pace(scenario, target string) Pace {
	p := Pace{Concurrency: o.concurrency, Rate: o.rate}
	if target != "" {
		p.SlowAfter = o.slowAfter
		if o.slow != nil {
			p.Slow = o.slow.recorder(scenario, target)
		}
	}
	return p
}

func printTable(o options, sc string, results []*Result) {
	fmt.Println()
	if o.rate > 0 {
		fmt.Printf("== %s %s (open loop, %.0f req/s scheduled, c=%d)\n", o.title, sc, o.rate, o.concurrency)
	} else {
		fmt.Printf("== %s %s (c=%d)\n", o.title, sc, o.concurrency)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tunsent\trequests\tload1\t")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\tskipped\t-\t\n", r.Target)
			continue
		}
		h := &r.Hist
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t\n", r.Target, r.RPS(),
			fmtDur(h.Quantile(0.50)), fmtDur(h.Quantile(0.90)), fmtDur(h.Quantile(0.99)), fmtDur(h.Quantile(0.999)), fmtDur(h.Max()),
			r.Errors, r.Missed, h.Count(), fmtLoad(r.Load))
	}
	tw.Flush()
	for _, r := range results {
		if o.rate > 0 && r.Lag.Count() > 0 {
			fmt.Printf("  send lag (how late requests left after their scheduled start: the load generator's wait for a CPU, or its connection still busy), %s: p50 %s, p99 %s, p99.9 %s, max %s; %d requests took %s or more, of which %d left at least half their latency late\n", r.Target,
				fmtDur(r.Lag.Quantile(0.50)), fmtDur(r.Lag.Quantile(0.99)), fmtDur(r.Lag.Quantile(0.999)), fmtDur(r.Lag.Max()),
				r.Slow, fmtDur(o.slowAfter), r.SlowLate)
		}
		if line := r.CPU.PerRequest(o.watches, r.Hist.Count()); line != "" {
			fmt.Printf("  cpu per request, %s: %s\n", r.Target, line)
		}
		if line := r.CPU.RunqPerRequest(o.watches, r.Hist.Count()); line != "" {
			fmt.Printf("  run-queue wait per request (runnable, waiting for a CPU), %s: %s\n", r.Target, line)
		}
		if line := sqlPerRequest(r.SQL, r.Hist.Count()); line != "" {
			fmt.Printf("  sql per request, %s: %s\n", r.Target, line)
		}
	}
	for _, c := range o.checks {
		if c.Kind != checkRatio || (c.Scenario != "" && c.Scenario != sc) {
			continue
		}
		a, b := find(results, c.A), find(results, c.B)
		if a == nil || b == nil || a.Skipped != "" || b.Skipped != "" || b.RPS() == 0 {
			continue
		}
		ratio := a.RPS() / b.RPS()
		fmt.Printf("%s/%s = %.1fx req/s (target %s %gx) %s; p99 %s vs %s\n", c.A, c.B, ratio, c.Op, c.Value,
			passFail(c.holds(ratio)), fmtDur(a.Hist.Quantile(0.99)), fmtDur(b.Hist.Quantile(0.99)))
	}
}

func printRows(all []*Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\treq/s\tp50\tp99\terrors\t")
	for _, r := range all {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\tskipped\t-\t-\t-\t\n", r.Scenario, r.Target)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%d\t\n", r.Scenario, r.Target, r.RPS(),
			fmtDur(r.Hist.Quantile(0.50)), fmtDur(r.Hist.Quantile(0.99)), r.Errors)
	}
	tw.Flush()
}

// recordOnly reports whether target is a baseline measured for the record.
func recordOnly(o options, target string) bool {
	for _, t := range o.targets {
		if t.Name == target {
			return t.Record
		}
	}
	return false
}

// jsonResult is one row of -json's output (tools/benchreport reads it).
type jsonResult struct {
	Title       string  `json:"title"`
	Scenario    string  `json:"scenario"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"` // scheduled req/s of an open-loop run
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	Errors      uint64  `json:"errors"`
	Requests    uint64  `json:"requests"`
	Skipped     string  `json:"skipped,omitempty"`
}

func writeJSON(path string, o options, all []*Result) error {
	rows := make([]jsonResult, 0, len(all))
	for _, r := range all {
		j := jsonResult{Title: o.title, Scenario: r.Scenario, Target: r.Target, Concurrency: o.concurrency, Rate: o.rate, Skipped: r.Skipped}
		if r.Skipped == "" {
			j.RPS = r.RPS()
			j.P50ms = float64(r.Hist.Quantile(0.50)) / 1e6
			j.P99ms = float64(r.Hist.Quantile(0.99)) / 1e6
			j.P999ms = float64(r.Hist.Quantile(0.999)) / 1e6
			j.Errors = r.Errors
			j.Requests = r.Hist.Count()
		}
		rows = append(rows, j)
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
