#!/usr/bin/env bash
# make bench: Arca's figures beside their baselines, on this machine.
#
#   1. builds arca-api, arca-manage and tools/loadgen into a temporary directory;
#   2. brings the real stack up with Barbican 15 (tools/stack.sh, ARCA_STACK_BARBICAN=1),
#      remembering what was already running: only what this script started is stopped;
#   3. creates a fresh MariaDB database arca_bench, a master key, the schema, and starts
#      two arca-api processes on it: auth_strategy = noauth and auth_strategy = keystone
#      (the stack's Keystone, service user arca);
#   4. runs the load generator:
#        (a) secret store and get payload, arca (noauth) vs Barbican (demo's token), c=16:
#            arca >= 20x Barbican req/s, arca p99 < 10 ms             (issue 2)
#        (b) secret GETs with a Keystone token (warm cache) vs noauth, c=16:
#            noauth/keystone req/s <= 1.5                              (issue 3)
#        (c) project-key payload, c=32, beside the secret GET figure:
#            >= 5000 req/s, p99 < 10 ms                                (issue 4)
#   5. runs the Go benchmarks (short benchtime), objcrypt's speed report and the
#      object rewrap rate (issue 10: >= 2,000 objects/s);
#   6. prints a summary with PASS/FAIL per target; exits 1 if any target failed.
#
# Everything shares the machine's CPUs (2 on CI): load generator, arca-api, MariaDB,
# Keystone, Barbican. Targets compared side by side are measured in alternating rounds
# (A B A B ...) so that background load hits them alike; each table shows the load
# average. Every process it starts is stopped by PID on exit.
#
# Knobs: ARCA_BENCH_DURATION (10s per scenario and target), ARCA_BENCH_WARMUP (2s),
# ARCA_BENCH_BENCHTIME (200ms, for go test -bench), ARCA_BENCH_GO=0 (skip the Go
# benchmarks), ARCA_BENCH_KEEP=1 (keep the temp dir and the arca_bench database),
# ARCA_BENCH_RUNS (the load runs to do, default "a b c"; without a, Barbican is
# neither needed nor started).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=$ROOT/tools/stack.sh
DURATION=${ARCA_BENCH_DURATION:-10s}
WARMUP=${ARCA_BENCH_WARMUP:-2s}
BENCHTIME=${ARCA_BENCH_BENCHTIME:-200ms}
RUN_GO=${ARCA_BENCH_GO:-1}
KEEP=${ARCA_BENCH_KEEP:-0}
RUNS=" ${ARCA_BENCH_RUNS:-a b c} "
want_run() { [[ $RUNS == *" $1 "* ]]; }
# Barbican is the baseline of run a only: the other runs measure arca alone.
WANT_BARBICAN=0
if want_run a; then WANT_BARBICAN=1; fi
DB=arca_bench

T0=$EPOCHSECONDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/arca-bench.XXXXXX")
BIN=$TMP/bin
PIDS=()             # arca-api processes we started
STARTED_STACK=0     # we brought the whole stack up: take it down
STARTED_BARBICAN=0  # the stack was up without Barbican: stop only Barbican
DB_CREATED=0
SUMMARY=()

say() { printf '[bench %3ds] %s\n' "$((EPOCHSECONDS - T0))" "$*"; }
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

