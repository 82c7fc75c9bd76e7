#!/usr/bin/env bash
# tools/bench-filter.sh: arca-swift-filter speed, client -> filter -> upstream
# against client -> upstream in the same run, warm caches (make bench runs it
# after tools/bench.sh).
#   - against a Go upstream (the filter's own overhead): 1 KiB GET/PUT p50,
#     p99, CPU per request; 64 MiB PUT/GET MB/s and the filter's CPU per byte;
#   - against the stack's real Swift proxy (when its env is set: eval
#     "$(tools/stack.sh env)"): 1 KiB GET p50, 16 MiB PUT/GET MB/s.
# The client and the upstream run in the benchmark's process, the filter in a
# process of its own (as in production), so its CPU is measured apart; all of
# them share the machine's CPUs. Each comparison is run BENCH_FILTER_ROUNDS
# times (direct and filter alternating) and the median of the rounds is shown.
# Targets (issue 7): added p50 < 0.5 ms; large PUT/GET >= 95 % of direct;
# (issue 21) the filter process's CPU per 1 KiB GET and PUT <= 120 µs at 8
# clients at once (the object server's 4 KiB figures' concurrency; one
# request after the other printed beside it), beside
# the whole request's CPU without the filter (client + upstream), and a
# minimal Go reverse proxy's CPU (swiftfilter/testdata/goproxy: net/http's
# server, httputil.ReverseProxy, Go's default transport, nothing else), in a
# process of its own and measured as the filter's, in the same rounds (which
# of the two runs first alternates with the round): what any Go reverse
# proxy process costs per request at this pace on this machine.
# Then (stack only) a 10,000-object JSON listing with sealed ETags, straight
# and through the filter: target <= 2x (issue 16).
# Exits 1 when a target is missed.
# Knobs: BENCH_FILTER_SMALL_N (default 3000), BENCH_FILTER_LARGE_N (10),
# BENCH_FILTER_SWIFT_N (500), BENCH_FILTER_LISTING_N (10), BENCH_FILTER_ROUNDS (3),
# ARCA_BENCH_FILTER_INPROC=1 (the filter in the benchmark's process instead),
# ARCA_BENCH_FILTER_CPUPROFILE=FILE (the filter process's CPU profile, of the
# last benchmark run), ARCA_BENCH_FILTER_MAX_PROCS=N (the filter process with
# [DEFAULT] max_procs = N; unset, as in the shipped configurations: Go's
# default; the baseline proxy then runs with GOMAXPROCS = N),
# ARCA_BENCH_FILTER_CONCURRENCY=N (N clients at once instead of one request
# after the other; the rows then report req/s as well),
# ARCA_BENCH_FILTER_VERDICT_CONCURRENCY=N (8: the clients of the 1 KiB runs
# that issue 21.3 is judged on, rows BenchmarkFilterSmallC<N>).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib/bench-common.sh
source tools/lib/bench-common.sh # bench_summary: lines for make bench's summary
small=${BENCH_FILTER_SMALL_N:-3000}
large=${BENCH_FILTER_LARGE_N:-10}
swiftn=${BENCH_FILTER_SWIFT_N:-500}
rounds=${BENCH_FILTER_ROUNDS:-3}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# table_verdicts PREFIX: the table rows on standard input that end in a
# verdict, "... PASS (<500µs)", as summary lines "PASS PREFIX ... (target <500µs)".
table_verdicts() {
	sed -nE "s/^(.*[^ ]) +(PASS|FAIL) \((.*)\)\$/\2 $1 \1 (target \3)/p" | sed -E 's/  +/ /g'
}
go test -c -o "$tmp/swiftfilter.test" ./swiftfilter/
# The baseline beside the filter (issue 21.3): a minimal Go reverse proxy,
# measured in the same rounds (BenchmarkFilterSmall's goproxy rows).
go build -o "$tmp/goproxy" ./swiftfilter/testdata/goproxy
export ARCA_BENCH_FILTER_BASELINE="$tmp/goproxy"
bench() { # REGEXP N: the benchmarks matching REGEXP, N iterations each (direct, then filter)
	"$tmp/swiftfilter.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2x"
}
where="in its own process"
if [[ ${ARCA_BENCH_FILTER_INPROC:-} == 1 ]]; then
	where="in the benchmark's process"
