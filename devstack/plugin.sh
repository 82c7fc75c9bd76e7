#!/usr/bin/env bash
# shellcheck shell=bash
#
# DevStack plugin for Arca: builds the Go binaries, configures and registers
# arca-api as the key-manager service, puts arca in the Swift proxy's pipeline
# (or arca-swift-filter in front of the proxy: ARCA_SWIFT_SHAPE) and
# arca-object-server behind it.
#
# DevStack sources this file with the phase as arguments ("stack
# pre-install", "stack install", "stack post-config", "stack extra", "stack
# test-config", "unstack", "clean"); every "stack" phase first refuses
# set-ups the plugin does not support. iniset, iniget, die, echo_summary,
# ipv6_unquote, run_process, stop_process, wait_for_service,
# is_service_enabled, enable_service, install_package, create_service_user, get_or_create_user,
# get_or_create_role, get_or_add_user_project_role,
# configure_keystone_authtoken_middleware, get_or_create_service,
# get_or_create_endpoint, recreate_database and database_connection_url
# come from DevStack's functions, functions-common and lib/.
#
# Variables (defaults in settings) read from DevStack: DEST, DATA_DIR,
# STACK_USER, SERVICE_HOST, SERVICE_PASSWORD, SERVICE_PROJECT_NAME,
# SERVICE_DOMAIN_NAME, KEYSTONE_SERVICE_URI, REGION_NAME, SWIFT_CONF_DIR,
# SWIFT_STORAGE_IPS, SWIFT_BIN_DIR, SWIFT_REPLICAS, SWIFT_USE_MOD_WSGI,
# DATABASE_TYPE, OFFLINE, NOVA_CONF, CINDER_CONF, GLANCE_API_CONF,
# TEMPEST_CONFIG.

# Saves and turns off xtrace, as DevStack's plugins do: configs carry passwords.
_XTRACE_ARCA=$(set +o | grep xtrace)
set +o xtrace

# The Swift side of both shapes (ARCA_SWIFT_SHAPE): configure_arca_swift_filter,
# start_arca_swift_filter, _arca_wait_filter, _arca_swift_pth.
# shellcheck source=devstack/lib/swift-filter
source "$(dirname "${BASH_SOURCE[0]}")/lib/swift-filter"

# Erasure coding (ARCA_EC_POLICY and the EC policies of swift.conf):
# _arca_check_ec_settings, _arca_ring_file, _arca_ring_devs,
# _arca_object_ports, _arca_check_pyeclib, _arca_check_ec_policy,
# _arca_add_ec_policy.
# shellcheck source=devstack/lib/swift-ec
source "$(dirname "${BASH_SOURCE[0]}")/lib/swift-ec"

# --- install ---------------------------------------------------------------

# Go for the build. Go >= 1.21 fetches the toolchain go.mod (or
# ARCA_GOTOOLCHAIN) names by itself through the module proxy; an older go
# (Debian 12's golang-go is 1.19, Ubuntu 22.04's 1.18) cannot, and cannot
# read go.mod's "go 1.26.0" either. So: ARCA_GO when it is new enough, else
# golang-go from the distro, else a Go toolchain bootstrapped with the old
# go. _arca_find_go sets ARCA_BUILD_GO to the go command install_arca runs.

