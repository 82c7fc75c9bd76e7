#!/usr/bin/env bash
# Runs a command with the real stack (tools/stack.sh) up and its environment
# exported: installs what is missing, starts what is not running, and
# afterwards stops the stack only if this script started it, so a developer's
# running stack survives "make test".
set -euo pipefail

stack=$(cd "$(dirname "$0")" && pwd)/stack.sh
"$stack" install
started=0
# Read the whole status first: grep -q closing the pipe early would fail the
# pipeline under pipefail and make a running stack look stopped.
status_text=$("$stack" status)
if ! grep -Eq '^keystone +running' <<<"$status_text"; then
	started=1
fi
"$stack" up
eval "$("$stack" env)"
status=0
"$@" || status=$?
if [[ $started == 1 ]]; then
	"$stack" down || true
fi
exit "$status"