elif [[ -n ${ARCA_BENCH_FILTER_MAX_PROCS:-} ]]; then
	where="$where, max_procs = $ARCA_BENCH_FILTER_MAX_PROCS (not the default)"
fi
echo
echo "== arca-swift-filter benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), the filter $where)"
[[ -n ${ARCA_TEST_SWIFT_URL:-} ]] || echo "(no stack environment: the real Swift proxy comparison is skipped)"
# Issue 21.3 is judged at the concurrency of the object server's 4 KiB
# figures (21.2, speedreport objectserver: 8 clients), where the machine is
# in use; one request after the other, net/http's goroutine hand-offs on an
# idle machine (about 11 context switches per request, the minimal proxy's
# as the filter's) cost more than the filter's own work, and those figures
# are printed beside the verdict. Its rows are BenchmarkFilterSmallC8.
verdict_conc=${ARCA_BENCH_FILTER_VERDICT_CONCURRENCY:-8}
for ((round = 1; round <= rounds; round++)); do
	ARCA_BENCH_FILTER_ROUND=$round bench '^BenchmarkFilterSmall$' "$small"
	ARCA_BENCH_FILTER_ROUND=$round ARCA_BENCH_FILTER_CONCURRENCY=$verdict_conc bench '^BenchmarkFilterSmall$' "$small" |
		sed -E 's#^BenchmarkFilterSmall/#BenchmarkFilterSmallC'"$verdict_conc"'/#'
	bench '^BenchmarkFilterLarge$' "$large"
	if [[ -n ${ARCA_TEST_SWIFT_URL:-} ]]; then
		bench '^BenchmarkFilterSwift$/^GET' "$swiftn"
		bench '^BenchmarkFilterSwift$/^Large' "$large"
	fi