# _arca_go_minor GO: the minor release of that go command (19 for go1.19.8),
# nothing when it is missing or does not say.
function _arca_go_minor {
    local version
    version=$(GOTOOLCHAIN=local "$1" version 2>/dev/null | awk '$1 == "go" && $2 == "version" {print $3}') || true
    [[ $version == go1.* ]] || return 0
    version=${version#go1.}
    echo "${version%%[!0-9]*}"
}

# _arca_go_version: the Go release to bootstrap: ARCA_GO_VERSION, else the
# toolchain line of go.mod, else its go line (go 1.26 is release 1.26.0).
function _arca_go_version {
    local version=$ARCA_GO_VERSION
    if [[ -z $version ]]; then
        version=$(awk '$1 == "toolchain" {print $2; exit}' "$ARCA_DIR/go.mod")
    fi
    if [[ -z $version ]]; then
        version=$(awk '$1 == "go" {print $2; exit}' "$ARCA_DIR/go.mod")
    fi
    version=${version#go}
    if [[ $version =~ ^1\.[0-9]+$ ]]; then
        version=$version.0
    fi
    [[ $version =~ ^1\.[0-9]+(\.[0-9]+|rc[0-9]+)$ ]] || return 1
    echo "$version"
}

# _arca_bootstrap_go OLD_GO: installs the Go release _arca_go_version names
# under ARCA_GO_DIR and sets ARCA_BUILD_GO to it. OLD_GO downloads it the way
# Go >= 1.21's GOTOOLCHAIN does: the module golang.org/toolchain from the
# module proxy (GOPROXY), checked against the checksum database (GOSUMDB).
# Module zips keep no file modes: the commands are made executable again.
function _arca_bootstrap_go {
    local old=$1 version goos goarch module root tmp
    version=$(_arca_go_version) ||
        die $LINENO "no Go release to bootstrap: set ARCA_GO_VERSION (e.g. 1.26.8) or give $ARCA_DIR/go.mod a go line"
    root=$ARCA_GO_DIR/go$version
    if [[ $(GOTOOLCHAIN=local "$root/bin/go" env GOVERSION 2>/dev/null) == "go$version" ]]; then
        echo "Using Go $version from $root"
        ARCA_BUILD_GO=$root/bin/go
        return 0
    fi
    goos=$(GOTOOLCHAIN=local "$old" env GOOS) || die $LINENO "$old env GOOS failed"
    goarch=$(GOTOOLCHAIN=local "$old" env GOARCH) || die $LINENO "$old env GOARCH failed"
    module=golang.org/toolchain@v0.0.1-go$version.$goos-$goarch
    echo "Bootstrapping Go $version into $root: $old mod download $module"
    mkdir -p "$ARCA_GO_DIR"
    tmp=$(mktemp -d "$ARCA_GO_DIR/.download.XXXXXX") || die $LINENO "mktemp in $ARCA_GO_DIR failed"
    # Outside any module (ours says "go 1.26.0", which Go < 1.21 rejects),
    # with a private module cache that stays writable, to move it out.
    if ! (cd "$tmp" && GO111MODULE=on GOMODCACHE=$tmp/mod "$old" mod download -modcacherw "$module"); then
        chmod -R u+w "$tmp" && rm -rf "$tmp"
        die $LINENO "$old could not download $module through GOPROXY=$(GOTOOLCHAIN=local "$old" env GOPROXY); set ARCA_GO to a Go >= 1.21"
    fi
    rm -rf "$root"
    mv "$tmp/mod/$module" "$root"
    chmod -R u+w "$tmp" && rm -rf "$tmp"
    # As Go's own toolchain switch does: pkg/tool, bin and lib's scripts.
    find "$root/pkg/tool" "$root/bin" -type f -exec chmod a+x {} +
    if [[ -d $root/lib ]]; then
        find "$root/lib" -type f -name '*.sh' -exec chmod a+x {} +
    fi
    [[ $(GOTOOLCHAIN=local "$root/bin/go" env GOVERSION) == "go$version" ]] ||
        die $LINENO "$root/bin/go is not Go $version"
    ARCA_BUILD_GO=$root/bin/go
}

function _arca_find_go {
    local minor
    minor=$(_arca_go_minor "$ARCA_GO")
    if [[ -z $minor ]] || (( minor < 21 )); then
        # Offline, DevStack's install_package installs nothing and no Go
        # can be downloaded: only a Go >= 1.21 already there builds.
        if [[ ${OFFLINE:-False} == True ]]; then
            die $LINENO "OFFLINE=True and $ARCA_GO is ${minor:+Go 1.$minor, }not a Go >= 1.21: set ARCA_GO to one installed here"
        fi
        if [[ -n $minor ]]; then
            echo "$ARCA_GO is Go 1.$minor, older than 1.21: installing golang-go"
        else
            echo "No Go compiler ($ARCA_GO): installing golang-go"
        fi
        install_package golang-go || warn $LINENO "installing golang-go failed"
        hash -r
        minor=$(_arca_go_minor "$ARCA_GO")
    fi
    [[ -n $minor ]] || die $LINENO "no Go compiler ($ARCA_GO), even after installing golang-go; set ARCA_GO"
    if (( minor >= 21 )); then
        ARCA_BUILD_GO=$(command -v "$ARCA_GO")
        return 0
    fi
    _arca_bootstrap_go "$(command -v "$ARCA_GO")"
}

# _arca_binaries: the binaries the enabled services run.
function _arca_binaries {
    ! is_service_enabled arca-api || echo arca-api arca-manage
    ! is_service_enabled arca-swift-filter || echo arca-swift-filter
    ! is_service_enabled arca-object || echo arca-object-server
}

# _arca_check_binaries: with ARCA_BUILD=False, ARCA_BIN_DIR holds the
# binaries (a package's, or built elsewhere): no Go, nothing built.
function _arca_check_binaries {
    local b
    for b in $(_arca_binaries); do
        [[ -x $ARCA_BIN_DIR/$b ]] ||
            die $LINENO "ARCA_BUILD=$ARCA_BUILD and no executable $ARCA_BIN_DIR/$b: install Arca's binaries into ARCA_BIN_DIR or set ARCA_BUILD=True"
    done
    echo "Using Arca's binaries in $ARCA_BIN_DIR (ARCA_BUILD=$ARCA_BUILD)"
}

function install_arca {
    if [[ $ARCA_BUILD != True ]]; then
        _arca_check_binaries
        return 0
    fi
    _arca_find_go
    mkdir -p "$ARCA_BIN_DIR"
    local toolchain=$ARCA_GOTOOLCHAIN proxy offline=""
    proxy=$(GOTOOLCHAIN=local "$ARCA_BUILD_GO" env GOPROXY)
    if [[ ${OFFLINE:-False} == True ]]; then
        # No toolchain or module download: this Go and the module cache.
        toolchain=local proxy=off
        offline=" (OFFLINE=True: no downloads; the modules must be in $(GOTOOLCHAIN=local "$ARCA_BUILD_GO" env GOMODCACHE))"
    fi
    echo "Building Arca with $ARCA_BUILD_GO (GOTOOLCHAIN=$toolchain GOPROXY=$proxy)"
    (cd "$ARCA_DIR" && GOTOOLCHAIN=$toolchain GOPROXY=$proxy "$ARCA_BUILD_GO" build -o "$ARCA_BIN_DIR/" ./cmd/...) ||
        die $LINENO "go build ./cmd/... in $ARCA_DIR with $ARCA_BUILD_GO failed$offline"
}

# --- checks ----------------------------------------------------------------

# _arca_check_supported dies, before anything is built or configured, on a
# DevStack set-up the plugin cannot serve, naming the setting at fault.
function _arca_check_supported {
    local swift_side=False
    if is_service_enabled arca-swift-filter || is_service_enabled arca-object; then
        swift_side=True
    fi
    # lib/swift puts Apache's TLS proxy on Swift's public port and lib/tls
    # one in front of every API: the filter's port, and a key-manager URL
    # the filter and object servers would reach over TLS with DevStack's CA.
    if [[ $ARCA_SWIFT_SHAPE != pipeline && $ARCA_SWIFT_SHAPE != proxy ]]; then
        die $LINENO "ARCA_SWIFT_SHAPE=$ARCA_SWIFT_SHAPE: set pipeline (arca in the Swift proxy's pipeline) or proxy (arca-swift-filter in front of it)"
    fi
    if is_service_enabled tls-proxy; then
        die $LINENO "tls-proxy is enabled: the Arca plugin does not support DevStack's TLS proxy; disable_service tls-proxy (or disable the arca-* services)"
    fi
    if is_service_enabled arca-swift-filter && ! is_service_enabled s-proxy; then
        die $LINENO "arca-swift-filter is enabled without s-proxy: it fronts Swift's proxy on this node; enable s-proxy or disable_service arca-swift-filter"
    fi
    if is_service_enabled arca-object && ! is_service_enabled s-object; then
        die $LINENO "arca-object is enabled without s-object: it serves Swift's object nodes of this host; enable s-object or disable_service arca-object"
    fi
    if [[ -n $ARCA_EC_POLICY ]]; then
        _arca_check_ec_settings
    fi
    if [[ $swift_side == True && $SWIFT_USE_MOD_WSGI == True ]]; then
        die $LINENO "SWIFT_USE_MOD_WSGI=True: Swift's servers run in Apache, whose ports the plugin cannot move; set SWIFT_USE_MOD_WSGI=False"
    fi
    if ! is_service_enabled arca-api; then
        return 0
    fi
    if is_service_enabled barbican barbican-svc; then
        die $LINENO "Barbican is enabled beside arca-api: both would be the key-manager service; disable barbican or arca-api"
    fi
    if [[ ${DATABASE_TYPE:-mysql} != mysql ]]; then
        die $LINENO "DATABASE_TYPE=$DATABASE_TYPE: arca-api supports MySQL/MariaDB only; set DATABASE_TYPE=mysql"
    fi
    # A subnode has no database of its own: recreate_database would drop
    # the controller's.
    if ! is_service_enabled mysql; then
        die $LINENO "arca-api is enabled on a node without the mysql service (a subnode?): run arca-api on the controller only (disable_service arca-api here)"
    fi
}

# _arca_url_host HOST: HOST as a URL's host part: an IPv6 address in
# brackets (whether or not it came with them), anything else as it is.
function _arca_url_host {
    local host
    host=$(ipv6_unquote "$1")
    [[ $host != *:* ]] || host="[$host]"
    echo "$host"
}

# _arca_health_url HOST PORT: the /healthcheck URL of a server bound to
# HOST: a wildcard address is reached through loopback of its family.
function _arca_health_url {
    local host
    host=$(ipv6_unquote "$1")
    case $host in
        "" | 0.0.0.0) host=127.0.0.1 ;;
        ::) host=::1 ;;
    esac
    echo "http://$(_arca_url_host "$host"):$2/healthcheck"
}

