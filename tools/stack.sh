#!/usr/bin/env bash
# tools/stack.sh - Arca's real-stack test harness (see tools/README.md).
#
# Brings up, on 127.0.0.1 only, the OpenStack services Arca is tested against:
# MariaDB (the host's, or a private one), Keystone under uwsgi, Swift (proxy with
# keystone auth, account/container/object servers) and, when ARCA_STACK_BARBICAN=1,
# a reference Barbican API for side-by-side benchmarks. Debian 12 packages, no systemd:
# every daemon is started with setsid, its PID kept in $ARCA_STACK_DIR/run, and
# stopped by that PID.
#
# usage: tools/stack.sh install|up|down|restart|status|env|smoke|clean
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${ARCA_STACK_DIR:-$repo_root/.stack}

# ---------------------------------------------------------------- timing/log
t_start=$EPOCHREALTIME
elapsed() { # seconds since $1 (an $EPOCHREALTIME value), 2 decimals
	local a=${1/./} b=${EPOCHREALTIME/./}
	local d=$(((b - a) / 10000))
	printf '%d.%02d' $((d / 100)) $((d % 100))
}
say() { printf '[stack %6ss] %s\n' "$(elapsed "$t_start")" "$*"; }
fail() {
	printf 'stack.sh: error: %s\n' "$*" >&2
	exit 1
}
# phase NAME FUNCTION...: run a step and report how long it took.
phase() {
	local label=$1 t0=$EPOCHREALTIME
	shift
	"$@"
	say "$label: done in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------- packages
# Packages the harness needs (mariadb-server is added only when no server answers on :3306).
# systemd is for systemd-analyze, make lint's check of etc/systemd: never started here.
PACKAGES=(
	curl mariadb-client
	keystone uwsgi uwsgi-plugin-python3 python3-keystonemiddleware
	python3-openstackclient python3-barbicanclient python3-swiftclient
	swift swift-proxy swift-account swift-container swift-object
	barbican-api shellcheck rsync sudo softhsm2 openssl python3-pyeclib systemd
)

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
	done
}

