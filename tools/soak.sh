#!/usr/bin/env bash
# make soak: SOAK_MINUTES (default 10) of mixed secret and object traffic at
# SOAK_CONCURRENCY (default 32) through the whole Arca Swift path, assembled
# as functional/ does (arca-api, two arca-object-servers, a private
# swift-proxy, arca-swift-filter) on the real stack, which comes up first and
# goes down afterwards only if this script started it. The run is
# functional.TestSoak: it fails on any unexpected error, on RSS or goroutine
# growth, and writes soak.md and soak-rss.png to SOAK_OUT (default docs/).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${SOAK_MINUTES:-10}
if ! [[ $minutes =~ ^[0-9]+$ ]] || ((minutes < 1)); then
	echo "soak.sh: SOAK_MINUTES must be a whole number of minutes (got '$minutes')" >&2
	exit 2
fi
out=${SOAK_OUT:-$root/docs}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cd "$root"
export ARCA_SOAK_MINUTES=$minutes
export ARCA_SOAK_OUT=$out
export ARCA_SOAK_CONCURRENCY=${SOAK_CONCURRENCY:-32}
export ARCA_SOAK_SAMPLE_SECONDS=${SOAK_SAMPLE_SECONDS:-5}
echo "soak: ${minutes} min at concurrency ${ARCA_SOAK_CONCURRENCY}, samples every ${ARCA_SOAK_SAMPLE_SECONDS}s, report in ${out}"
exec "$root/tools/with-stack.sh" "${GO:-go}" test -count=1 -timeout "$((minutes + 10))m" -run '^TestSoak$' -v ./functional/