cleanup() {
	local status=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
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
			# launched with setsid by stack.sh: its process group is its own
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

# ------------------------------------------------------------------ build
say "building arca-api, arca-manage, loadgen into $BIN"
mkdir -p "$BIN"
go build -o "$BIN/" ./cmd/... ./tools/loadgen ||
	die "build failed (arca-api must build for make bench)"

# ------------------------------------------------------------------ stack
"$STACK" install
status_before=$("$STACK" status || true)
if ! grep -Eq '^keystone +running' <<<"$status_before"; then
	STARTED_STACK=1
elif [[ $WANT_BARBICAN == 1 ]] && ! grep -Eq '^barbican +running' <<<"$status_before"; then
	STARTED_BARBICAN=1
fi
ARCA_STACK_BARBICAN=$WANT_BARBICAN "$STACK" up
eval "$(ARCA_STACK_BARBICAN=$WANT_BARBICAN "$STACK" env)"
if [[ $WANT_BARBICAN == 1 && -z ${ARCA_TEST_BARBICAN_URL:-} ]]; then
	die "Barbican is not running after tools/stack.sh up"
fi

# ARCA_TEST_MYSQL_DSN is a go-sql-driver DSN: USER[:PASSWORD]@tcp(HOST:PORT)/
dsn=${ARCA_TEST_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
[[ $dsn =~ ^([^:@]+)(:([^@]*))?@tcp\(([^:]+):([0-9]+)\) ]] || die "cannot read ARCA_TEST_MYSQL_DSN"
MY_USER=${BASH_REMATCH[1]} MY_PASSWORD=${BASH_REMATCH[3]} MY_HOST=${BASH_REMATCH[4]} MY_PORT=${BASH_REMATCH[5]}

# ------------------------------------------------------------------ arca-api x2
say "fresh database $DB on $MY_HOST:$MY_PORT"
mysql_root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
DB_CREATED=1
DB_URL="mysql+pymysql://$MY_USER${MY_PASSWORD:+:$MY_PASSWORD}@$MY_HOST:$MY_PORT/$DB"

write_conf() { # FILE PORT STRATEGY
	local file=$1 port=$2 strategy=$3
	cat >"$file" <<-CONF
		# generated by tools/bench.sh
		[DEFAULT]
		bind_host = 127.0.0.1
		bind_port = $port
		auth_strategy = $strategy
		[database]
		connection = $DB_URL
		[crypto]
		master_key_file = $TMP/master.key
	CONF
	if [[ $strategy == keystone ]]; then
		cat >>"$file" <<-CONF
			[keystone_authtoken]
			www_authenticate_uri = $ARCA_TEST_KEYSTONE_URL
			auth_url = $ARCA_TEST_KEYSTONE_URL
			auth_type = password
			username = $ARCA_TEST_ARCA_USER
			password = $ARCA_TEST_ARCA_PASSWORD
			project_name = $ARCA_TEST_ARCA_PROJECT
			user_domain_name = $ARCA_TEST_USER_DOMAIN
			project_domain_name = $ARCA_TEST_PROJECT_DOMAIN
			region_name = $ARCA_TEST_REGION
		CONF
	fi
	chmod 600 "$file"
}

start_api() { # NAME PORT: starts arca-api, waits for /healthcheck
	local name=$1 port=$2 pid i
	"$BIN/arca-api" --config-file "$TMP/$name.conf" >"$TMP/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < 150; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$TMP/$name.log" >&2
			die "$name exited during start-up (log above)"
		fi
		if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthcheck" 2>/dev/null; then
			say "$name: arca-api pid $pid on :$port"
			return 0
		fi
		sleep 0.2
	done
	tail -n 30 "$TMP/$name.log" >&2
	die "$name did not answer on :$port within 30 s"
}

NOAUTH_PORT=$(free_port) || die "no free port"
write_conf "$TMP/noauth.conf" "$NOAUTH_PORT" noauth
"$BIN/arca-manage" --config-file "$TMP/noauth.conf" kek rotate
"$BIN/arca-manage" --config-file "$TMP/noauth.conf" db upgrade
start_api noauth "$NOAUTH_PORT"
KEYSTONE_PORT=$(free_port) || die "no free port"
while [[ $KEYSTONE_PORT == "$NOAUTH_PORT" ]]; do KEYSTONE_PORT=$(free_port); done
write_conf "$TMP/keystone.conf" "$KEYSTONE_PORT" keystone
start_api keystone "$KEYSTONE_PORT"

NOAUTH_PID=${PIDS[0]} KEYSTONE_PID=${PIDS[1]}

# CPU per request of the processes involved (loadgen -pid: a process and its descendants)
STACK_RUN=${ARCA_STACK_DIR:-$ROOT/.stack}/run
stack_pid() { # NAME: the PID tools/stack.sh recorded for a daemon, if any
	if [[ -s $STACK_RUN/$1.pid ]]; then cat "$STACK_RUN/$1.pid"; fi
}
MYSQL_PID=$(stack_pid mysql) # a private MariaDB; else the host's server
[[ -n $MYSQL_PID ]] || MYSQL_PID=$(pidof -s mariadbd || pidof -s mysqld || true)
WATCH=(-pid "arca-noauth=$NOAUTH_PID" -pid "arca-keystone=$KEYSTONE_PID")
[[ -z $MYSQL_PID ]] || WATCH+=(-pid "mariadbd=$MYSQL_PID")
KEYSTONE_UWSGI=$(stack_pid keystone)
[[ -z $KEYSTONE_UWSGI ]] || WATCH+=(-pid "keystone=$KEYSTONE_UWSGI")
BARBICAN_UWSGI=$(stack_pid barbican)
WATCH+=(-mysql "$dsn") # SQL statements per request (server-wide counters)

ARCA_NOAUTH="http://127.0.0.1:$NOAUTH_PORT"
ARCA_KEYSTONE="http://127.0.0.1:$KEYSTONE_PORT"

# ------------------------------------------------------------------ load
loadgen() { # TITLE ARGS...: runs the load generator, collects its CHECK lines
	local title=$1 st
	shift
	echo
	say "loadgen $title"
	set +e
	"$BIN/loadgen" -title "$title" -duration "$DURATION" -warmup "$WARMUP" "${WATCH[@]}" "$@" 2>&1 | tee "$TMP/loadgen-$title.out"
	st=${PIPESTATUS[0]}
	set -e
	mapfile -t -O "${#SUMMARY[@]}" SUMMARY < <(grep '^CHECK ' "$TMP/loadgen-$title.out" | sed 's/^CHECK //')
	if ((st != 0)) && ! grep -q '^CHECK FAIL' "$TMP/loadgen-$title.out"; then
		SUMMARY+=("FAIL $title: loadgen exited with status $st (see above)")
	fi
}

want_run a && loadgen a-core -c 16 -rounds 2 -scenarios secret-store,secret-get-payload \
	-target "arca,$ARCA_NOAUTH,noauth:bench-project" \
	-target "barbican,$ARCA_TEST_BARBICAN_URL,keystone:demo,cleanup" \
	-ratio 'arca/barbican>=20' -max-p99 arca=10ms ${BARBICAN_UWSGI:+-pid "barbican=$BARBICAN_UWSGI"}

want_run b && loadgen b-auth -c 16 -rounds 4 -scenarios secret-get,secret-get-payload \
	-target "arca-noauth,$ARCA_NOAUTH,noauth:bench-project" \
	-target "arca-keystone,$ARCA_KEYSTONE,keystone:demo" \
	-ratio 'arca-noauth/arca-keystone<=1.5'

want_run c && loadgen c-project-keys -c 32 -rounds 2 -scenarios secret-get,project-key-payload \
	-target "arca,$ARCA_NOAUTH,noauth:bench-pk-project" \
	-target "arca-keystone,$ARCA_KEYSTONE,keystone:arca" \
	-min-rps project-key-payload:arca=5000 -max-p99 project-key-payload:arca=10ms \
	-min-rps project-key-payload:arca-keystone=5000 -max-p99 project-key-payload:arca-keystone=10ms

# The servers are done: free their CPU for the Go benchmarks.
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
PIDS=()

# ------------------------------------------------------------------ go benchmarks
if [[ $RUN_GO == 1 ]]; then
	echo
	say "go test -bench . -benchtime=$BENCHTIME ./..."
	set +e
	go test -run '^$' -bench . -benchmem -benchtime="$BENCHTIME" -timeout 10m ./... 2>&1 |
		grep -Ev '^(PASS|ok  |\?   )|no test files' | tee "$TMP/gobench.out"
	st=${PIPESTATUS[0]}
	set -e
	# issue 4: a cache hit in the key client under 1 µs
	while read -r name ns; do
		if awk -v ns="$ns" 'BEGIN { exit !(ns < 1000) }'; then
			SUMMARY+=("PASS keyclient $name = $ns ns/op (target < 1 µs)")
		else
			SUMMARY+=("FAIL keyclient $name = $ns ns/op (target < 1 µs)")
		fi
	done < <(awk '$1 ~ /^BenchmarkCacheHit/ { for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") print $1, $i }' "$TMP/gobench.out")
	if ((st == 0)); then
		SUMMARY+=("PASS go benchmarks: $(grep -c '^Benchmark' "$TMP/gobench.out") results")
	else
		failed_pkgs=$(awk '$1 == "FAIL" && NF >= 2 { printf "%s%s", sep, $2; sep = ", " }' "$TMP/gobench.out")
		SUMMARY+=("FAIL go benchmarks: go test exited with status $st${failed_pkgs:+ (failed: $failed_pkgs)}")
	fi

	echo
	say "objcrypt speed report (ARCA_BENCH=1)"
	set +e
	ARCA_BENCH=1 go test -count=1 -run 'SpeedReport' -v ./objcrypt/ 2>&1 | tee "$TMP/objcrypt.out"
	st=${PIPESTATUS[0]}
	set -e
	while read -r line; do
		SUMMARY+=("${line##* } objcrypt: ${line% *}")
	done < <(grep -E ' (PASS|FAIL)$' "$TMP/objcrypt.out" | grep -v '^---' | sed 's/  */ /g')
	((st == 0)) || SUMMARY+=("FAIL objcrypt speed report: go test exited with status $st")

	echo
	say "object rewrap rate (ARCA_BENCH=1, issue 10)"
	set +e
	ARCA_BENCH=1 go test -count=1 -run '^TestRewrapRateReport$' -v ./objectserver/rewrap/ 2>&1 | tee "$TMP/rewrap.out"
	st=${PIPESTATUS[0]}
	set -e
	line=$(grep -E '^rewrap of .* (PASS|FAIL)$' "$TMP/rewrap.out" || true)
	if [[ -n $line ]]; then
		SUMMARY+=("${line##* } ${line% *}")
	else
		SUMMARY+=("FAIL rewrap rate report: go test exited with status $st and printed no figure")
	fi
fi

# ------------------------------------------------------------------ summary
echo
echo "== make bench summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs shared by load generator and servers, $((EPOCHSECONDS - T0)) s)"
echo "   load average now: $(cut -d' ' -f1-3 /proc/loadavg) (load1 column above: above $(nproc), other work competed for the CPUs)"
failed=0
for line in "${SUMMARY[@]}"; do
	printf '  %s\n' "$line"
	if [[ $line == FAIL* ]]; then failed=1; fi
done
if ((failed)); then
	echo "== some targets FAILED"
	exit 1
fi
echo "== all targets PASS"
