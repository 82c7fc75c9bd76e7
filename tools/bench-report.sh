#!/usr/bin/env bash
# make bench-report: Arca beside Barbican 15 and Swift's own encryption, measured
# side by side in one run on this machine (issue 8, "Comparison report"):
#
#   1. key service: Arca (arca-api, noauth, MariaDB) vs Barbican 15 (the stack's,
#      demo's token): secret store, get payload, order create; req/s, p50/p99 at
#      concurrency 1 and 16 (tools/loadgen);
#   2. object path through the real Swift proxy, PUT/GET 4 KiB and 16 MiB with
#      demo's token (tools/benchreport obj):
#        swift             the stack's proxy (:8081), no encryption;
#        swift-encryption  a private swift-proxy-server with keymaster + encryption,
#                          on the stack's rings, account/container/object servers;
#        arca              arca-swift-filter -> a private swift-proxy-server -> two
#                          arca-object-servers (ring: 1 replica like the stack's),
#                          keys from an arca-api (keystone) registered in a private
#                          catalog region;
#   3. memory (RSS from /proc) of every service involved (tools/benchreport mem);
#   4. writes docs/bench-report.md (tables, ratios, date, machine, load average,
#      target verdicts) and docs/bench-report.png (tools/benchreport render).
#
# It starts Barbican when the stack runs without it, and stops only what it started,
# by PID. Its catalog region/service and its database are removed on exit.
#
# Knobs: ARCA_BENCH_DURATION (8s per key-service scenario, target and concurrency),
# ARCA_BENCH_WARMUP (2s), ARCA_BENCH_OBJ_DURATION (5s per 4 KiB phase),
# ARCA_BENCH_OBJ_LARGE_N (12 requests per 16 MiB phase), ARCA_BENCH_KEEP=1 (keep the
# temporary directory and the database), ARCA_BENCH_REPORT_DIR (docs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=$ROOT/tools/stack.sh
DURATION=${ARCA_BENCH_DURATION:-8s}
WARMUP=${ARCA_BENCH_WARMUP:-2s}
OBJ_DURATION=${ARCA_BENCH_OBJ_DURATION:-5s}
OBJ_LARGE_N=${ARCA_BENCH_OBJ_LARGE_N:-12}
KEEP=${ARCA_BENCH_KEEP:-0}
OUT_DIR=${ARCA_BENCH_REPORT_DIR:-$ROOT/docs}
DB=arca_bench_report

T0=$EPOCHSECONDS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/arca-bench-report.XXXXXX")
BIN=$TMP/bin
PIDS=()             # processes we started
STARTED_STACK=0     # we brought the whole stack up: take it down
STARTED_BARBICAN=0  # the stack was up without Barbican: stop only Barbican
DB_CREATED=0
REGION=""           # private catalog region we registered arca-api in
SVC_NAME=""

say() { printf '[bench-report %3ds] %s\n' "$((EPOCHSECONDS - T0))" "$*"; }
die() {
	say "ERROR: $*" >&2
	exit 1
}

