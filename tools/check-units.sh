#!/usr/bin/env bash
# tools/check-units.sh - make lint's check of etc/systemd/*.service.
#
# PID 1 here is not systemd: the units are verified, never started.
# 1. systemd-analyze verify on copies whose ExecStart points at binaries built
#    from this checkout (verify refuses a command that does not exist), with
#    the same rewrite of /usr/local/bin that docs/install.md makes for other
#    install paths. verify reports unknown keys and bad values as warnings and
#    still exits 0: any line naming one of our units fails the check.
# 2. systemd-analyze security --offline: the exposure score stays at most 1.5
#    (of 10), and each unit keeps the directives the install guide promises.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
units=("$repo_root"/etc/systemd/*.service)
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

command -v systemd-analyze >/dev/null || {
	echo "check-units: systemd-analyze not found (tools/stack.sh install installs systemd)" >&2
	exit 1
}
(cd "$repo_root" && go build -o "$work/bin/" ./cmd/arca-api ./cmd/arca-swift-filter ./cmd/arca-object-server)
for u in "${units[@]}"; do
	sed "s|/usr/local/bin|$work/bin|g" "$u" >"$work/$(basename "$u")"
done

status=0
out=$(SYSTEMD_UNIT_PATH="$work:" systemd-analyze verify --man=no "$work"/*.service 2>&1) || status=1
if grep -q 'arca-' <<<"$out"; then status=1; fi
if ((status)); then
	echo "check-units: systemd-analyze verify:" >&2
	echo "$out" >&2
fi

required=(User= NoNewPrivileges=yes 'CapabilityBoundingSet=$' ProtectSystem=strict PrivateTmp=yes
	ProtectHome=yes RestrictAddressFamilies= SystemCallFilter=@system-service UMask=0077)
for u in "$work"/*.service; do
	name=$(basename "$u")
	for r in "${required[@]}"; do
		if ! grep -q "^$r" "$u"; then
			echo "check-units: $name lacks ${r%\$}" >&2
			status=1
		fi
	done
	if ! systemd-analyze security --offline=yes --threshold=15 --no-pager "$u" >"$work/security.txt" 2>&1; then
		echo "check-units: $name is exposed beyond 1.5:" >&2
		grep -v '✓' "$work/security.txt" >&2 || true
		status=1
	fi
done
((status == 0)) && echo "check-units: ${#units[@]} units verified"
exit "$status"