# _arca_wait NAME URL: dies unless URL answers within ARCA_SERVICE_TIMEOUT.
function _arca_wait {
    wait_for_service "$ARCA_SERVICE_TIMEOUT" "$2" || die $LINENO "$1 did not answer at $2"
}

function _arca_ring_builder {
    "${SWIFT_BIN_DIR:+$SWIFT_BIN_DIR/}swift-ring-builder" "$@"
}

# --- post-config -----------------------------------------------------------

function _arca_manage {
    "$ARCA_BIN_DIR/arca-manage" --config-file "$ARCA_CONF" "$@"
}

function _arca_conf_dir {
    if [[ ! -d $ARCA_CONF_DIR ]]; then
        sudo install -d -o "$STACK_USER" -m 0750 "$ARCA_CONF_DIR"
    fi
    mkdir -p "$ARCA_DATA_DIR"
}

# _arca_private_conf FILE: FILE exists with mode 0600, owned by the DevStack
# user running the plugin, before a password goes into it: every Arca
# service refuses a credential file that group or others can read.
function _arca_private_conf {
    [[ -f $1 ]] || install -m 0600 /dev/null "$1"
    chmod 0600 "$1"
}

# _arca_authtoken CONF USER: Keystone credentials of USER for CONF's
# authtoken section.
function _arca_authtoken {
    local conf=$1 user=$2
    configure_keystone_authtoken_middleware "$conf" "$user"
    iniset "$conf" keystone_authtoken region_name "$REGION_NAME"
}