stop_pid() { # TERM a process we started, KILL it after 10 s
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

mysql_root() {
	MYSQL_PWD=$MY_PASSWORD mysql --protocol=TCP -h "$MY_HOST" -P "$MY_PORT" -u "$MY_USER" "$@"
}

admin_openstack() { # the openstack CLI as the stack's admin
	(
		eval "$("$STACK" env admin)"
		openstack "$@"
	)
}

remove_catalog() {
	local id
	[[ -n $REGION ]] || return 0
	while read -r id; do
		[[ -z $id ]] || admin_openstack endpoint delete "$id" || true
	done < <(admin_openstack endpoint list --region "$REGION" -f value -c ID 2>/dev/null || true)
	admin_openstack service delete "$SVC_NAME" >/dev/null 2>&1 || true
	admin_openstack region delete "$REGION" >/dev/null 2>&1 || true
}

cleanup() {
	local status=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	remove_catalog
	if [[ $DB_CREATED == 1 && $KEEP != 1 ]]; then
		mysql_root -e "DROP DATABASE IF EXISTS $DB" || true
	fi
	if [[ $STARTED_STACK == 1 ]]; then
		say "stopping the stack (this run started it)"
		"$STACK" down || true
	elif [[ $STARTED_BARBICAN == 1 ]]; then
		local dir=${ARCA_STACK_DIR:-$ROOT/.stack}
		if [[ -s $dir/run/barbican.pid ]]; then
			pid=$(<"$dir/run/barbican.pid")
			say "stopping Barbican (pid $pid; this run started it)"
			kill -TERM -- "-$pid" 2>/dev/null || stop_pid "$pid"
			for _ in {1..100}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL -- "-$pid" 2>/dev/null || true
			rm -f "$dir/run/barbican.pid"
		fi
	fi
	if [[ $KEEP == 1 ]]; then
		say "kept $TMP and database $DB"
	else
		rm -rf "$TMP"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a port nothing listens on
	local p
	for _ in {1..100}; do
		p=$((20000 + RANDOM % 20000))
		if ! (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

start_bg() { # NAME CMD...: starts a process in the background, logs to $TMP/NAME.log
	local name=$1
	shift
	"$@" >"$TMP/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

wait_healthy() { # NAME PID URL
	local name=$1 pid=$2 url=$3 i
	for ((i = 0; i < 150; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$TMP/$name.log" >&2
			die "$name exited during start-up (log above)"
		fi
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			say "$name: pid $pid, $url"
			return 0
		fi
		sleep 0.2
	done
	tail -n 30 "$TMP/$name.log" >&2
	die "$name did not answer on $url within 30 s"
}

# ------------------------------------------------------------------ build
say "building arca binaries, loadgen, benchreport into $BIN"
mkdir -p "$BIN"
go build -o "$BIN/" ./cmd/... ./tools/loadgen ./tools/benchreport || die "build failed"

# ------------------------------------------------------------------ stack
ARCA_STACK_BARBICAN=1 "$STACK" install
status_before=$("$STACK" status || true)
if ! grep -Eq '^keystone +running' <<<"$status_before"; then
	STARTED_STACK=1
elif ! grep -Eq '^barbican +running' <<<"$status_before"; then
	STARTED_BARBICAN=1
fi
ARCA_STACK_BARBICAN=1 "$STACK" up
eval "$(ARCA_STACK_BARBICAN=1 "$STACK" env)"
[[ -n ${ARCA_TEST_BARBICAN_URL:-} ]] || die "Barbican is not running after tools/stack.sh up"
SWIFT_DIR=$ARCA_TEST_SWIFT_DIR
SWIFT_URL=${ARCA_TEST_SWIFT_URL:-http://127.0.0.1:8081}

dsn=${ARCA_TEST_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
[[ $dsn =~ ^([^:@]+)(:([^@]*))?@tcp\(([^:]+):([0-9]+)\) ]] || die "cannot read ARCA_TEST_MYSQL_DSN"
MY_USER=${BASH_REMATCH[1]} MY_PASSWORD=${BASH_REMATCH[3]} MY_HOST=${BASH_REMATCH[4]} MY_PORT=${BASH_REMATCH[5]}

# ------------------------------------------------------------------ arca-api x2
say "fresh database $DB on $MY_HOST:$MY_PORT"
mysql_root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
DB_CREATED=1
DB_URL="mysql+pymysql://$MY_USER${MY_PASSWORD:+:$MY_PASSWORD}@$MY_HOST:$MY_PORT/$DB"

AUTHTOKEN="[keystone_authtoken]
www_authenticate_uri = $ARCA_TEST_KEYSTONE_URL
auth_url = $ARCA_TEST_KEYSTONE_URL
auth_type = password
username = $ARCA_TEST_ARCA_USER
password = $ARCA_TEST_ARCA_PASSWORD
project_name = $ARCA_TEST_ARCA_PROJECT
user_domain_name = $ARCA_TEST_USER_DOMAIN
project_domain_name = $ARCA_TEST_PROJECT_DOMAIN
region_name = $ARCA_TEST_REGION"

write_api_conf() { # FILE PORT STRATEGY
	local file=$1 port=$2 strategy=$3
	cat >"$file" <<-CONF
		# generated by tools/bench-report.sh
		[DEFAULT]
		bind_host = 127.0.0.1
		bind_port = $port
		host_href = http://127.0.0.1:$port
		auth_strategy = $strategy
		[database]
		connection = $DB_URL
		[crypto]
		master_key_file = $TMP/master.key
	CONF
	if [[ $strategy == keystone ]]; then
		printf '%s\n' "$AUTHTOKEN" >>"$file"
	fi
	chmod 600 "$file"
}

NOAUTH_PORT=$(free_port) || die "no free port"
write_api_conf "$TMP/arca-noauth.conf" "$NOAUTH_PORT" noauth
"$BIN/arca-manage" --config-file "$TMP/arca-noauth.conf" kek rotate
"$BIN/arca-manage" --config-file "$TMP/arca-noauth.conf" db upgrade
start_bg arca-api-noauth "$BIN/arca-api" --config-file "$TMP/arca-noauth.conf"
API_NOAUTH_PID=$LAST_PID
wait_healthy arca-api-noauth "$API_NOAUTH_PID" "http://127.0.0.1:$NOAUTH_PORT/healthcheck"

KS_PORT=$(free_port) || die "no free port"
write_api_conf "$TMP/arca-keystone.conf" "$KS_PORT" keystone
start_bg arca-api-keystone "$BIN/arca-api" --config-file "$TMP/arca-keystone.conf"
API_KS_PID=$LAST_PID
wait_healthy arca-api-keystone "$API_KS_PID" "http://127.0.0.1:$KS_PORT/healthcheck"

TAG=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
REGION=arca-bench-$TAG
SVC_NAME=arca-bench-$TAG
say "registering arca-api (keystone) in the private region $REGION"
(
	eval "$("$STACK" env admin)"
	"$BIN/arca-manage" --config-file "$TMP/arca-keystone.conf" register \
		--url "http://127.0.0.1:$KS_PORT" --region "$REGION" --name "$SVC_NAME"
) >"$TMP/register.log" 2>&1 || {
	cat "$TMP/register.log" >&2
	die "arca-manage register failed"
}

# ------------------------------------------------------------------ Arca object path
RINGS=$TMP/rings
mkdir -p "$RINGS"
cp "$SWIFT_DIR/account.ring.gz" "$SWIFT_DIR/container.ring.gz" "$RINGS/"
OBJ_PORTS=()
OBJ_PIDS=()
for i in 1 2; do
	port=$(free_port) || die "no free port"
	OBJ_PORTS+=("$port")
	mkdir -p "$TMP/node$i/d$i"
	cat >"$TMP/object-server-$i.conf" <<-CONF
		# generated by tools/bench-report.sh
		[DEFAULT]
		devices = $TMP/node$i
		mount_check = false
		bind_ip = 127.0.0.1
		bind_port = $port
		swift_dir = $RINGS
		container_update_timeout = 2
		[app:object-server]
		[arca]
		region_name = $REGION
		interface = internal
		auth_url = $ARCA_TEST_KEYSTONE_URL
		username = $ARCA_TEST_ARCA_USER
		password = $ARCA_TEST_ARCA_PASSWORD
		project_name = $ARCA_TEST_ARCA_PROJECT
		user_domain_name = $ARCA_TEST_USER_DOMAIN
		project_domain_name = $ARCA_TEST_PROJECT_DOMAIN
	CONF
	chmod 600 "$TMP/object-server-$i.conf"
	start_bg "arca-object-server-$i" "$BIN/arca-object-server" --config-file "$TMP/object-server-$i.conf"
	OBJ_PIDS+=("$LAST_PID")
done
# one replica over the two servers, like the stack's one-replica ring
/usr/bin/python3 - "$RINGS" "${OBJ_PORTS[@]}" <<-'PY'
	import os, sys
	from swift.common.ring import RingBuilder
	rb = RingBuilder(6, 1, 0)
	for i, port in enumerate(sys.argv[2:]):
	    rb.add_dev({'id': i, 'region': 1, 'zone': i + 1, 'ip': '127.0.0.1', 'port': int(port),
	                'replication_ip': '127.0.0.1', 'replication_port': int(port),
	                'device': 'd%d' % (i + 1), 'weight': 100.0, 'meta': ''})
	rb.rebalance()
	rb.get_ring().save(os.path.join(sys.argv[1], 'object.ring.gz'))
PY

proxy_conf() { # PORT SWIFT_DIR: the stack's proxy configuration on another port and rings
	sed -e "s|^bind_port = .*|bind_port = $1|" \
		-e "s|^swift_dir = .*|swift_dir = $2\nuser = $(id -un)|" "$SWIFT_DIR/proxy-server.conf"
}

ARCA_PROXY_PORT=$(free_port) || die "no free port"
proxy_conf "$ARCA_PROXY_PORT" "$RINGS" >"$TMP/proxy-arca.conf"
start_bg swift-proxy-arca swift-proxy-server "$TMP/proxy-arca.conf" -v
ARCA_PROXY_PID=$LAST_PID

FILTER_PORT=$(free_port) || die "no free port"
cat >"$TMP/swift-filter.conf" <<-CONF
	# generated by tools/bench-report.sh
	[DEFAULT]
	bind_ip = 127.0.0.1
	bind_port = $FILTER_PORT
	reseller_prefix = AUTH
	[upstream]
	url = http://127.0.0.1:$ARCA_PROXY_PORT
	$AUTHTOKEN
	[key_service]
	region_name = $REGION
	interface = public
CONF
chmod 600 "$TMP/swift-filter.conf"
start_bg arca-swift-filter "$BIN/arca-swift-filter" --config-file "$TMP/swift-filter.conf"
FILTER_PID=$LAST_PID

# Swift's own encryption: keymaster + encryption just before the last proxy-logging
ENC_PORT=$(free_port) || die "no free port"
{
	proxy_conf "$ENC_PORT" "$SWIFT_DIR" |
		sed -e '/^pipeline = /s/proxy-logging proxy-server$/keymaster encryption proxy-logging proxy-server/'
	cat <<-CONF
		[filter:keymaster]
		use = egg:swift#keymaster
		encryption_root_secret = $(head -c 32 /dev/urandom | base64)
		[filter:encryption]
		use = egg:swift#encryption
	CONF
} >"$TMP/proxy-encryption.conf"
chmod 600 "$TMP/proxy-encryption.conf"
grep -q '^pipeline = .*keymaster encryption proxy-logging proxy-server$' "$TMP/proxy-encryption.conf" ||
	die "could not put keymaster + encryption into the proxy pipeline"
start_bg swift-proxy-encryption swift-proxy-server "$TMP/proxy-encryption.conf" -v
ENC_PID=$LAST_PID

for i in 0 1; do
	wait_healthy "arca-object-server-$((i + 1))" "${OBJ_PIDS[$i]}" "http://127.0.0.1:${OBJ_PORTS[$i]}/healthcheck"
done
wait_healthy swift-proxy-arca "$ARCA_PROXY_PID" "http://127.0.0.1:$ARCA_PROXY_PORT/healthcheck"
wait_healthy arca-swift-filter "$FILTER_PID" "http://127.0.0.1:$FILTER_PORT/healthcheck"
wait_healthy swift-proxy-encryption "$ENC_PID" "http://127.0.0.1:$ENC_PORT/healthcheck"

# ------------------------------------------------------------------ 1. key service
KEY_JSON=()
for c in 1 16; do
	say "key service at concurrency $c"
	"$BIN/loadgen" -title "keys-c$c" -c "$c" -rounds 2 -duration "$DURATION" -warmup "$WARMUP" \
		-scenarios secret-store,secret-get-payload,order-create \
		-target "arca,http://127.0.0.1:$NOAUTH_PORT,noauth:bench-report-project,cleanup" \
		-target "barbican,$ARCA_TEST_BARBICAN_URL,keystone:demo,cleanup" \
		-json "$TMP/keys-c$c.json" 2>&1 | tee "$TMP/loadgen-c$c.out" ||
		say "loadgen at c=$c reported failures (see above); its figures go into the report as measured"
	[[ ! -s $TMP/keys-c$c.json ]] || KEY_JSON+=("$TMP/keys-c$c.json")
done

# ------------------------------------------------------------------ 2. object path
say "object path: PUT/GET 4 KiB and 16 MiB through the Swift proxy"
"$BIN/benchreport" obj -user demo -duration "$OBJ_DURATION" -n-large "$OBJ_LARGE_N" \
	-target "swift=$SWIFT_URL" \
	-target "swift-encryption=http://127.0.0.1:$ENC_PORT" \
	-target "arca=http://127.0.0.1:$FILTER_PORT" \
	-out "$TMP/obj.json" || say "object benchmark reported failures (see above)"

# ------------------------------------------------------------------ 3. memory
STACK_RUN=${ARCA_STACK_DIR:-$ROOT/.stack}/run
stack_pid() { if [[ -s $STACK_RUN/$1.pid ]]; then cat "$STACK_RUN/$1.pid"; fi; }
MEM=(
	"arca-api=$API_NOAUTH_PID"
	"arca-api-keystone=$API_KS_PID"
	"arca-swift-filter=$FILTER_PID"
	"arca-object-server-1=${OBJ_PIDS[0]}"
	"arca-object-server-2=${OBJ_PIDS[1]}"
	"swift-proxy-arca=$ARCA_PROXY_PID"
	"swift-proxy-encryption=$ENC_PID"
)
for svc in barbican swift-proxy swift-object keystone; do
	pid=$(stack_pid "$svc")
	[[ -z $pid ]] || MEM+=("$svc=$pid")
done
say "memory"
"$BIN/benchreport" mem -out "$TMP/mem.json" "${MEM[@]}"

# ------------------------------------------------------------------ 4. report
mkdir -p "$OUT_DIR"
keys_csv=$(IFS=,; echo "${KEY_JSON[*]}")
"$BIN/benchreport" render -keys "$keys_csv" -obj "$TMP/obj.json" -mem "$TMP/mem.json" \
	-md "$OUT_DIR/bench-report.md" -png "$OUT_DIR/bench-report.png" \
	-load-before "$LOAD_BEFORE" -elapsed "$((EPOCHSECONDS - T0))s" \
	-notes "key service: $DURATION measured per scenario, target and concurrency after $WARMUP warm-up, 2 alternating rounds|object path: 4 KiB for $OBJ_DURATION per phase at c=16, 16 MiB $OBJ_LARGE_N requests per phase at c=2"
say "wrote $OUT_DIR/bench-report.md and $OUT_DIR/bench-report.png"
