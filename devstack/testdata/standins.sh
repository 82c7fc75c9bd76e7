# shellcheck shell=bash
#
# Stand-ins for the DevStack functions devstack/plugin.sh calls, for
# devstack_test.go. They do the real work, the way DevStack's do: iniset
# edits the INI file in place, the Keystone helpers run the openstack CLI
# (admin credentials from the OS_* environment), recreate_database talks to
# MariaDB, run_process starts the command in its own session and records
# its PID under $SERVICE_DIR, stop_process kills that process group.
# sudo is the real one: the test runs the phases as a user with sudo rights,
# as DevStack's STACK_USER.
#
# Written for this test from DevStack's documented behaviour; not DevStack's code.

# shellcheck disable=SC2034  # LINENO and friends are read by callers

function die {
    local line=$1
    shift
    echo "die (plugin.sh line $line): $*" >&2
    exit 1
}

function warn {
    shift
    echo "warning: $*" >&2
}

# install_package package...: installs from $STANDIN_PACKAGES, a directory
# per package whose files are copied into $STANDIN_PREFIX (as apt puts them
# under /usr); a package not there fails, as one the mirrors lack. Each
# call is logged to $STANDIN_LOG.
function install_package {
    local pkg
    for pkg in "$@"; do
        [[ -z ${STANDIN_LOG:-} ]] || echo "install_package $pkg" >>"$STANDIN_LOG"
        if [[ -z ${STANDIN_PACKAGES:-} || -z ${STANDIN_PREFIX:-} || ! -d $STANDIN_PACKAGES/$pkg ]]; then
            echo "install_package $pkg: not available in this test" >&2
            return 1
        fi
        cp -R "$STANDIN_PACKAGES/$pkg/." "$STANDIN_PREFIX/"
    done
}

function echo_summary {
    echo "summary: $*"
}

# ipv6_unquote address: without the brackets of "[::]".
function ipv6_unquote {
    echo "${1//[\[\]]/}"
}

function define_plugin {
    DEFINED_PLUGINS="${DEFINED_PLUGINS:+$DEFINED_PLUGINS,}$1"
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ,${ENABLED_SERVICES}, == *,${service},* ]] && return 0
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        [[ ,${DISABLED_SERVICES}, == *,${service},* ]] && continue
        is_service_enabled "$service" || ENABLED_SERVICES="${ENABLED_SERVICES:+$ENABLED_SERVICES,}$service"
    done
}

# _ini: line-based INI editing like DevStack's sed-based iniset/iniget:
# comments and order are kept; a missing section is appended, a missing
# option goes at the end of its section.
function _ini {
    /usr/bin/python3 - "$@" <<'PY'
import os, re, sys
op, path, section, option = sys.argv[1:5]
value = sys.argv[5] if len(sys.argv) > 5 else ""
lines = open(path).read().splitlines() if os.path.exists(path) else []
head = re.compile(r"^\s*\[([^\]]+)\]\s*$")
opt = re.compile(r"^\s*" + re.escape(option) + r"\s*=")
cur, start, end, at = None, None, None, None
for i, line in enumerate(lines):
    m = head.match(line)
    if m:
        if cur == section and end is None:
            end = i
        cur = m.group(1)
        if cur == section and start is None:
            start = i
        continue
    if cur == section and at is None and opt.match(line):
        at = i
if start is not None and end is None:
    end = len(lines)
if op == "get":
    if at is not None:
        print(lines[at].split("=", 1)[1].strip())
    sys.exit(0)
new = "%s = %s" % (option, value)
if at is not None:
    lines[at] = new
elif start is not None:
    j = end
    while j > start + 1 and not lines[j - 1].strip():
        j -= 1
    lines.insert(j, new)
else:
    if lines and lines[-1].strip():
        lines.append("")
    lines += ["[%s]" % section, new]
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
PY
}

# iniset [-sudo] file section option value
function iniset {
    [[ $1 == -sudo ]] && shift
    _ini set "$@"
}

# iniget file section option
function iniget {
    _ini get "$@"
}

# get_or_create_service name type description: the id of the service of that
# type (openstack service show), created when there is none.
function get_or_create_service {
    openstack service show "$2" -f value -c id 2>/dev/null ||
        openstack service create "$2" --name "$1" --description "$3" -f value -c id
}

function _get_or_create_endpoint_with_interface {
    local id
    id=$(openstack endpoint list --service "$1" --interface "$2" --region "$4" -c ID -f value)
    if [[ -z $id ]]; then
        id=$(openstack endpoint create "$1" "$2" "$3" --region "$4" -f value -c id)
    fi
    echo "$id"
}