# _arca_service_user NAME ROLE...: the Keystone user NAME (password
# SERVICE_PASSWORD) in the service project, granted the roles given and no
# other. DevStack's create_service_user grants "service" as well, which
# lets a token validate other tokens: the object servers need none of it.
function _arca_service_user {
    local name=$1 role user
    shift
    user=$(get_or_create_user "$name" "$SERVICE_PASSWORD" "$SERVICE_DOMAIN_NAME")
    [[ -n $user ]] || die $LINENO "no Keystone user $name"
    for role in "$@"; do
        get_or_create_role "$role" >/dev/null
        get_or_add_user_project_role "$role" "$user" "$SERVICE_PROJECT_NAME" \
            "$SERVICE_DOMAIN_NAME" "$SERVICE_DOMAIN_NAME" >/dev/null ||
            die $LINENO "granting $role to $name in $SERVICE_PROJECT_NAME failed"
    done
}

# _arca_object_trusted_networks: the object servers' trusted_networks.
function _arca_object_trusted_networks {
    if [[ -n $ARCA_OBJECT_TRUSTED_NETWORKS ]]; then
        echo "$ARCA_OBJECT_TRUSTED_NETWORKS"
        return
    fi
    local nets="127.0.0.0/8, ::1" ip
    for ip in $SERVICE_HOST ${SWIFT_STORAGE_IPS//,/ }; do
        ip=$(ipv6_unquote "$ip")
        [[ ", $nets, " == *", $ip, "* ]] || nets+=", $ip"
    done
    echo "$nets"
}

function configure_arca_api {
    _arca_conf_dir
    # The database password and the service user's.
    _arca_private_conf "$ARCA_CONF"
    iniset "$ARCA_CONF" DEFAULT debug "$ARCA_DEBUG"
    iniset "$ARCA_CONF" DEFAULT bind_host "$ARCA_API_LISTEN_ADDRESS"
    iniset "$ARCA_CONF" DEFAULT bind_port "$ARCA_API_PORT"
    iniset "$ARCA_CONF" DEFAULT host_href "$ARCA_API_URL"
    iniset "$ARCA_CONF" DEFAULT auth_strategy keystone
    iniset "$ARCA_CONF" database connection "$(database_connection_url "$ARCA_DB_NAME")"
    iniset "$ARCA_CONF" crypto master_key_file "$ARCA_MASTER_KEY_FILE"
    iniset "$ARCA_CONF" crypto crypto_protocol "$ARCA_CRYPTO_PROTOCOL"
    iniset "$ARCA_CONF" project_keys active_key_cache_ttl "$((ARCA_ACTIVE_KEY_CACHE_TTL + ARCA_ACTIVE_KEY_CACHE_MARGIN))"
    iniset "$ARCA_CONF" oslo_policy enforce_new_defaults true
    _arca_authtoken "$ARCA_CONF" "$ARCA_SERVICE_USER"

    create_service_user "$ARCA_SERVICE_USER"
    local service_id
    service_id=$(get_or_create_service "$ARCA_SERVICE_NAME" key-manager "Arca key manager (Barbican v1 API)")
    [[ -n $service_id ]] || die $LINENO "no key-manager service in Keystone"
    # Unversioned: clients (gophercloud, barbicanclient) append v1/.
    get_or_create_endpoint "$service_id" "$ARCA_REGION_NAME" "$ARCA_API_URL" "$ARCA_API_URL" "$ARCA_API_URL" >/dev/null

    recreate_database "$ARCA_DB_NAME"
    if [[ ! -f $ARCA_MASTER_KEY_FILE ]]; then
        _arca_manage kek rotate || die $LINENO "arca-manage kek rotate failed"
    fi
    _arca_manage db upgrade || die $LINENO "arca-manage db upgrade failed"
}

function start_arca_api {
    run_process arca-api "$ARCA_BIN_DIR/arca-api --config-file $ARCA_CONF"
    _arca_wait arca-api "$(_arca_health_url "$ARCA_API_LISTEN_ADDRESS" "$ARCA_API_PORT")"
}

# Nova, Cinder and Glance keep their keys in the key-manager service (Arca
# here), as lib/barbican configures them.
function configure_arca_consumers {
    if is_service_enabled n-cpu; then
        iniset "$NOVA_CONF" key_manager backend barbican
    fi
    if is_service_enabled c-vol; then
        iniset "$CINDER_CONF" key_manager backend barbican
    fi
    if is_service_enabled g-api; then
        iniset "$GLANCE_API_CONF" key_manager backend barbican
    fi
}

# _arca_object_nodes prints "N CONF" for each Swift object node: DevStack's
# object-server/N.conf files, or a single object-server.conf as node 1.
function _arca_object_nodes {
    local conf
    if [[ -d $SWIFT_CONF_DIR/object-server ]]; then
        for conf in "$SWIFT_CONF_DIR"/object-server/[0-9]*.conf; do
            [[ -f $conf ]] && echo "$(basename "$conf" .conf) $conf"
        done
    elif [[ -f $SWIFT_CONF_DIR/object-server.conf ]]; then
        echo "1 $SWIFT_CONF_DIR/object-server.conf"
    fi
}

# _arca_object_service N: the DevStack service name of node N's server
# (settings enables arca-object-2 .. arca-object-SWIFT_REPLICAS).
function _arca_object_service {
    if [[ $1 == 1 ]]; then
        echo arca-object
    else
        echo "arca-object-$1"
    fi
}

function _arca_object_port {
    echo $((ARCA_OBJECT_PORT_BASE + 10 * ($1 - 1)))
}

# _arca_object_rings prints "INDEX TYPE NAME" of each storage policy in
# swift.conf (policy 0 when it names none), TYPE replication or
# erasure_coding. It dies on a policy arca-object-server cannot serve
# (_arca_check_ec_policy).
function _arca_object_rings {
    local swift_conf=$SWIFT_CONF_DIR/swift.conf idx name type found=False
    if [[ -f $swift_conf ]]; then
        while read -r idx; do
            name=$(iniget "$swift_conf" "storage-policy:$idx" name)
            name=${name:-Policy-$idx}
            type=$(iniget "$swift_conf" "storage-policy:$idx" policy_type)
            type=${type:-replication}
            case $type in
                replication) ;;
                erasure_coding) _arca_check_ec_policy "$idx" "$name" ;;
                *) die $LINENO "storage policy $idx ($name) in $swift_conf is of policy_type $type: arca-object-server serves replication and erasure_coding; remove it or disable_service arca-object" ;;
            esac
            found=True
            echo "$idx $type $name"
        done < <(sed -n 's/^[[:space:]]*\[storage-policy:\([0-9][0-9]*\)\][[:space:]]*$/\1/p' "$swift_conf")
    fi
    [[ $found == True ]] || echo "0 replication Policy-0"
}

