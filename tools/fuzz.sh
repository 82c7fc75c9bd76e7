#!/usr/bin/env bash
# Runs every Fuzz* target of the module (or of the packages given as
# arguments) for FUZZTIME each (default 60s; any `go test -fuzztime` value,
# e.g. 10s or 5000x), one after the other, and reports the targets that
# failed and the crashers they wrote. A crasher is kept by `go test` under
# <package>/testdata/fuzz/<Target>/ and is from then on replayed by every
# plain `go test` run: commit it with the fix, as a regression test.
#
#   tools/fuzz.sh                      # all packages, 60s per target
#   FUZZTIME=10s tools/fuzz.sh ./objcrypt/...
#
# A time budget (60s) can end in a bare "context deadline exceeded" with no
# failing input written: that is go1.26's fuzzer racing its own deadline
# (go.dev/issue/75804, fixed in go1.27), not a finding. Such a target is run
# once more; an execution count (FUZZTIME=200000x) avoids the race.
#
# Exit status: 0 when no target failed, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
if [ "$#" -eq 0 ]; then
	set -- ./...
fi

mapfile -t pkgs < <(go list "$@")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
total=0
for pkg in "${pkgs[@]}"; do
	# go test -list prints the matching names, then "ok <pkg> ...".
	if ! list=$(go test -list '^Fuzz' "$pkg"); then
		failed+=("$pkg (does not build)")
		continue
	fi
	mapfile -t targets < <(grep -E '^Fuzz[A-Za-z0-9_]*$' <<<"$list" || true)
	for target in "${targets[@]}"; do
		total=$((total + 1))
		echo "=== $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
			if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "=== $pkg $target: the fuzzer's deadline race (go.dev/issue/75804), no input failed; once more"
				go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" || failed+=("$pkg $target")
			else
				failed+=("$pkg $target")
			fi
		fi
	done
done

echo
echo "fuzz: $total targets, ${#failed[@]} failed (FUZZTIME=$fuzztime)"
if [ "${#failed[@]}" -eq 0 ]; then
	exit 0
fi
for f in "${failed[@]}"; do
	echo "FAILED: $f"
done
# New crashers are untracked files under testdata/fuzz.
crashers=$(git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' | sed -n 's/^?? //p')
if [ -n "$crashers" ]; then
	echo "crashers (replay: go test -run '<Target>/<file>' <package>):"
	while IFS= read -r c; do
		echo "  $c"
	done <<<"$crashers"
fi
exit 1
