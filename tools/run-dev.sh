#!/usr/bin/env bash
# Starts arca-api for development, as "make run" does: SQLite and a master
# key file under a local state folder, no-auth mode (the project comes from
# the X-Project-Id header, the roles from X-Roles: admin, member and reader
# when it is absent; the production policy decides, docs/policy.md),
# listening on 127.0.0.1:9311. Everything it needs is created on the first
# run; later runs keep the data.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
state=${ARCA_STATE_DIR:-$repo/.state}
bin=${ARCA_BIN_DIR:-$repo/bin}
port=${ARCA_PORT:-9311}

mkdir -p "$state"
chmod 700 "$state"
conf=$state/arca.conf
key=$state/master.key

if [[ ! -f $conf ]]; then
	# Owner only, as the SQLite database arca-api creates (0600) and the
	# master key arca-manage writes.
	(umask 077 && cat >"$conf") <<CONF
# Written by "make run": a development arca-api. Do not expose it.
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
host_href = http://127.0.0.1:$port
auth_strategy = noauth
debug = false

[database]
connection = sqlite:///$state/arca.sqlite

[crypto]
master_key_file = $key
CONF
fi
if [[ ! -f $key ]]; then
	"$bin/arca-manage" --config-file "$conf" kek rotate >/dev/null
fi
"$bin/arca-manage" --config-file "$conf" db upgrade >/dev/null

cat <<MSG
arca-api (development mode: no authentication, SQLite in $state)

  barbican --no-auth --endpoint http://127.0.0.1:$port --os-project-id demo secret list
  barbican --no-auth --endpoint http://127.0.0.1:$port --os-project-id demo secret store --name hello --payload s3cret -t text/plain
  curl -s -H 'X-Project-Id: demo' http://127.0.0.1:$port/v1/secrets
  curl -s -X POST -H 'X-Project-Id: demo' -H 'Content-Type: application/json' \\
       -d '{"type":"key","meta":{"algorithm":"aes","bit_length":256}}' http://127.0.0.1:$port/v1/orders
  curl -s -H 'X-Project-Id: demo' -H 'X-Roles: reader' http://127.0.0.1:$port/v1/secrets   # 403: a reader lists nothing

Stop with Ctrl-C.
MSG
exec "$bin/arca-api" --config-file "$conf"