done | grep '^Benchmark' | tee "$tmp/out"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Side by side: filter vs direct for each benchmark, medians of the rounds.
awk '
function metric(line, unit,   i, n, f) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
function add(key, v) { if (v != "") { cnt[key]++; val[key, cnt[key]] = v } }
function median(key,   i, a, n) {
  n = cnt[key]
  if (!n) return ""
  for (i = 1; i <= n; i++) a[i] = val[key, i]
  asort(a)
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  name = $1; sub(/-[0-9]+$/, "", name)
  split(name, parts, "/"); kind = parts[length(parts)]
  base = name; sub(/\/(direct|filter|goproxy)$/, "", base)
  add(base SUBSEP kind SUBSEP "p50", metric($0, "p50-µs"))
  add(base SUBSEP kind SUBSEP "cpu", metric($0, "cpu-µs/op"))
  add(base SUBSEP kind SUBSEP "mbs", metric($0, "MB/s"))
  # the CPU of the process in the middle: the filter, or the baseline proxy
  add(base SUBSEP kind SUBSEP "fcpu", metric($0, "filter-cpu-µs/op"))
  add(base SUBSEP kind SUBSEP "fsw", metric($0, "filter-switches/op"))
  add(base SUBSEP "fnsb", metric($0, "filter-cpu-ns/B"))
  # the ratio and the added latency of each round: filter over the direct run just before it
  if (kind == "direct") { last_mbs[base] = metric($0, "MB/s"); last_p50[base] = metric($0, "p50-µs") }
  else if (kind != "filter") {}
  else if (last_mbs[base] != "") add(base SUBSEP "ratio", 100 * metric($0, "MB/s") / last_mbs[base])
  else if (last_p50[base] != "") add(base SUBSEP "added", metric($0, "p50-µs") - last_p50[base])
  if (!(base in seen)) { seen[base] = 1; order[++nb] = base }
}
END {
  print ""
  printf "%-34s %12s %12s %12s %14s\n", "arca-swift-filter, median of " ROUNDS, "direct", "filter", "added/ratio", "target"
  for (i = 1; i <= nb; i++) {
    b = order[i]; label = b; sub(/^Benchmark/, "", label)
    if (cnt[b, "ratio"]) {
      r = median(b SUBSEP "ratio")
      ok = r >= 95; if (!ok) missed = 1
      printf "%-34s %7.1f MB/s %7.1f MB/s %11.1f %% %14s\n", label, median(b SUBSEP "direct" SUBSEP "mbs"), median(b SUBSEP "filter" SUBSEP "mbs"), r, (ok ? "PASS (>=95%)" : "FAIL (>=95%)")
      if (cnt[b, "fnsb"]) {
        ns = median(b SUBSEP "fnsb")
        printf "%-34s %12s %9.3f ns/B %12s %14s\n", label " filter CPU/byte", "", ns, sprintf("%.0f MB/s", 1000 / ns), "(1 core)"
      }
      if (cnt[b, "direct", "cpu"])
        printf "%-34s %9.1f ms %9.1f ms %12s %14s\n", label " CPU/request, all", median(b SUBSEP "direct" SUBSEP "cpu") / 1000, median(b SUBSEP "filter" SUBSEP "cpu") / 1000, "", "(reported)"
    } else if (cnt[b, "added"]) {
      d = median(b SUBSEP "added")
      # the added latency of issue 7 is one request at a time; at CONC clients
      # the p50 is queueing for the two CPUs, reported only
      if (b ~ /SmallC[0-9]+\//) verdict = "(reported)"
      else { ok = d < 500; if (!ok) missed = 1; verdict = ok ? "PASS (<500µs)" : "FAIL (<500µs)" }
      printf "%-34s %9.1f µs %9.1f µs %9.1f µs %14s\n", label " p50", median(b SUBSEP "direct" SUBSEP "p50"), median(b SUBSEP "filter" SUBSEP "p50"), d, verdict
      if (cnt[b, "direct", "cpu"])
        printf "%-34s %9.1f µs %9.1f µs %12s %14s\n", label " CPU/request, all", median(b SUBSEP "direct" SUBSEP "cpu"), median(b SUBSEP "filter" SUBSEP "cpu"), "", "(reported)"
      if (cnt[b, "filter", "fcpu"])
        printf "%-34s %12s %9.1f µs %12s %14s\n", label " filter CPU/request", "", median(b SUBSEP "filter" SUBSEP "fcpu"), "", "(reported)"
      if (cnt[b, "goproxy", "fcpu"])
        printf "%-34s %12s %9.1f µs %12s %14s\n", label " goproxy CPU/request", "", median(b SUBSEP "goproxy" SUBSEP "fcpu"), "", "(baseline)"
    }
  }
  # issue 21: the filter process'"'"'s own CPU per 1 KiB request, GET and PUT,
  # judged at CONC clients (BenchmarkFilterSmallC<CONC>), one at a time beside
  split("GET PUT", ops, " ")
  fl = ""; bl = ""; gl = ""; sl = ""; gsl = ""; fok = 1
  for (k = 1; k <= 2; k++) {
    b = "BenchmarkFilterSmallC" CONC "/" ops[k]; b1 = "BenchmarkFilterSmall/" ops[k]
    if (cnt[b1, "filter", "fcpu"]) sl = sl (sl == "" ? "" : ", ") sprintf("%s %.0f µs", ops[k], median(b1 SUBSEP "filter" SUBSEP "fcpu"))
    if (cnt[b1, "goproxy", "fcpu"]) gsl = gsl (gsl == "" ? "" : ", ") sprintf("%s %.0f µs", ops[k], median(b1 SUBSEP "goproxy" SUBSEP "fcpu"))
    if (!cnt[b, "filter", "fcpu"]) continue
    v = median(b SUBSEP "filter" SUBSEP "fcpu"); if (v > 120) fok = 0
    if (cnt[b, "goproxy", "fcpu"]) gl = gl (gl == "" ? "" : ", ") sprintf("%s %.0f µs", ops[k], median(b SUBSEP "goproxy" SUBSEP "fcpu"))
    fl = fl (fl == "" ? "" : ", ") sprintf("%s %.0f µs", ops[k], v)
    if (cnt[b, "direct", "cpu"]) bl = bl (bl == "" ? "" : ", ") sprintf("%s %.0f µs", ops[k], median(b SUBSEP "direct" SUBSEP "cpu"))
  }
  print ""
  if (fl == "") print "SKIP filter 1 KiB, the filter process'"'"'s CPU per request: not measured (ARCA_BENCH_FILTER_INPROC=1 runs the filter in the benchmark'"'"'s process)"
  else {
    if (!fok) missed = 1
    printf "%s filter 1 KiB, the filter process'"'"'s CPU per request at %d clients (as the object server'"'"'s 4 KiB figures): %s (target <= 120 µs each; median of %d rounds of %d requests)%s%s\n", (fok ? "PASS" : "FAIL"), CONC, fl, ROUNDS, SMALL, (bl == "" ? "" : "; beside: the whole request without the filter (client + upstream) " bl) (gl == "" ? "" : "; a minimal Go reverse proxy process (net/http + httputil.ReverseProxy), same rounds, " gl), (sl == "" ? "" : "; one request at a time: the filter " sl (gsl == "" ? "" : ", the minimal proxy " gsl))
  }
  exit missed
}' ROUNDS="$rounds" SMALL="$small" CONC="$verdict_conc" "$tmp/out" | tee "$tmp/table" || missed=1
# make bench's summary: issue 21's target line, then issue 7's rows as lines
while read -r line; do bench_summary -t 3 "$line"; done < <(grep -E '^(PASS|FAIL|SKIP) filter ' "$tmp/table")
while read -r line; do bench_summary "$line"; done < <(table_verdicts filter <"$tmp/table")

# Listing ETags: a 10,000-object JSON listing from the stack's proxy, every
# ETag sealed, straight and through the filter (which opens each one), with
# the CPU per listing of the proxy and container server and of the filter.
# Target (issue 16): through the filter <= 2x the time straight from the proxy.
if [[ -n ${ARCA_TEST_SWIFT_URL:-} && -n ${ARCA_STACK_DIR:-} ]]; then
	for ((round = 1; round <= rounds; round++)); do
		bench '^BenchmarkFilterListing$' "${BENCH_FILTER_LISTING_N:-10}"
	done | grep '^Benchmark' | tee "$tmp/listing"
	awk '
function metric(line, unit,   i, n, f) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
function median(kind, m,   i, a, n) {
  n = cnt[kind, m]
  for (i = 1; i <= n; i++) a[i] = val[kind, m, i]
  asort(a)
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  kind = ($1 ~ /\/direct/) ? "direct" : "filter"
  split("p50-µs server-cpu-µs/op filter-cpu-µs/op", ms, " ")
  for (j in ms) { v = metric($0, ms[j]); if (v != "") val[kind, ms[j], ++cnt[kind, ms[j]]] = v }
}
END {
  d = median("direct", "p50-µs"); f = median("filter", "p50-µs")
  if (!d) exit 1
  r = f / d; ok = r <= 2
  print ""
  printf "%-34s %12s %12s %12s %14s\n", "10,000-object JSON listing, median", "direct", "filter", "ratio", "target"
  printf "%-34s %9.1f ms %9.1f ms %11.2fx %14s\n", "GET time p50", d / 1000, f / 1000, r, (ok ? "PASS (<=2x)" : "FAIL (<=2x)")
  printf "%-34s %9.1f ms %9.1f ms %12s %14s\n", "proxy+container CPU/listing", median("direct", "server-cpu-µs/op") / 1000, median("filter", "server-cpu-µs/op") / 1000, "", "(reported)"
  printf "%-34s %12s %9.1f ms %12s %14s\n", "filter CPU/listing", "", median("filter", "filter-cpu-µs/op") / 1000, "", "(reported)"
  exit !ok
}' "$tmp/listing" | tee "$tmp/listing-table" || missed=1
	while read -r line; do bench_summary "$line"; done < <(table_verdicts "filter 10,000-object listing" <"$tmp/listing-table")
fi
exit "${missed:-0}"
