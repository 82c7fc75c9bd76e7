#!/usr/bin/env bash
# govulncheck against an offline vulnerability database built from the
# golang.org/x/vulndb module (served by the Go module proxy), so the check
# needs no access to vuln.go.dev. The index is cached under .cache/vulndb.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
vulndb_version=${ARCA_VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
govulncheck_version=${ARCA_GOVULNCHECK_VERSION:-v1.9.0}
cache=$repo/.cache/vulndb

cd "$repo"
if [[ ! -f $cache/index/db.json ]]; then
	echo "building the offline vulnerability index (a few minutes, once)"
	go mod download "golang.org/x/vulndb@$vulndb_version"
	src=$(go env GOMODCACHE)/golang.org/x/vulndb@$vulndb_version
	go run "golang.org/x/vulndb/cmd/indexdb@$vulndb_version" -vulns "$src/data/osv" -out "$cache"
fi
exec go run "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version" -db "file://$cache" ./...