# get_or_create_endpoint service region publicurl [adminurl [internalurl]]
function get_or_create_endpoint {
    local public
    public=$(_get_or_create_endpoint_with_interface "$1" public "$3" "$2")
    [[ -n $4 ]] && _get_or_create_endpoint_with_interface "$1" admin "$4" "$2" >/dev/null
    [[ -n $5 ]] && _get_or_create_endpoint_with_interface "$1" internal "$5" "$2" >/dev/null
    echo "$public"
}

# create_service_user name [role]: a user in the service project with the
# service role (and role, if given).
function create_service_user {
    openstack user create --or-show --domain "$SERVICE_DOMAIN_NAME" --password "$SERVICE_PASSWORD" "$1" -f value -c id >/dev/null
    local role
    for role in service ${2:+"$2"}; do
        openstack role add --user "$1" --user-domain "$SERVICE_DOMAIN_NAME" \
            --project "$SERVICE_PROJECT_NAME" --project-domain "$SERVICE_DOMAIN_NAME" "$role"
    done
}

# get_or_create_user name password domain: the user's id, created with
# that password when missing (an existing user keeps its own).
function get_or_create_user {
    openstack user create --or-show --domain "$3" --password "$2" "$1" -f value -c id
}

# get_or_create_role name: the role's id, created when missing.
function get_or_create_role {
    openstack role create --or-show "$1" -f value -c id
}

# get_or_add_user_project_role role user project [user_domain project_domain]:
# grants role to user (name or id) on project; granting it again is no error.
function get_or_add_user_project_role {
    openstack role add "$1" --user "$2" --project "$3" \
        ${4:+--user-domain "$4"} ${5:+--project-domain "$5"}
    openstack role assignment list --role "$1" --user "$2" --project "$3" \
        ${4:+--user-domain "$4"} ${5:+--project-domain "$5"} -f value -c Role
}

function configure_keystoneauth {
    local conf=$1 user=$2 section=$3
    iniset "$conf" "$section" auth_type password
    iniset "$conf" "$section" interface public
    iniset "$conf" "$section" auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" username "$user"
    iniset "$conf" "$section" password "$SERVICE_PASSWORD"
    iniset "$conf" "$section" user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf" "$section" project_name "$SERVICE_PROJECT_NAME"
    iniset "$conf" "$section" project_domain_name "$SERVICE_DOMAIN_NAME"
}

# configure_keystone_authtoken_middleware conf_file admin_user [section]
function configure_keystone_authtoken_middleware {
    local section=${3:-keystone_authtoken}
    configure_keystoneauth "$1" "$2" "$section"
    iniset "$1" "$section" www_authenticate_uri "$KEYSTONE_SERVICE_URI"
    iniset "$1" "$section" cafile "$SSL_BUNDLE_FILE"
    iniset "$1" "$section" memcached_servers "$MEMCACHE_SERVERS"
}

function _mysql {
    mysql -h "$DATABASE_HOST" -P "$DATABASE_PORT" -u "$DATABASE_USER" ${DATABASE_PASSWORD:+"-p$DATABASE_PASSWORD"} "$@"
}

# recreate_database name: dropped and created, utf8, as DevStack's mysql backend.
function recreate_database {
    _mysql -e "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\` CHARACTER SET utf8;"
}

# database_connection_url name: SQLAlchemy's URL, as DevStack writes it.
function database_connection_url {
    echo "mysql+pymysql://$DATABASE_USER${DATABASE_PASSWORD:+:$DATABASE_PASSWORD}@$DATABASE_HOST:$DATABASE_PORT/$1?charset=utf8"
}

# run_process service "command line": started in a session of its own,
# output to $LOGDIR/service.log, PID in $SERVICE_DIR/service.pid.
function run_process {
    is_service_enabled "$1" || return 0
    mkdir -p "$SERVICE_DIR" "$LOGDIR"
    setsid bash -c "exec $2" >"$LOGDIR/$1.log" 2>&1 </dev/null &
    echo $! >"$SERVICE_DIR/$1.pid"
}

# stop_process service: SIGTERM to the process group, SIGKILL after 10 s;
# as DevStack's, only for a service enabled now (a service enabled only
# while stack.sh ran is left running).
function stop_process {
    local pidfile=$SERVICE_DIR/$1.pid pid i
    is_service_enabled "$1" || return 0
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        # Gone, or a zombie nobody has reaped yet.
        [[ $(ps -o stat= -p "$pid" 2>/dev/null) == [^Z]* ]] || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# wait_for_service timeout url: until the URL answers something other than
# 503 (or the connection is refused).
function wait_for_service {
    local deadline=$((SECONDS + $1)) code
    while ((SECONDS < deadline)); do
        code=$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' "$2") || code=000
        if [[ $code != 503 && $code != 000 ]]; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
