#!/usr/bin/env bash
# govulncheck against an offline vulnerability database built from the
# golang.org/x/vulndb module (served by the Go module proxy), so the check
# needs no access to vuln.go.dev, then tools/vulngate: the run fails on any
# advisory reachable from Arca's code that tools/vuln-accepted.txt does not
# list with a reason. govulncheck judges the standard library of the Go
# that runs it (this machine's, under GOTOOLCHAIN=local); the release that
# go.mod's toolchain line pins for every other build is checked apart, and
# must have no standard-library advisory at all (tools/vulngate -toolchain).
#
# The index is built once per vulndb version (about 3 minutes) and kept
# under ${XDG_CACHE_HOME:-~/.cache}/arca, outside the checkout, so fresh
# clones on the same machine reuse it. ARCA_VULNDB_VERSION picks another
# snapshot of the database.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
vulndb_version=${ARCA_VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
govulncheck_version=${ARCA_GOVULNCHECK_VERSION:-v1.9.0}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/arca/vulndb-$vulndb_version

cd "$repo"
if [[ ! -f $cache/index/db.json ]]; then
	echo "vuln: building the offline vulnerability index from golang.org/x/vulndb@$vulndb_version (once)"
	go mod download "golang.org/x/vulndb@$vulndb_version"
	src=$(go env GOMODCACHE)/golang.org/x/vulndb@$vulndb_version
	tmp=$cache.tmp.$$
	rm -rf "$tmp"
	go run "golang.org/x/vulndb/cmd/indexdb@$vulndb_version" -vulns "$src/data/osv" -out "$tmp"
	# Built aside and moved in, so an interrupted build is never mistaken
	# for a complete index.
	rm -rf "$cache"
	mv "$tmp" "$cache"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# In JSON mode govulncheck exits 0 with findings; a non-zero exit is a
# failure to scan (no database, code that does not build).
go run "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version" -db "file://$cache" -format json ./... >"$out"
echo "vuln: govulncheck $govulncheck_version, vulndb $vulndb_version, $(go env GOVERSION)"
status=0
go run ./tools/vulngate -accepted tools/vuln-accepted.txt <"$out" || status=$?
pinned=$(go mod edit -json | sed -n 's/^[[:space:]]*"Toolchain": "\(go[^"]*\)".*/\1/p')
if [[ -z $pinned ]]; then
	echo "vuln: go.mod has no toolchain line: builds could take any Go, advisories included" >&2
	exit 1
fi
go run ./tools/vulngate -toolchain "$pinned" -db "$cache" || status=$?
exit "$status"