do_install() {
	local want=("${PACKAGES[@]}") todo
	tcp_open 3306 || want+=(mariadb-server)
	mapfile -t todo < <(missing_packages "${want[@]}")
	if ((${#todo[@]} == 0)); then
		say "install: all ${#want[@]} packages already present"
		return 0
	fi
	say "install: missing ${todo[*]}"
	[[ $(id -u) == 0 ]] || fail "install needs root (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	# Maintainer scripts must not start daemons (no systemd here, and we run our own copies).
	local own_policy=
	if ! [[ -x /usr/sbin/policy-rc.d ]] || ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
		if [[ -e /usr/sbin/policy-rc.d ]]; then cp -p /usr/sbin/policy-rc.d "$STATE.policy-rc.d.saved"; fi
		printf '#!/bin/sh\n# installed by arca tools/stack.sh for the duration of apt-get\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	# dbconfig-common and endpoint registration questions: answer "no", we configure ourselves.
	debconf-set-selections <<-'SEL'
		keystone keystone/configure_db boolean false
		keystone keystone/create-admin-tenant boolean false
		keystone keystone/register-endpoint boolean false
		barbican-common barbican/configure_db boolean false
		barbican-common barbican/configure_rabbit boolean false
		barbican-common barbican/configure_ksat boolean false
		barbican-api barbican/configure_api-endpoint boolean false
	SEL
	local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold)
	"${apt[@]}" install --no-install-recommends "${todo[@]}" ||
		{ "${apt[@]}" update -qq && "${apt[@]}" install --no-install-recommends "${todo[@]}"; }
	if [[ -n $own_policy ]]; then
		rm -f /usr/sbin/policy-rc.d
		[[ -e "$STATE.policy-rc.d.saved" ]] && mv "$STATE.policy-rc.d.saved" /usr/sbin/policy-rc.d
	fi
	return 0
}

# ---------------------------------------------------------------- settings
PY3=/usr/bin/python3 # never a pyenv shim that may come first on PATH
# Debian's swift, keystone, openstack and tempest are installed for $PY3: every
# command the harness runs, and every daemon it starts, finds $PY3 first. A pyenv
# shim or a virtualenv ahead of /usr/bin on the caller's PATH would hand them an
# interpreter without their modules, so those entries are dropped.
debian_python_path() {
	local dir kept=() old_ifs=$IFS
	IFS=:
	for dir in $PATH; do
		case $dir in
		*/.pyenv/* | "${PYENV_ROOT:-/nonexistent}"/* | "${VIRTUAL_ENV:-/nonexistent}"/*) ;;
		*) kept+=("$dir") ;;
		esac
	done
	PATH="${kept[*]}"
	IFS=$old_ifs
	unset PYENV_VERSION VIRTUAL_ENV PYTHONPATH PYTHONHOME
	export PATH
}
debian_python_path
HOST=127.0.0.1
KEYSTONE_PORT=${ARCA_STACK_KEYSTONE_PORT:-5000}
KEYSTONE_URL=http://$HOST:$KEYSTONE_PORT/v3
SWIFT_PROXY_PORT=${ARCA_STACK_SWIFT_PORT:-8081}             # internal proxy (DevStack's port)
SWIFT_PUBLIC_PORT=${ARCA_STACK_SWIFT_PUBLIC_PORT:-8081}     # catalog; 8080 once arca-swift-filter exists
OBJECT_PORT=6200 CONTAINER_PORT=6201 ACCOUNT_PORT=6202
OBJECT_SERVER=${ARCA_STACK_OBJECT_SERVER:-swift}            # swift | arca
BARBICAN_PORT=${ARCA_STACK_BARBICAN_PORT:-9312}              # 9311 belongs to arca-api
WANT_BARBICAN=${ARCA_STACK_BARBICAN:-0}
REGION=RegionOne
ADMIN_PASSWORD=${ARCA_STACK_ADMIN_PASSWORD:-ArcaAdmin1}
DEMO_PASSWORD=${ARCA_STACK_DEMO_PASSWORD:-ArcaDemo1}
ALT_PASSWORD=${ARCA_STACK_ALT_PASSWORD:-ArcaAlt1}
ARCA_PASSWORD=${ARCA_STACK_ARCA_PASSWORD:-ArcaService1}
# The object servers' and the filter's own service users (docs/architecture.md):
# only these hold the roles that reach project keys.
ARCA_OBJECT_PASSWORD=${ARCA_STACK_ARCA_OBJECT_PASSWORD:-ArcaObject1}
ARCA_FILTER_PASSWORD=${ARCA_STACK_ARCA_FILTER_PASSWORD:-ArcaFilter1}
SWIFT_PASSWORD=ArcaSwift1 BARBICAN_PASSWORD=ArcaBarbican1
KEYSTONE_DB_PASSWORD=ArcaKeystoneDb1 BARBICAN_DB_PASSWORD=ArcaBarbicanDb1
STOP_TIMEOUT=${ARCA_STACK_STOP_TIMEOUT:-15}

RUN=$STATE/run LOGS=$STATE/log
SWIFT_ETC=$STATE/swift/etc SWIFT_DEVICES=$STATE/swift/node

# Never act with a caller's OpenStack credentials.
for v in "${!OS_@}"; do unset "$v"; done

# ---------------------------------------------------------------- processes
# Each daemon NAME has $RUN/NAME.pid. It runs in its own session (setsid), so its
# process group id equals the recorded PID and workers are stopped together with it.
declare -A PROC_MATCH=(
	[mysql]=mariadbd [keystone]=uwsgi [barbican]=uwsgi
	[swift-account]=swift-account-server [swift-container]=swift-container-server
	[swift-object]=object-server [swift-proxy]=swift-proxy-server
)
ALL_PROCS=(mysql keystone swift-account swift-container swift-object swift-proxy barbican)

pid_of() { # prints the live PID of NAME, or fails
	local f=$RUN/$1.pid pid
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	# guard against a recycled PID: the command line must still look like ours
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "${PROC_MATCH[$1]}" || return 1
	echo "$pid"
}
running() { pid_of "$1" >/dev/null; }

launch() { # launch NAME COMMAND...: detached, output appended to $LOGS/NAME.log
	local name=$1 # (fd 9, the harness lock, is not passed on)
	shift
	setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
	echo "$!" >"$RUN/$name.pid"
}

port_must_be_free() {
	if tcp_open "$1"; then fail "port $1 is in use by something this harness did not start (needed for $2)"; fi
}

wait_until() { # wait_until SECONDS WHAT COMMAND...: poll every 0.1 s
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((EPOCHSECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((EPOCHSECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what (logs: $LOGS)"
		sleep 0.1
	done
}
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

stop_procs() { # TERM the given daemons' process groups together, KILL what outlives the timeout
	local name pid left=() deadline
	for name in "$@"; do
		if pid=$(pid_of "$name"); then
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			left+=("$name:$pid")
		fi
		rm -f "$RUN/$name.pid"
	done
	deadline=$((EPOCHSECONDS + STOP_TIMEOUT))
	while ((${#left[@]})); do
		local still=() e
		for e in "${left[@]}"; do
			if kill -0 "${e#*:}" 2>/dev/null; then still+=("$e"); else say "stopped ${e%%:*} (pid ${e#*:})"; fi
		done
		left=("${still[@]+"${still[@]}"}")
		((${#left[@]})) || break
		if ((EPOCHSECONDS >= deadline)); then
			for e in "${left[@]}"; do
				kill -KILL -- "-${e#*:}" 2>/dev/null || kill -KILL "${e#*:}" 2>/dev/null || true
				say "killed ${e%%:*} (pid ${e#*:}) after ${STOP_TIMEOUT}s"
			done
			break
		fi
		sleep 0.1
	done
}

# ---------------------------------------------------------------- MariaDB
# $STATE/mysql.env remembers which server holds our databases: "host" (the one already
# answering on :3306) or "private" (ours, datadir under $STATE/mysql), and the names of
# this stack's databases and their users. Every stack on a machine may share the host's
# server, so the names carry a tag of the state dir (db_tag): two checkouts' stacks never
# share a keystone database, whose catalog their tests change.
MYSQL_MODE="" MYSQL_PORT=""
KEYSTONE_DB="" BARBICAN_DB=""
load_mysql_choice() {
	[[ -f $STATE/mysql.env ]] || return 1
	# shellcheck source=/dev/null
	. "$STATE/mysql.env"
	# A state dir from before the names were recorded keeps the plain names it was
	# made with, until tools/stack.sh clean.
	KEYSTONE_DB=${KEYSTONE_DB:-keystone} BARBICAN_DB=${BARBICAN_DB:-barbican}
}
# db_tag: 8 hex digits of a hash of the state dir's absolute path.
db_tag() {
	local abs
	abs=$(cd "$STATE" && pwd -P)
	printf '%s' "$abs" | sha256sum | cut -c1-8
}
# The database names double as their users' names (at most 32 characters: MySQL's
# limit for user names; these are 17).
save_mysql_choice() {
	local tag
	tag=$(db_tag)
	KEYSTONE_DB=keystone_$tag BARBICAN_DB=barbican_$tag
	printf 'MYSQL_MODE=%s\nMYSQL_PORT=%s\nKEYSTONE_DB=%s\nBARBICAN_DB=%s\n' \
		"$MYSQL_MODE" "$MYSQL_PORT" "$KEYSTONE_DB" "$BARBICAN_DB" >"$STATE/mysql.env"
}
root_sql() { # root_sql ARGS...: mariadb client as root over TCP
	mariadb --no-defaults -h "$HOST" -P "$MYSQL_PORT" -uroot --connect-timeout=2 "$@"
}
root_answers() { root_sql -e 'SELECT 1' >/dev/null 2>&1; }

choose_mysql() {
	load_mysql_choice && return 0
	if [[ -z ${ARCA_STACK_MYSQL_PORT:-} ]] && MYSQL_PORT=3306 root_answers; then
		MYSQL_MODE=host MYSQL_PORT=3306
	else
		MYSQL_MODE=private
		if [[ -n ${ARCA_STACK_MYSQL_PORT:-} ]]; then
			MYSQL_PORT=$ARCA_STACK_MYSQL_PORT
		elif tcp_open 3306; then MYSQL_PORT=3307; else MYSQL_PORT=3306; fi
	fi
	save_mysql_choice
}

start_private_mysql() {
	local data=$STATE/mysql/data sock=$RUN/mysql.sock
	if [[ ! -d $data/mysql ]]; then
		mkdir -p "$data"
		mariadb-install-db --no-defaults --user=root --datadir="$data" --skip-test-db \
			--auth-root-authentication-method=normal >"$LOGS/mysql-install.log" 2>&1 ||
			fail "mariadb-install-db failed, see $LOGS/mysql-install.log"
	fi
	port_must_be_free "$MYSQL_PORT" "private MariaDB"
	launch mysql /usr/sbin/mariadbd --no-defaults --user=root --datadir="$data" \
		--bind-address="$HOST" --port="$MYSQL_PORT" --socket="$sock" --pid-file="$RUN/mariadbd.pid" \
		--log-error="$LOGS/mysql.err" --skip-log-bin --innodb-buffer-pool-size=64M \
		--innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=0
	wait_until 30 "MariaDB on :$MYSQL_PORT" mariadb-admin --no-defaults --socket="$sock" -uroot ping
	# TCP root login without password, as on the host server (tests connect over TCP)
	mariadb --no-defaults --socket="$sock" -uroot -e \
		"CREATE USER IF NOT EXISTS 'root'@'$HOST'; GRANT ALL ON *.* TO 'root'@'$HOST' WITH GRANT OPTION;"
}

up_mysql() {
	choose_mysql
	if [[ $MYSQL_MODE == host ]]; then
		root_answers || fail "MariaDB on :$MYSQL_PORT (used by this stack) does not accept root without password"
		say "mysql: using the host's MariaDB on :$MYSQL_PORT"
	elif running mysql; then
		say "mysql: private MariaDB already running on :$MYSQL_PORT"
	else
		start_private_mysql
		say "mysql: private MariaDB started on :$MYSQL_PORT (pid $(pid_of mysql))"
	fi
	root_sql <<-SQL
		CREATE DATABASE IF NOT EXISTS \`$KEYSTONE_DB\`;
		CREATE DATABASE IF NOT EXISTS \`$BARBICAN_DB\`;
		CREATE USER IF NOT EXISTS '$KEYSTONE_DB'@'$HOST' IDENTIFIED BY '$KEYSTONE_DB_PASSWORD';
		CREATE USER IF NOT EXISTS '$BARBICAN_DB'@'$HOST' IDENTIFIED BY '$BARBICAN_DB_PASSWORD';
		GRANT ALL PRIVILEGES ON \`$KEYSTONE_DB\`.* TO '$KEYSTONE_DB'@'$HOST';
		GRANT ALL PRIVILEGES ON \`$BARBICAN_DB\`.* TO '$BARBICAN_DB'@'$HOST';
	SQL
}

# ---------------------------------------------------------------- Keystone
keystone_conf() {
	cat <<-CONF
		# generated by tools/stack.sh
		[DEFAULT]
		log_dir = $LOGS
		log_file = keystone-api.log
		[database]
		connection = mysql+pymysql://$KEYSTONE_DB:$KEYSTONE_DB_PASSWORD@$HOST:$MYSQL_PORT/$KEYSTONE_DB
		[token]
		provider = fernet
		expiration = ${ARCA_STACK_TOKEN_EXPIRATION:-14400}
		[fernet_tokens]
		key_repository = $STATE/keystone/fernet-keys
		[fernet_receipts]
		key_repository = $STATE/keystone/fernet-keys
		[credential]
		key_repository = $STATE/keystone/credential-keys
		[identity]
		# cheap hashing: a login costs ~250 ms with the default rounds
		password_hash_rounds = 4
		[cache]
		# per-process memory cache: token validation ~12 ms instead of ~590 ms
		enabled = true
		backend = dogpile.cache.memory
	CONF
}

# Fernet and credential key repositories: key "0" staged, "1" primary, each 32 random
# bytes in URL-safe base64 (what keystone-manage fernet_setup writes, without its ~4 s
# Python start-up).
make_key_repo() { # DIR
	[[ -s $1/1 ]] && return 0
	local n
	mkdir -p "$1"
	chmod 0700 "$1"
	for n in 0 1; do
		(umask 077 && head -c 32 /dev/urandom | base64 | tr '+/' '-_' >"$1/$n")
	done
}

keystone_prepare() { # config, keys and schema (db_sync is idempotent, but ~6 s)
	mkdir -p "$STATE/keystone"
	keystone_conf >"$STATE/keystone/keystone.conf"
	make_key_repo "$STATE/keystone/fernet-keys"
	make_key_repo "$STATE/keystone/credential-keys"
	[[ -f $STATE/keystone/schema-synced ]] && return 0
	phase "keystone: db_sync" keystone_db_sync
}

keystone_db_sync() {
	keystone-manage --config-file "$STATE/keystone/keystone.conf" db_sync >>"$LOGS/keystone-manage.log" 2>&1 ||
		fail "keystone-manage db_sync failed, see $LOGS/keystone-manage.log"
	touch "$STATE/keystone/schema-synced"
}

keystone_bootstrap() { # admin user/project/role, region and identity endpoints (idempotent)
	[[ -f $STATE/keystone/bootstrapped ]] && return 0
	keystone-manage --config-file "$STATE/keystone/keystone.conf" bootstrap \
		--bootstrap-username admin --bootstrap-password "$ADMIN_PASSWORD" \
		--bootstrap-project-name admin --bootstrap-role-name admin \
		--bootstrap-service-name keystone --bootstrap-region-id "$REGION" \
		--bootstrap-admin-url "$KEYSTONE_URL" --bootstrap-internal-url "$KEYSTONE_URL" \
		--bootstrap-public-url "$KEYSTONE_URL" >>"$LOGS/keystone-manage.log" 2>&1 ||
		fail "keystone-manage bootstrap failed, see $LOGS/keystone-manage.log"
	touch "$STATE/keystone/bootstrapped"
}

keystone_launch() {
	if running keystone; then
		say "keystone: already running (pid $(pid_of keystone))"
		return 0
	fi
	port_must_be_free "$KEYSTONE_PORT" keystone
	# One process (the memory cache lives in it), a few threads. uwsgi's http-socket
	# does not do keep-alive: tell clients so, or they reuse dead connections.
	launch keystone uwsgi --plugin python3 --http-socket "$HOST:$KEYSTONE_PORT" \
		--wsgi-file /usr/bin/keystone-wsgi-public --master --processes 1 --threads 8 \
		--enable-threads --lazy-apps --die-on-term --buffer-size 65535 \
		--add-header "Connection: close" \
		--env "OS_KEYSTONE_CONFIG_FILES=$STATE/keystone/keystone.conf"
	say "keystone: launched (pid $(<"$RUN/keystone.pid"))"
}

keystone_ready() {
	wait_until 60 "keystone on :$KEYSTONE_PORT" http_ok "$KEYSTONE_URL"
	say "keystone: answering on $KEYSTONE_URL"
	# provisioning inputs: skip the ~3 s Python run when they did not change
	local stamp
	stamp=$(printf '%s\n' "$ADMIN_PASSWORD" "$DEMO_PASSWORD" "$ALT_PASSWORD" "$ARCA_PASSWORD" \
		"$ARCA_OBJECT_PASSWORD" "$ARCA_FILTER_PASSWORD" "$SWIFT_PUBLIC_PORT" "$KEYSTONE_URL" v2 |
		md5sum | cut -c1-32)
	if [[ -f $STATE/keystone/provisioned && $(<"$STATE/keystone/provisioned") == "$stamp" ]]; then
		say "keystone: projects/users/roles/catalog already provisioned"
		return 0
	fi
	phase "keystone: projects/users/roles/catalog" keystone_provision
	echo "$stamp" >"$STATE/keystone/provisioned"
}

# Creates what the tests expect, only when missing (one Python process: the CLI costs
# over a second per call).
keystone_provision() {
	ARCA_P_URL=$KEYSTONE_URL ARCA_P_ADMIN=$ADMIN_PASSWORD ARCA_P_DEMO=$DEMO_PASSWORD \
		ARCA_P_ALT=$ALT_PASSWORD ARCA_P_ARCA=$ARCA_PASSWORD ARCA_P_SWIFT=$SWIFT_PASSWORD \
		ARCA_P_ARCA_OBJECT=$ARCA_OBJECT_PASSWORD ARCA_P_ARCA_FILTER=$ARCA_FILTER_PASSWORD \
		ARCA_P_BARBICAN=$BARBICAN_PASSWORD ARCA_P_REGION=$REGION \
		ARCA_P_SWIFT_URL="http://$HOST:$SWIFT_PUBLIC_PORT/v1/AUTH_%(project_id)s" \
		"$PY3" - >>"$LOGS/keystone-provision.log" 2>&1 <<-'PYTHON' || fail "provisioning failed, see $LOGS/keystone-provision.log"
		import os
		from keystoneauth1 import session
		from keystoneauth1.identity import v3
		from keystoneclient.v3 import client

		env = lambda k: os.environ['ARCA_P_' + k]
		auth = v3.Password(auth_url=env('URL'), username='admin', password=env('ADMIN'),
		                   project_name='admin', user_domain_id='default',
		                   project_domain_id='default')
		ks = client.Client(session=session.Session(auth=auth))

		def first(found):
		    return found[0] if found else None

		def ensure_role(name):
		    return first(ks.roles.list(name=name)) or ks.roles.create(name)

		def ensure_project(name):
		    return (first(ks.projects.list(name=name, domain='default'))
		            or ks.projects.create(name, 'default', description='arca test stack'))

		def ensure_user(name, password, project):
		    return (first(ks.users.list(name=name, domain='default'))
		            or ks.users.create(name, domain='default', password=password,
		                               default_project=project))

		roles = {n: ensure_role(n) for n in (
		    'member', 'reader', 'admin', 'service', 'creator', 'observer', 'audit',
		    'key-manager:service-admin', 'key-manager:object-server',
		    'key-manager:swift-filter', 'ResellerAdmin')}
		projects = {n: ensure_project(n) for n in ('demo', 'alt', 'service')}

		grants = [('demo', env('DEMO'), 'demo', ['member']),
		          ('alt', env('ALT'), 'alt', ['member']),
		          ('arca', env('ARCA'), 'service', ['admin', 'service']),
		          # arca-object-server: key material of any project, nothing else
		          ('arca-object', env('ARCA_OBJECT'), 'service', ['key-manager:object-server']),
		          # arca-swift-filter: validates tokens (service), learns active key ids
		          ('arca-filter', env('ARCA_FILTER'), 'service', ['service', 'key-manager:swift-filter']),
		          ('swift', env('SWIFT'), 'service', ['admin', 'service']),
		          ('barbican', env('BARBICAN'), 'service', ['admin', 'service'])]
		for user, password, project, role_names in grants:
		    u = ensure_user(user, password, projects[project])
		    for r in role_names:
		        ks.roles.grant(roles[r], user=u, project=projects[project])

		# object-store in the catalog; the key-manager entry belongs to arca-manage register
		svc = first(ks.services.list(type='object-store')) or ks.services.create(
		    'swift', 'object-store', description='Swift (arca test stack)')
		for iface in ('public', 'internal', 'admin'):
		    url = env('SWIFT_URL')
		    if iface == 'admin':
		        url = url.split('/v1/')[0] + '/v1'
		    ep = first(ks.endpoints.list(service=svc, interface=iface, region=env('REGION')))
		    if ep is None:
		        ks.endpoints.create(svc, url, interface=iface, region=env('REGION'))
		    elif ep.url != url:
		        ks.endpoints.update(ep, url=url)
		print('provisioned')
	PYTHON
}

# ---------------------------------------------------------------- Swift
# Service-user block for keystonemiddleware's auth_token (Swift proxy, Barbican).
authtoken_options() { # USER PASSWORD
	cat <<-CONF
		www_authenticate_uri = $KEYSTONE_URL
		auth_url = $KEYSTONE_URL
		auth_type = password
		region_name = $REGION
		user_domain_name = Default
		project_domain_name = Default
		project_name = service
		username = $1
		password = $2
		service_token_roles_required = True
	CONF
}

# Swift takes the hash prefix/suffix (and storage policies) only from /etc/swift/swift.conf;
# swift_dir moves nothing but the rings. Keep an existing file, write one if missing.
ensure_swift_conf() {
	[[ -f /etc/swift/swift.conf ]] && return 0
	mkdir -p /etc/swift
	cat >/etc/swift/swift.conf <<-CONF
		# written by arca tools/stack.sh (test stack)
		[swift-hash]
		swift_hash_path_prefix = $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
		swift_hash_path_suffix = $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
		[storage-policy:0]
		name = Policy-0
		default = yes
	CONF
	say "swift: wrote /etc/swift/swift.conf"
}

# Config for the account, container or (Swift's) object server.
storage_server_conf() { # KIND PORT
	cat <<-CONF
		# generated by tools/stack.sh
		[DEFAULT]
		bind_ip = $HOST
		bind_port = $2
		workers = 0
		swift_dir = $SWIFT_ETC
		devices = $SWIFT_DEVICES
		mount_check = false
		log_name = $1-server
		# no syslog here: a missing socket makes Swift fall back to UDP; -v logs to stdout
		log_address = $RUN/no-syslog
		[pipeline:main]
		pipeline = healthcheck recon $1-server
		[app:$1-server]
		use = egg:swift#$1
		[filter:healthcheck]
		use = egg:swift#healthcheck
		[filter:recon]
		use = egg:swift#recon
		recon_cache_path = $STATE/swift/cache
	CONF
}

proxy_server_conf() {
	cat <<-CONF
		# generated by tools/stack.sh. No Swift encryption middleware: Arca's object
		# server encrypts, and arca-swift-filter will sit in front of this proxy.
		[DEFAULT]
		bind_ip = $HOST
		bind_port = $SWIFT_PROXY_PORT
		workers = 0
		swift_dir = $SWIFT_ETC
		log_name = proxy-server
		log_address = $RUN/no-syslog
		[pipeline:main]
		pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk authtoken keystoneauth copy slo dlo versioned_writes symlink proxy-logging proxy-server
		[app:proxy-server]
		use = egg:swift#proxy
		account_autocreate = true
		[filter:authtoken]
		paste.filter_factory = keystonemiddleware.auth_token:filter_factory
		delay_auth_decision = True
		$(authtoken_options swift "$SWIFT_PASSWORD")
		[filter:keystoneauth]
		use = egg:swift#keystoneauth
		operator_roles = admin, member
		reseller_admin_role = ResellerAdmin
		[filter:catch_errors]
		use = egg:swift#catch_errors
		[filter:gatekeeper]
		use = egg:swift#gatekeeper
		[filter:healthcheck]
		use = egg:swift#healthcheck
		[filter:proxy-logging]
		use = egg:swift#proxy_logging
		[filter:listing_formats]
		use = egg:swift#listing_formats
		[filter:bulk]
		use = egg:swift#bulk
		[filter:copy]
		use = egg:swift#copy
		[filter:slo]
		use = egg:swift#slo
		[filter:dlo]
		use = egg:swift#dlo
		[filter:versioned_writes]
		use = egg:swift#versioned_writes
		allow_versioned_writes = true
		[filter:symlink]
		use = egg:swift#symlink
	CONF
}

# One replica, one zone, one device ($SWIFT_DEVICES/d1), built once. Uses Swift's
# RingBuilder in a single Python process: nine swift-ring-builder calls cost ~9 s.
build_rings() {
	[[ -f $SWIFT_ETC/account.ring.gz && -f $SWIFT_ETC/container.ring.gz && -f $SWIFT_ETC/object.ring.gz ]] &&
		return 0
	ARCA_R_DIR=$SWIFT_ETC ARCA_R_HOST=$HOST \
		ARCA_R_PORTS="account:$ACCOUNT_PORT container:$CONTAINER_PORT object:$OBJECT_PORT" \
		"$PY3" - >>"$LOGS/swift-rings.log" 2>&1 <<-'PYTHON' || fail "building rings failed, see $LOGS/swift-rings.log"
		import os
		from swift.common.ring import RingBuilder

		where = os.environ['ARCA_R_DIR']
		for item in os.environ['ARCA_R_PORTS'].split():
		    kind, port = item.split(':')
		    ring_file = os.path.join(where, kind + '.ring.gz')
		    if os.path.exists(ring_file):
		        continue
		    rb = RingBuilder(10, 1, 1)  # part power 10, 1 replica, min_part_hours 1
		    ip = os.environ['ARCA_R_HOST']
		    rb.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': ip, 'port': int(port),
		                'replication_ip': ip, 'replication_port': int(port),
		                'device': 'd1', 'weight': 100.0, 'meta': ''})
		    rb.rebalance()
		    rb.save(os.path.join(where, kind + '.builder'))
		    rb.get_ring().save(ring_file)
		    print('built', ring_file)
	PYTHON
}

start_swift_server() { # KIND PORT: a Python Swift server (account|container|object|proxy)
	local name=swift-$1
	if running "$name"; then return 0; fi
	port_must_be_free "$2" "$name"
	launch "$name" "/usr/bin/swift-$1-server" "$SWIFT_ETC/$1-server.conf" -v
	STARTED+=("$name")
}

########################################################################
# ARCA OBJECT SERVER HOOK: ARCA_STACK_OBJECT_SERVER=arca starts Arca's Go object server
# instead of Swift's, on the same device ($SWIFT_DEVICES/d1), port and rings, under the
# name "swift-object" (so down/status handle it; its command line contains
# "object-server"). The harness does not run arca-api: point the server at one with
# ARCA_STACK_KEY_SERVICE_URL (default http://127.0.0.1:9311); it authenticates to
# Keystone as the service user arca. Until a key service answers, object PUT/GET
# answer 503 (fail closed); the healthcheck does not need it.
########################################################################
arca_object_server_conf() {
	cat <<-CONF
		# generated by tools/stack.sh (arca-object-server, see etc/arca/object-server.conf.sample)
		[DEFAULT]
		bind_ip = $HOST
		bind_port = $OBJECT_PORT
		swift_dir = $SWIFT_ETC
		devices = $SWIFT_DEVICES
		mount_check = false
		log_address = $RUN/no-syslog
		[app:object-server]
		[object-auditor]
		[object-replicator]
		[object-updater]
		[arca]
		crypto_driver = objcrypt
		crypto_protocol = aes_256_cbc
		key_service_url = ${ARCA_STACK_KEY_SERVICE_URL:-http://$HOST:9311}
		auth_url = $KEYSTONE_URL
		username = arca-object
		password = $ARCA_OBJECT_PASSWORD
		project_name = service
		user_domain_name = Default
		project_domain_name = Default
		region_name = $REGION
	CONF
}

start_arca_object_server() {
	local name=swift-object bin=$repo_root/bin/arca-object-server
	if running "$name"; then return 0; fi
	port_must_be_free "$OBJECT_PORT" "$name"
	command -v go >/dev/null || fail "ARCA_STACK_OBJECT_SERVER=arca needs Go to build cmd/arca-object-server"
	(cd "$repo_root" && go build -o "$bin" ./cmd/arca-object-server) >>"$LOGS/$name.log" 2>&1 ||
		fail "building arca-object-server failed, see $LOGS/$name.log"
	arca_object_server_conf >"$SWIFT_ETC/arca-object-server.conf"
	chmod 600 "$SWIFT_ETC/arca-object-server.conf"
	launch "$name" "$bin" "$SWIFT_ETC/arca-object-server.conf" -v
	STARTED+=("$name")
}

swift_launch() {
	ensure_swift_conf
	mkdir -p "$SWIFT_ETC" "$SWIFT_DEVICES/d1" "$STATE/swift/cache"
	storage_server_conf account "$ACCOUNT_PORT" >"$SWIFT_ETC/account-server.conf"
	storage_server_conf container "$CONTAINER_PORT" >"$SWIFT_ETC/container-server.conf"
	storage_server_conf object "$OBJECT_PORT" >"$SWIFT_ETC/object-server.conf"
	proxy_server_conf >"$SWIFT_ETC/proxy-server.conf"
	phase "swift: rings" build_rings
	STARTED=()
	start_swift_server account "$ACCOUNT_PORT"
	start_swift_server container "$CONTAINER_PORT"
	case $OBJECT_SERVER in
	swift) start_swift_server object "$OBJECT_PORT" ;;
	arca) start_arca_object_server ;;
	*) fail "ARCA_STACK_OBJECT_SERVER must be swift or arca, not $OBJECT_SERVER" ;;
	esac
	start_swift_server proxy "$SWIFT_PROXY_PORT"
	say "swift: launched ${STARTED[*]:-nothing (all were running)}; object server: $OBJECT_SERVER"
}

swift_ready() {
	local port
	for port in "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" "$SWIFT_PROXY_PORT"; do
		wait_until 60 "swift on :$port" http_ok "http://$HOST:$port/healthcheck"
	done
	say "swift: account, container, object and proxy (:$SWIFT_PROXY_PORT) healthy"
}

# ---------------------------------------------------------------- Barbican (benchmark only)
# Reference Barbican 15 for side-by-side numbers; not in the catalog (the key-manager
# entry is arca-api's). Barbican reads ~/.barbican/barbican.conf before /etc/barbican,
# so it runs with HOME=$STATE/barbican/home.
barbican_conf() {
	cat <<-CONF
		# generated by tools/stack.sh
		[DEFAULT]
		sql_connection = mysql+pymysql://$BARBICAN_DB:$BARBICAN_DB_PASSWORD@$HOST:$MYSQL_PORT/$BARBICAN_DB
		db_auto_create = False
		host_href = http://$HOST:$BARBICAN_PORT
		log_dir = $LOGS
		log_file = barbican-api.log
		[secretstore]
		enabled_secretstore_plugins = store_crypto
		[crypto]
		enabled_crypto_plugins = simple_crypto
		[simple_crypto_plugin]
		kek = $(<"$STATE/barbican/kek")
		[keystone_authtoken]
		$(authtoken_options barbican "$BARBICAN_PASSWORD")
		[oslo_policy]
		# member/reader defaults; the legacy ones refuse "secret store" to a plain member
		enforce_new_defaults = True
		enforce_scope = False
	CONF
}

barbican_prepare() {
	local home=$STATE/barbican/home
	mkdir -p "$home/.barbican"
	[[ -s $STATE/barbican/kek ]] || head -c 32 /dev/urandom | base64 >"$STATE/barbican/kek"
	barbican_conf >"$home/.barbican/barbican.conf"
	[[ -f $STATE/barbican/db-upgraded ]] && return 0
	HOME=$home barbican-db-manage upgrade >>"$LOGS/barbican-db-manage.log" 2>&1 ||
		fail "barbican-db-manage failed, see $LOGS/barbican-db-manage.log"
	touch "$STATE/barbican/db-upgraded"
	say "barbican: database upgraded"
}

barbican_launch() {
	local home=$STATE/barbican/home
	if running barbican; then
		say "barbican: already running (pid $(pid_of barbican))"
		return 0
	fi
	port_must_be_free "$BARBICAN_PORT" barbican
	HOME=$home launch barbican uwsgi --plugin python3 --http-socket "$HOST:$BARBICAN_PORT" \
		--paste config:/usr/share/barbican-common/barbican-api-paste.ini --no-default-app \
		--master --processes 1 --threads 8 --enable-threads --lazy-apps --die-on-term \
		--buffer-size 65535 --add-header "Connection: close" --env "HOME=$home"
	say "barbican: launched (pid $(<"$RUN/barbican.pid"))"
}

barbican_ready() {
	wait_until 60 "barbican on :$BARBICAN_PORT" http_ok "http://$HOST:$BARBICAN_PORT/"
	say "barbican: answering on http://$HOST:$BARBICAN_PORT"
}

# ---------------------------------------------------------------- clean
down() { # services first, the database they use last
	local t0=$EPOCHREALTIME
	stop_procs barbican swift-proxy swift-object swift-container swift-account keystone
	stop_procs mysql
	say "down: done in $(elapsed "$t0")s"
}

clean() {
	down
	if load_mysql_choice && [[ $MYSQL_MODE == host ]] && root_answers; then
		root_sql -e "DROP DATABASE IF EXISTS \`$KEYSTONE_DB\`; DROP DATABASE IF EXISTS \`$BARBICAN_DB\`;
			DROP USER IF EXISTS '$KEYSTONE_DB'@'$HOST'; DROP USER IF EXISTS '$BARBICAN_DB'@'$HOST';"
		say "clean: dropped databases $KEYSTONE_DB, $BARBICAN_DB on the host MariaDB"
	fi
	[[ -n $STATE && $STATE != / && -d $STATE ]] && rm -rf -- "$STATE"
	say "clean: removed $STATE"
}

# ---------------------------------------------------------------- smoke
# Proves the stack with the real clients: a demo token from `openstack token issue`,
# then `swift stat` and an object round trip on the internal proxy with that token.
smoke() {
	local out token project url work
	out=$(eval "$(print_openrc demo)" && openstack token issue -f shell -c id -c project_id) ||
		fail "smoke: openstack token issue failed for demo"
	token=$(sed -n 's/^id="\(.*\)"$/\1/p' <<<"$out")
	project=$(sed -n 's/^project_id="\(.*\)"$/\1/p' <<<"$out")
	[[ -n $token && -n $project ]] || fail "smoke: no token in: $out"
	say "smoke: openstack token issue (demo) OK, project $project"
	url=http://$HOST:$SWIFT_PROXY_PORT/v1/AUTH_$project
	local sw=(swift --os-auth-token "$token" --os-storage-url "$url")
	"${sw[@]}" stat >"$LOGS/smoke-swift-stat.txt" || fail "smoke: swift stat failed"
	say "smoke: swift stat on $url OK"
	work=$(mktemp -d "$STATE/smoke.XXXXXX")
	echo "arca smoke $RANDOM$RANDOM" >"$work/probe.txt"
	(cd "$work" && "${sw[@]}" upload arca-smoke probe.txt >/dev/null) || fail "smoke: swift upload failed"
	"${sw[@]}" download arca-smoke probe.txt -o "$work/back.txt" >/dev/null || fail "smoke: swift download failed"
	cmp -s "$work/probe.txt" "$work/back.txt" || fail "smoke: object came back different"
	"${sw[@]}" delete arca-smoke >/dev/null || true
	rm -rf "$work"
	say "smoke: swift upload/download/delete round trip OK"
	if running barbican; then
		local bb=http://$HOST:$BARBICAN_PORT ref
		ref=$(curl -fsS -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
			-d '{"name":"arca-smoke","payload":"smoke-payload","payload_content_type":"text/plain"}' \
			"$bb/v1/secrets" | sed -n 's/.*"secret_ref": *"\([^"]*\)".*/\1/p')
		[[ -n $ref ]] || fail "smoke: barbican secret store failed"
		[[ $(curl -fsS -H "X-Auth-Token: $token" -H 'Accept: text/plain' "$ref/payload") == smoke-payload ]] ||
			fail "smoke: barbican payload differs"
		curl -fsS -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$ref" || true
		say "smoke: barbican (:$BARBICAN_PORT) secret store/get/delete as demo OK"
	fi
}

# ---------------------------------------------------------------- env/status
barbican_on() { [[ $WANT_BARBICAN == 1 ]] || running barbican; }

print_env() {
	choose_mysql_quiet
	local who
	cat <<-ENV
		export ARCA_STACK_DIR='$STATE'
		export ARCA_REQUIRE_STACK=1
		export ARCA_TEST_KEYSTONE_URL='$KEYSTONE_URL'
		export ARCA_TEST_REGION='$REGION'
		export ARCA_TEST_USER_DOMAIN='Default'
		export ARCA_TEST_PROJECT_DOMAIN='Default'
	ENV
	for who in admin:admin:"$ADMIN_PASSWORD" demo:demo:"$DEMO_PASSWORD" alt:alt:"$ALT_PASSWORD" \
		arca:service:"$ARCA_PASSWORD" arca-object:service:"$ARCA_OBJECT_PASSWORD" \
		arca-filter:service:"$ARCA_FILTER_PASSWORD"; do
		local user=${who%%:*} rest=${who#*:}
		local up=${user^^}
		up=${up//-/_}
		printf "export ARCA_TEST_%s_USER='%s'\n" "$up" "$user"
		printf "export ARCA_TEST_%s_PASSWORD='%s'\n" "$up" "${rest#*:}"
		printf "export ARCA_TEST_%s_PROJECT='%s'\n" "$up" "${rest%%:*}"
	done
	cat <<-ENV
		export ARCA_TEST_MYSQL_DSN='root@tcp($HOST:$MYSQL_PORT)/'
		export ARCA_TEST_SWIFT_URL='http://$HOST:$SWIFT_PROXY_PORT'
		export ARCA_TEST_SWIFT_PUBLIC_URL='http://$HOST:$SWIFT_PUBLIC_PORT'
		export ARCA_TEST_SWIFT_DIR='$SWIFT_ETC'
		export ARCA_TEST_SWIFT_DEVICES='$SWIFT_DEVICES'
	ENV
	if barbican_on; then echo "export ARCA_TEST_BARBICAN_URL='http://$HOST:$BARBICAN_PORT'"; fi
}

# like choose_mysql, but never records a choice (env/status may run before up)
choose_mysql_quiet() {
	load_mysql_choice && return 0
	MYSQL_MODE=host MYSQL_PORT=${ARCA_STACK_MYSQL_PORT:-3306}
}

# Every user keystone_provision creates has an openrc.
OPENRC_USERS='admin|demo|alt|arca|arca-object|arca-filter|swift|barbican'
print_openrc() { # openrc for one of $OPENRC_USERS, for the openstack CLI
	local user=$1 project password
	case $user in
	admin) project=admin password=$ADMIN_PASSWORD ;;
	demo) project=demo password=$DEMO_PASSWORD ;;
	alt) project=alt password=$ALT_PASSWORD ;;
	arca) project=service password=$ARCA_PASSWORD ;;
	arca-object) project=service password=$ARCA_OBJECT_PASSWORD ;;
	arca-filter) project=service password=$ARCA_FILTER_PASSWORD ;;
	swift) project=service password=$SWIFT_PASSWORD ;;
	barbican) project=service password=$BARBICAN_PASSWORD ;;
	*) fail "env: unknown user $user ($OPENRC_USERS)" ;;
	esac
	cat <<-RC
		export OS_AUTH_URL='$KEYSTONE_URL' OS_IDENTITY_API_VERSION=3 OS_REGION_NAME='$REGION'
		export OS_USERNAME='$user' OS_PASSWORD='$password' OS_PROJECT_NAME='$project'
		export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_INTERFACE=public
	RC
}