# _arca_repoint_ring INDEX TYPE NAME: the ring of that policy names
# arca-object-server's port for each node's devices. For a replicated
# policy only the service port moves: the replication port stays Swift's
# object server's, so Swift's replicator finds its devices and the rsync
# modules (object{replication_port}) of rsyncd.conf still match. An
# erasure-coded policy's replication port moves too: Swift's reconstructor
# sends fragments over SSYNC there, and Swift's object server would store
# a rebuilt (plaintext) fragment as it came. A ring without a builder
# (DevStack copies object.ring.gz to object-1.ring.gz) gets one from the
# ring first.
function _arca_repoint_ring {
    local idx=$1 type=$2 name=$3 base=object n conf old new
    [[ $idx == 0 ]] || base=object-$idx
    local builder=$SWIFT_CONF_DIR/$base.builder ring=$SWIFT_CONF_DIR/$base.ring.gz
    if [[ ! -f $builder ]]; then
        [[ -f $ring ]] || die $LINENO "storage policy $idx ($name) has no ring: neither $builder nor $ring"
        _arca_ring_builder "$ring" write_builder >/dev/null ||
            die $LINENO "swift-ring-builder $ring write_builder failed (policy $idx, $name)"
    fi
    while read -r n conf; do
        old=$(iniget "$conf" DEFAULT bind_port)
        new=$(_arca_object_port "$n")
        [[ -n $old && $old != "$new" ]] || continue
        if _arca_ring_builder "$builder" search --port "$old" >/dev/null 2>&1; then
            _arca_ring_builder "$builder" set_info --port "$old" --change-port "$new" --yes >/dev/null ||
                die $LINENO "swift-ring-builder set_info on $builder failed (policy $idx, $name)"
        fi
        if [[ $type == erasure_coding ]] && _arca_ring_builder "$builder" search --replication-port "$old" >/dev/null 2>&1; then
            _arca_ring_builder "$builder" set_info --replication-port "$old" --change-replication-port "$new" --yes >/dev/null ||
                die $LINENO "swift-ring-builder set_info on $builder failed (policy $idx, $name)"
        fi
    done < <(_arca_object_nodes)
    # write_ring exits 1 (a warning) when nothing changed since the last rebalance.
    local rc=0
    _arca_ring_builder "$builder" write_ring >/dev/null || rc=$?
    (( rc <= 1 )) || die $LINENO "swift-ring-builder write_ring on $builder failed (policy $idx, $name)"
}

