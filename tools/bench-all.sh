#!/usr/bin/env bash
# tools/bench-all.sh: make bench. Runs every part one after the other, each
# with the load average before and after it, and ends with one summary: every
# part's PASS/FAIL/SKIP lines, then issue 21's targets one line each.
#
#   keys         tools/bench.sh: the key service beside Barbican (runs a, b,
#                c, d, h), Go benchmarks, objcrypt, rewrap;
#   filter       tools/bench-filter.sh: arca-swift-filter beside direct requests;
#   pipeline     tools/bench-pipeline.sh: arca's two shapes through the real
#                Swift proxy beside no arca;
#   objectserver tools/bench-objectserver.sh: the object server beside
#                Debian's Python one;
#   e2e          tools/bench-report.sh with ARCA_BENCH_REPORT_E2E_ONLY=1: the
#                object path of make bench-report alone (Arca beside Swift's own
#                encryption through the real proxy), its target line, no report.
#
# Each part appends its summary lines to the file ARCA_BENCH_SUMMARY
# (bench_summary, tools/lib/bench-common.sh); issue 21's are tagged [21.N].
# Exits 1 when a part failed or a target was missed.
#
# Knobs: ARCA_BENCH_PARTS (default "keys filter pipeline objectserver e2e"),
# and each part's own (ARCA_BENCH_DURATION, ARCA_BENCH_RUNS, ARCA_BENCH_GO,
# BENCH_FILTER_*, BENCH_PIPELINE_*, ARCA_BENCH_OS_*, ARCA_BENCH_OBJ_*).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PARTS=" ${ARCA_BENCH_PARTS:-keys filter pipeline objectserver e2e} "
T0=$EPOCHSECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arca-bench-all.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export ARCA_BENCH_SUMMARY=$WORK/summary
: >"$ARCA_BENCH_SUMMARY"
HEADS=() # per part: its heading in the summary
FIRST=() # per part: its first line in the summary file
status=0

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# part NAME TITLE CMD...: runs a part, notes its time, status and load average.
part() {
	local name=$1 title=$2 before t st=0
	shift 2
	[[ $PARTS == *" $name "* ]] || return 0
	before=$(loadavg)
	t=$EPOCHSECONDS
	echo
	echo "==== make bench: $title ($(date -u +%H:%M:%SZ), load average $before)"
	FIRST+=("$(wc -l <"$ARCA_BENCH_SUMMARY")")
	"$@" || st=$?
	if ((st != 0)); then
		status=1
		# a part that stopped before its figures says so in the summary
		grep -q '^FAIL' <(tail -n "+$((FIRST[-1] + 1))" "$ARCA_BENCH_SUMMARY") ||
			printf 'FAIL %s: exited with status %d before a target line (see its output)\n' "$title" "$st" >>"$ARCA_BENCH_SUMMARY"
	fi
	HEADS+=("-- $title: $((EPOCHSECONDS - t)) s, exit status $st, load average $before before, $(loadavg) after")
}

part keys "key service (tools/bench.sh)" tools/bench.sh
part filter "filter (tools/bench-filter.sh)" tools/bench-filter.sh
part pipeline "pipeline (tools/bench-pipeline.sh)" tools/bench-pipeline.sh
part objectserver "object server (tools/bench-objectserver.sh)" tools/bench-objectserver.sh
part e2e "end to end through the Swift proxy (tools/bench-report.sh, ARCA_BENCH_REPORT_E2E_ONLY=1)" \
	env ARCA_BENCH_REPORT_E2E_ONLY=1 tools/bench-report.sh

mapfile -t LINES <"$ARCA_BENCH_SUMMARY"
echo
echo "== make bench summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs shared by load generators and servers, $((EPOCHSECONDS - T0)) s; load average above $(nproc): other work competed)"
for i in "${!HEADS[@]}"; do
	echo "${HEADS[$i]}"
	end=${#LINES[@]}
	((i + 1 >= ${#FIRST[@]})) || end=${FIRST[$((i + 1))]}
	for ((j = FIRST[i]; j < end; j++)); do printf '  %s\n' "${LINES[$j]}"; done
done

# Issue 21: one line per target, from the lines tagged [21.N]: FAIL when one
# of them failed, SKIP when none was measured or one was skipped, else PASS.
# The titles are short: each figure line states its own target and baseline.
TITLES=(
	""
	"key service, open loop (bench.sh run d; Barbican for the record)"
	"arca-object-server, 4 KiB CPU"
	"arca-swift-filter, 1 KiB CPU"
	"arca-api CPU per request (bench.sh run a)"
	"64 MiB encrypted PUT"
	"end to end, beside Swift's own encryption"
)
echo "== issue 21 targets, one line each"
for n in 1 2 3 4 5 6; do
	verdict=PASS figures=()
	for line in "${LINES[@]}"; do
		[[ $line == *" [21.$n] "* ]] || continue
		case ${line%% *} in
		FAIL) verdict=FAIL ;;
		SKIP) [[ $verdict == FAIL ]] || verdict=SKIP ;;
		esac
		figures+=("${line#* \[21."$n"\] }")
	done
	if ((${#figures[@]} == 0)); then
		printf '  SKIP 21.%d %s: not measured in this run\n' "$n" "${TITLES[$n]}"
		continue
	fi
	joined=$(printf ' | %s' "${figures[@]}")
	printf '  %s 21.%d %s: %s\n' "$verdict" "$n" "${TITLES[$n]}" "${joined:3}"
	[[ $verdict != FAIL ]] || status=1
done
if grep -q '^FAIL' "$ARCA_BENCH_SUMMARY"; then status=1; fi
if ((status)); then
	echo "== some targets FAILED"
else
	echo "== all targets PASS"
fi
exit "$status"
