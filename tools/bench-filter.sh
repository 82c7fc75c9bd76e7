#!/usr/bin/env bash
# tools/bench-filter.sh: arca-swift-filter speed, client -> filter -> upstream
# against client -> upstream in the same run, warm caches.
#   - against a Go upstream (the filter's own overhead): 1 KiB GET/PUT p50,
#     p99 and process CPU per request; 64 MiB PUT/GET MB/s;
#   - against the stack's real Swift proxy (when its env is set: eval
#     "$(tools/stack.sh env)"): 1 KiB GET p50, 16 MiB PUT/GET MB/s.
# Targets (issue 7): added p50 < 0.5 ms; large PUT/GET >= 95 % of direct.
# Knobs: BENCH_FILTER_SMALL_N (default 3000), BENCH_FILTER_LARGE_N (10),
# BENCH_FILTER_SWIFT_N (500).
set -euo pipefail
cd "$(dirname "$0")/.."
small=${BENCH_FILTER_SMALL_N:-3000}
large=${BENCH_FILTER_LARGE_N:-10}
swiftn=${BENCH_FILTER_SWIFT_N:-500}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  go test -run '^$' -bench '^BenchmarkFilterSmall$' -benchtime "${small}x" ./swiftfilter/
  go test -run '^$' -bench '^BenchmarkFilterLarge$' -benchtime "${large}x" ./swiftfilter/
  if [[ -n "${ARCA_TEST_SWIFT_URL:-}" ]]; then
    go test -run '^$' -bench '^BenchmarkFilterSwift$/^GET' -benchtime "${swiftn}x" ./swiftfilter/
    go test -run '^$' -bench '^BenchmarkFilterSwift$/^Large' -benchtime "${large}x" ./swiftfilter/
  fi
} | grep '^Benchmark' | tee "$out"

# Side by side: filter vs direct for each benchmark.
awk '
function metric(line, unit,   i, n, f) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
{
  name = $1; sub(/-[0-9]+$/, "", name)
  split(name, parts, "/"); kind = parts[length(parts)]
  base = name; sub(/\/(direct|filter)$/, "", base)
  p50[base, kind] = metric($0, "p50-µs"); cpu[base, kind] = metric($0, "cpu-µs/op"); mbs[base, kind] = metric($0, "MB/s")
  if (!(base in seen)) { seen[base] = 1; order[++n] = base }
}
END {
  print ""
  printf "%-34s %12s %12s %12s %12s\n", "arca-swift-filter", "direct", "filter", "added/ratio", "target"
  for (i = 1; i <= n; i++) {
    b = order[i]
    if (mbs[b, "direct"] != "") {
      r = 100 * mbs[b, "filter"] / mbs[b, "direct"]
      printf "%-34s %9.1f MB/s %7.1f MB/s %11.1f %% %12s\n", b, mbs[b, "direct"], mbs[b, "filter"], r, (r >= 95 ? "ok (>=95%)" : "MISS (>=95%)")
    } else {
      d = p50[b, "filter"] - p50[b, "direct"]
      printf "%-34s %9.1f µs %9.1f µs %9.1f µs %12s\n", b " p50", p50[b, "direct"], p50[b, "filter"], d, (d < 500 ? "ok (<500µs)" : "MISS (<500µs)")
      if (cpu[b, "direct"] != "")
        printf "%-34s %9.1f µs %9.1f µs %9.1f µs %12s\n", b " CPU/request", cpu[b, "direct"], cpu[b, "filter"], cpu[b, "filter"] - cpu[b, "direct"], "(reported)"
    }
  }
}' "$out"