# Each node's arca-object-server reads Swift's node config, then an overlay
# with its own port and the [arca] section; every object ring's devices of
# that node move to the new port (write_ring: no partition moves).
# The overlay holds the object servers' user's password (mode 0600);
# Swift's node config, which holds none, is left as it is.
function configure_arca_object {
    local n conf overlay nodes=0 trusted rings idx type name
    # First: _arca_object_rings dies on a policy it cannot serve, and
    # pyeclib must make ARCA_EC_POLICY's scheme.
    rings=$(_arca_object_rings) || exit 1
    if [[ -n $ARCA_EC_POLICY ]]; then
        _arca_check_pyeclib "$ARCA_EC_TYPE" "$ARCA_EC_DATA_FRAGMENTS" "$ARCA_EC_PARITY_FRAGMENTS" "ARCA_EC_POLICY=$ARCA_EC_POLICY"
    fi
    _arca_conf_dir
    _arca_service_user "$ARCA_OBJECT_SERVICE_USER" "$ARCA_OBJECT_SERVER_ROLE"
    trusted=$(_arca_object_trusted_networks)
    while read -r n conf; do
        nodes=$((nodes + 1))
        is_service_enabled "$(_arca_object_service "$n")" ||
            die $LINENO "Swift object node $n ($conf) has no $(_arca_object_service "$n") service: settings enables one per node up to SWIFT_REPLICAS=${SWIFT_REPLICAS:-1}"
        overlay=$ARCA_CONF_DIR/object-server-$n.conf
        _arca_private_conf "$overlay"
        iniset "$overlay" DEFAULT bind_port "$(_arca_object_port "$n")"
        if [[ -f $SWIFT_CONF_DIR/swift.conf ]]; then
            iniset "$overlay" DEFAULT swift_conf "$SWIFT_CONF_DIR/swift.conf"
        fi
        iniset "$overlay" arca crypto_driver objcrypt
        iniset "$overlay" arca crypto_protocol "$ARCA_CRYPTO_PROTOCOL"
        iniset "$overlay" arca reseller_prefixes "${ARCA_RESELLER_PREFIX%_}_"
        iniset "$overlay" arca key_service_url "$ARCA_API_URL"
        iniset "$overlay" arca auth_url "$KEYSTONE_SERVICE_URI"
        iniset "$overlay" arca trusted_networks "$trusted"
        iniset "$overlay" arca username "$ARCA_OBJECT_SERVICE_USER"
        iniset "$overlay" arca password "$SERVICE_PASSWORD"
        iniset "$overlay" arca user_domain_name "$SERVICE_DOMAIN_NAME"
        iniset "$overlay" arca project_name "$SERVICE_PROJECT_NAME"
        iniset "$overlay" arca project_domain_name "$SERVICE_DOMAIN_NAME"
        iniset "$overlay" arca region_name "$ARCA_REGION_NAME"
        iniset "$overlay" arca active_key_cache_ttl "$ARCA_ACTIVE_KEY_CACHE_TTL"
        iniset "$overlay" arca key_cache_ttl "$ARCA_OBJECT_KEY_CACHE_TTL"
    done < <(_arca_object_nodes)
    (( nodes > 0 )) || die $LINENO "no Swift object server configuration under $SWIFT_CONF_DIR"
    while read -r idx type name; do
        _arca_repoint_ring "$idx" "$type" "$name"
    done <<<"$rings"
    if [[ -n $ARCA_EC_POLICY ]]; then
        _arca_add_ec_policy
    fi
}

