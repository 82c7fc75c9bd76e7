# shellcheck shell=bash
# tools/lib/bench-common.sh: the set-up and clean-up that tools/bench.sh and
# tools/bench-report.sh share: bringing the project's stack up (and down again
# when they started it), a fresh MariaDB database, the processes they start
# and stop by PID, free ports.
#
# Sourced, not run. Before sourcing, the script sets:
#   BENCH_TAG  the log prefix ("bench", "bench-report")
#   ROOT       the repository root;  STACK  tools/stack.sh
#   TMP        its temporary directory;  DB  the database it creates
#   KEEP       1 keeps TMP and the database on exit
#   T0         $EPOCHSECONDS at the start
# and, after sourcing, installs the clean-up:
#   trap bench_cleanup EXIT; trap 'exit 130' INT TERM
# A script that has more to undo defines bench_cleanup_hook; it runs after
# the started processes are stopped and before the database is dropped.

PIDS=()            # processes this run started
STARTED_STACK=0    # this run brought the whole stack up: take it down
STARTED_BARBICAN=0 # the stack was up without Barbican: stop only Barbican
DB_CREATED=0

say() { printf '[%s %3ds] %s\n' "$BENCH_TAG" "$((EPOCHSECONDS - T0))" "$*"; }
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

# free_port: a loopback port nothing listens on, for a server started next.
# It is picked below the kernel's ephemeral range (as testenv.ServicePort
# does): every outgoing connection meanwhile takes its local port from that
# range, and one was seen taking the port before the server bound it.
free_port() {
	local p lo=20000 hi=32767 eph
	read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph=32768
	((eph - 1 - lo >= 1000)) && hi=$((eph - 1))
	for _ in {1..100}; do
		p=$((lo + RANDOM % (hi - lo + 1)))
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

wait_healthy() { # NAME PID URL: waits until URL answers, fails if the process exits
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

stack_pid() { # NAME: the PID tools/stack.sh recorded for a daemon, if any
	local run=${ARCA_STACK_DIR:-$ROOT/.stack}/run
	if [[ -s $run/$1.pid ]]; then cat "$run/$1.pid"; fi
}

# bench_stack_up WANT_BARBICAN: installs and starts the stack (with Barbican
# when asked) unless all of it already runs, remembers what this run started, loads the stack's environment
# and reads the MariaDB account from ARCA_TEST_MYSQL_DSN (MY_USER,
# MY_PASSWORD, MY_HOST, MY_PORT; dsn holds the DSN itself).
bench_stack_up() {
	local want_barbican=$1 status_before svc all_up=1
	status_before=$("$STACK" status 2>/dev/null || true)
	for svc in keystone swift-account swift-container swift-object swift-proxy; do
		grep -Eq "^$svc +running" <<<"$status_before" || all_up=0
	done
	if [[ $want_barbican == 1 ]] && ! grep -Eq '^barbican +running' <<<"$status_before"; then all_up=0; fi
	if [[ $all_up == 1 ]]; then
		# A stack others share is used as it is: no install, no up.
		say "the stack is up (${ARCA_STACK_DIR:-$ROOT/.stack}): using it as it is"
	else
		ARCA_STACK_BARBICAN=$want_barbican "$STACK" install
		status_before=$("$STACK" status || true)
		if ! grep -Eq '^keystone +running' <<<"$status_before"; then
			STARTED_STACK=1
		elif [[ $want_barbican == 1 ]] && ! grep -Eq '^barbican +running' <<<"$status_before"; then
			STARTED_BARBICAN=1
		fi
		ARCA_STACK_BARBICAN=$want_barbican "$STACK" up
	fi
	eval "$(ARCA_STACK_BARBICAN=$want_barbican "$STACK" env)"
	if [[ $want_barbican == 1 && -z ${ARCA_TEST_BARBICAN_URL:-} ]]; then
		die "Barbican is not running after tools/stack.sh up"
	fi
	# ARCA_TEST_MYSQL_DSN is a go-sql-driver DSN: USER[:PASSWORD]@tcp(HOST:PORT)/
	dsn=${ARCA_TEST_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
	[[ $dsn =~ ^([^:@]+)(:([^@]*))?@tcp\(([^:]+):([0-9]+)\) ]] || die "cannot read ARCA_TEST_MYSQL_DSN"
	MY_USER=${BASH_REMATCH[1]} MY_PASSWORD=${BASH_REMATCH[3]} MY_HOST=${BASH_REMATCH[4]} MY_PORT=${BASH_REMATCH[5]}
}

# bench_fresh_db: (re)creates $DB, dropped again on exit; DB_URL is the
# oslo.db-style URL arca-api's [database] connection takes.
bench_fresh_db() {
	say "fresh database $DB on $MY_HOST:$MY_PORT"
	mysql_root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	DB_CREATED=1
	# shellcheck disable=SC2034 # read by the scripts that source this file
	DB_URL="mysql+pymysql://$MY_USER${MY_PASSWORD:+:$MY_PASSWORD}@$MY_HOST:$MY_PORT/$DB"
}

# private_conf FILE: standard input into FILE, created mode 0600: it holds a
# password, and the services refuse credential files others can read.
private_conf() {
	(umask 077 && cat >"$1") && chmod 600 "$1"
}

# keystone_authtoken_section [WHO]: the [keystone_authtoken] section for the
# stack's Keystone and its service user WHO, as tools/stack.sh env names
# them: ARCA (arca-api's user, the default), ARCA_FILTER (the filter's:
# service and key-manager:swift-filter) or ARCA_OBJECT (the object
# servers': key-manager:object-server only).
keystone_authtoken_section() {
	local who=${1:-ARCA}
	local user=ARCA_TEST_${who}_USER password=ARCA_TEST_${who}_PASSWORD project=ARCA_TEST_${who}_PROJECT
	[[ -n ${!user:-} && -n ${!password:-} && -n ${!project:-} ]] ||
		die "the stack's environment has no $user, $password or $project (tools/stack.sh env)"
	cat <<-CONF
		[keystone_authtoken]
		www_authenticate_uri = $ARCA_TEST_KEYSTONE_URL
		auth_url = $ARCA_TEST_KEYSTONE_URL
		auth_type = password
		username = ${!user}
		password = ${!password}
		project_name = ${!project}
		user_domain_name = $ARCA_TEST_USER_DOMAIN
		project_domain_name = $ARCA_TEST_PROJECT_DOMAIN
		region_name = $ARCA_TEST_REGION
	CONF
}

# bench_stop_barbican: stops the Barbican this run started (tools/stack.sh
# launched it with setsid: its process group is its own).
bench_stop_barbican() {
	local dir=${ARCA_STACK_DIR:-$ROOT/.stack} pid
	[[ -s $dir/run/barbican.pid ]] || return 0
	pid=$(<"$dir/run/barbican.pid")
	say "stopping Barbican (pid $pid; this run started it)"
	kill -TERM -- "-$pid" 2>/dev/null || stop_pid "$pid"
	for _ in {1..100}; do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$dir/run/barbican.pid"
}

bench_cleanup() {
	local status=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	if declare -F bench_cleanup_hook >/dev/null; then bench_cleanup_hook; fi
	if [[ $DB_CREATED == 1 && $KEEP != 1 ]]; then
		mysql_root -e "DROP DATABASE IF EXISTS $DB" || true
	fi
	if [[ $STARTED_STACK == 1 ]]; then
		say "stopping the stack (this run started it)"
		"$STACK" down || true
	elif [[ $STARTED_BARBICAN == 1 ]]; then
		bench_stop_barbican
	fi
	if [[ $KEEP == 1 ]]; then
		say "kept $TMP and database $DB"
	else
		rm -rf "$TMP"
	fi
	exit "$status"
}

# ------------------------------------------------------------------ summary
# The summary of make bench. Each part (tools/bench.sh, bench-filter.sh,
# bench-pipeline.sh, bench-objectserver.sh, bench-report.sh's short run)
# records its PASS/FAIL/SKIP lines with bench_summary; under
# tools/bench-all.sh (make bench), ARCA_BENCH_SUMMARY names a file they are
# appended to, and bench-all.sh prints them all at the end, with issue 21's
# targets one line each. Run alone, a script keeps them in SUMMARY.
SUMMARY=()

# bench_summary [-t TARGET] LINE...: records summary lines ("PASS ...",
# "FAIL ...", "SKIP ..."); -t tags them with an issue 21 target number
# (1 to 6, as tools/bench-all.sh lists them): "PASS [21.2] ...".
bench_summary() {
	local tag="" line
	if [[ ${1:-} == -t ]]; then
		tag=$2
		shift 2
	fi
	for line; do
		[[ -z $tag ]] || line="${line%% *} [21.$tag] ${line#* }"
		SUMMARY+=("$line")
		if [[ -n ${ARCA_BENCH_SUMMARY:-} ]]; then printf '%s\n' "$line" >>"$ARCA_BENCH_SUMMARY"; fi
	done
}

# bench_verdict_line OK TEXT: "PASS TEXT" when OK is 0, else "FAIL TEXT".
bench_verdict_line() {
	if [[ $1 == 0 ]]; then echo "PASS $2"; else echo "FAIL $2"; fi
}