show_status() {
	local name pid
	choose_mysql_quiet
	for name in "${ALL_PROCS[@]}"; do
		if pid=$(pid_of "$name"); then
			printf '%-16s running (pid %s)\n' "$name" "$pid"
		elif [[ $name == mysql && $MYSQL_MODE == host ]]; then
			printf '%-16s host server on :%s (%s)\n' "$name" "$MYSQL_PORT" \
				"$(root_answers && echo answering || echo NOT answering)"
		else
			printf '%-16s stopped\n' "$name"
		fi
	done
}

# ---------------------------------------------------------------- up
# First-run database work (~15 s of DDL for Keystone) runs in the background while
# Swift's rings are built and its servers start; daemons are launched before any wait
# so their Python start-up overlaps.
bg_job() { # bg_job VAR FUNCTION: run FUNCTION in a subshell, its PID into VAR
	"$2" &
	printf -v "$1" '%s' "$!"
}
bg_wait() { # bg_wait PID WHAT
	[[ -z $1 ]] && return 0
	wait "$1" || fail "$2 failed (logs: $LOGS)"
}

up() {
	mkdir -p "$RUN" "$LOGS"
	phase mysql up_mysql
	local ks_job="" bb_job=""
	bg_job ks_job keystone_prepare
	if [[ $WANT_BARBICAN == 1 ]]; then bg_job bb_job barbican_prepare; fi
	swift_launch
	bg_wait "$ks_job" "keystone db_sync"
	keystone_launch
	bg_wait "$bb_job" "barbican db upgrade"
	if [[ $WANT_BARBICAN == 1 ]]; then barbican_launch; fi
	# bootstrap writes rows only; it can run while uwsgi loads Keystone (and Barbican)
	phase "keystone: bootstrap" keystone_bootstrap
	phase "swift: wait healthy" swift_ready
	phase "keystone: wait ready" keystone_ready
	if [[ $WANT_BARBICAN == 1 ]]; then phase "barbican: wait ready" barbican_ready; fi
}

# up/down/clean/restart from two shells at once (parallel make targets) take turns
take_lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	flock -w 300 9 || fail "another tools/stack.sh holds $STATE/.lock"
}

case ${1:-} in
up | down | clean) take_lock ;;
esac

case ${1:-} in
install) phase install do_install ;;
up) phase up up ;;
down) down ;;
status) show_status ;;
clean) clean ;;
restart)
	"$0" down
	exec "$0" up
	;;
smoke) phase smoke smoke ;;
env) if (($# > 1)); then print_openrc "$2"; else print_env; fi ;;
help | -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
*) fail "usage: $0 install|up|down|restart|status|env [$OPENRC_USERS]|smoke|clean (see tools/README.md)" ;;
esac