function start_arca_object {
    local n conf bind
    while read -r n conf; do
        bind=$(iniget "$conf" DEFAULT bind_ip)
        run_process "$(_arca_object_service "$n")" \
            "$ARCA_BIN_DIR/arca-object-server --config-file $conf --config-file $ARCA_CONF_DIR/object-server-$n.conf"
        _arca_wait "arca-object-server $n" "$(_arca_health_url "$bind" "$(_arca_object_port "$n")")"
    done < <(_arca_object_nodes)
}

# --- extra / test-config ---------------------------------------------------

# Everything started in post-config, before Swift and Glance: it is still up.
function check_arca {
    if is_service_enabled arca-api; then
        _arca_wait arca-api "$(_arca_health_url "$ARCA_API_LISTEN_ADDRESS" "$ARCA_API_PORT")"
    fi
    if is_service_enabled arca-object; then
        local n conf
        while read -r n conf; do
            _arca_wait "arca-object-server $n" "$(_arca_health_url "$(iniget "$conf" DEFAULT bind_ip)" "$(_arca_object_port "$n")")"
        done < <(_arca_object_nodes)
    fi
    if is_service_enabled arca-swift-filter; then
        _arca_wait_filter
    fi
}

# Tempest tests the key-manager as Barbican's: arca.conf enforces the new
# policy defaults, which Tempest's enforce_scope selects.
function configure_arca_tempest {
    iniset "$TEMPEST_CONFIG" service_available barbican True
    iniset "$TEMPEST_CONFIG" enforce_scope barbican True
}

# --- unstack / clean -------------------------------------------------------

function stop_arca {
    local svc
    # Every node's service settings enabled, and any configured node.
    for svc in $(seq 1 "${SWIFT_REPLICAS:-1}") $(_arca_object_nodes | cut -d' ' -f1); do
        stop_process "$(_arca_object_service "$svc")"
    done
    stop_process arca-swift-filter
    stop_process arca-api
}

function cleanup_arca {
    sudo rm -rf "$ARCA_CONF_DIR" "$ARCA_DATA_DIR"
    local pth
    # The middleware's .pth, of this stack or an earlier pipeline one.
    if is_service_enabled arca-swift-filter && pth=$(_arca_swift_pth 2>/dev/null); then
        sudo rm -f "$pth"
    fi
    # Binaries the plugin did not build (ARCA_BUILD=False) are not its own.
    if [[ $ARCA_BUILD == True ]]; then
        rm -f "$ARCA_BIN_DIR"/arca-api "$ARCA_BIN_DIR"/arca-manage \
            "$ARCA_BIN_DIR"/arca-swift-filter "$ARCA_BIN_DIR"/arca-object-server
    fi
    # The bootstrapped Go: module zips unpack read-only.
    if [[ -d $ARCA_GO_DIR ]]; then
        chmod -R u+w "$ARCA_GO_DIR"
        rm -rf "$ARCA_GO_DIR"
    fi
}

# --- dispatch --------------------------------------------------------------

if is_service_enabled arca-api || is_service_enabled arca-swift-filter || is_service_enabled arca-object; then
    if [[ $1 == stack ]]; then
        _arca_check_supported
    fi
    case "$1 $2" in
        "stack install")
            echo_summary "Installing Arca"
            install_arca
            ;;
        "stack post-config")
            # Started here, not in extra: between the two DevStack starts
            # Swift and Glance, which uploads its image through Swift.
            if is_service_enabled arca-api; then
                echo_summary "Configuring and starting arca-api"
                configure_arca_api
                start_arca_api
                configure_arca_consumers
            fi
            if is_service_enabled arca-object; then
                echo_summary "Pointing Swift's object rings at arca-object-server"
                configure_arca_object
                start_arca_object
            fi
            if is_service_enabled arca-swift-filter; then
                if [[ $ARCA_SWIFT_SHAPE == pipeline ]]; then
                    echo_summary "Putting arca in the Swift proxy's pipeline"
                else
                    echo_summary "Moving the Swift proxy behind arca-swift-filter"
                fi
                configure_arca_swift_filter
                start_arca_swift_filter
            fi
            ;;
        "stack extra")
            echo_summary "Checking Arca"
            check_arca
            ;;
        "stack test-config")
            if is_service_enabled arca-api && is_service_enabled tempest; then
                echo_summary "Configuring Tempest for Arca's key-manager"
                configure_arca_tempest
            fi
            ;;
    esac
    if [[ $1 == unstack ]]; then
        stop_arca
    fi
    if [[ $1 == clean ]]; then
        cleanup_arca
    fi
fi

$_XTRACE_ARCA
