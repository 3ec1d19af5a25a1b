#!/bin/sh
# A throwaway PostgreSQL cluster for the tests (Debian's `postgresql`
# package): the storage, ledger, ledger model and crash tests run against it
# as well as against SQLite.
#
#   tools/pg-cluster.sh start DIR   initdb into DIR, start the server, print
#                                   its libpq connection string on stdout
#   tools/pg-cluster.sh stop DIR    stop it (pg_ctl stop -m fast) and delete
#                                   its data; the server's log stays in
#                                   DIR/server.log
#   tools/pg-cluster.sh run DIR COMMAND [ARGS...]
#                                   start, run COMMAND with
#                                   HAIBOT_TEST_PG_URL set to the connection
#                                   string, stop (also when COMMAND fails or
#                                   the run is interrupted), exit with
#                                   COMMAND's status; DIR is removed when
#                                   COMMAND passed
#
# The server listens on a Unix socket only (listen_addresses = ''), trusts
# every local connection (user postgres), and keeps the durable settings
# (fsync, synchronous_commit) on. initdb and postgres refuse to run as root:
# run as root, they run as the `postgres` user, which owns the cluster; the
# tests, still root, connect through the socket. When that user cannot reach
# DIR (a checkout under a private home) or DIR's path is too long for a
# socket, the cluster lives in a directory under /tmp that DIR/home points
# to. PG_BIN overrides the server's binary directory.
set -u

die() {
    echo "pg-cluster: $*" >&2
    exit 1
}

[ $# -ge 2 ] || die "usage: $0 start|stop DIR, or $0 run DIR COMMAND [ARGS...]"
cmd=$1
dir=$2
shift 2

bindir=${PG_BIN:-}
if [ -z "$bindir" ]; then
    for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -r); do
        if [ -x "$d/initdb" ]; then
            bindir=$d
            break
        fi
    done
fi
[ -n "$bindir" ] && [ -x "$bindir/pg_ctl" ] ||
    die "no PostgreSQL server found (apt-get install postgresql, or set PG_BIN)"

root=0
[ "$(id -u)" = 0 ] && root=1
as_server() {
    if [ $root = 1 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    mkdir -p "$dir" || die "cannot make $dir"
    dir=$(cd "$dir" && pwd -P) || exit 1
    [ -e "$dir/home" ] && die "$dir already holds a cluster (stop it first)"
    if [ $root = 1 ]; then
        getent passwd postgres >/dev/null || die "no postgres user (apt-get install postgresql)"
    fi
    home=$dir/home
    inside=1
    # The socket's path (home/.s.PGSQL.5432) must fit in 107 bytes and the
    # connection string takes it unquoted.
    case $home in
    *[!A-Za-z0-9/._-]*) inside=0 ;;
    esac
    [ ${#home} -le 80 ] || inside=0
    if [ $inside = 1 ]; then
        mkdir "$home" || exit 1
        if [ $root = 1 ]; then
            chown postgres: "$home" && runuser -u postgres -- test -w "$home" || {
                rm -rf "$home"
                inside=0
            }
        fi
    fi
    if [ $inside = 0 ]; then
        home=$(mktemp -d /tmp/haibot-pg.XXXXXX) || exit 1
        ln -s "$home" "$dir/home" || exit 1
        [ $root = 0 ] || chown postgres: "$home" || exit 1
    fi
    chmod 700 "$home"
    as_server "$bindir/initdb" -D "$home/data" -U postgres -A trust -E UTF8 --no-locale -N \
        >"$home/initdb.log" 2>&1 || {
        cat "$home/initdb.log" >&2
        die "initdb failed"
    }
    cat >>"$home/data/postgresql.conf" <<EOF
# tools/pg-cluster.sh: a Unix socket only, durable commits, room for
# several daemons and the tests' own connections.
listen_addresses = ''
unix_socket_directories = '$home'
port = 5432
fsync = on
synchronous_commit = on
max_connections = 200
EOF
    as_server "$bindir/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 start \
        >/dev/null 2>&1 || {
        tail -n 20 "$home/server.log" >&2
        die "the server did not start"
    }
    echo "host=$home port=5432 user=postgres dbname=postgres"
}

pg_stop() {
    [ -e "$dir/home" ] || return 0
    home=$(readlink -f "$dir/home")
    if [ -f "$home/data/postmaster.pid" ]; then
        as_server "$bindir/pg_ctl" -D "$home/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            echo "pg-cluster: pg_ctl stop failed (see $dir/server.log)" >&2
    fi
    [ -f "$home/server.log" ] && cp "$home/server.log" "$dir/server.log"
    rm -rf "$home"
    rm -f "$dir/home"
}

case $cmd in
start)
    pg_start
    ;;
stop)
    pg_stop
    ;;
run)
    [ $# -ge 1 ] || die "run: no command"
    url=$(pg_start) || {
        pg_stop
        exit 1
    }
    dir=$(cd "$dir" && pwd -P)
    trap pg_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    HAIBOT_TEST_PG_URL=$url "$@"
    rc=$?
    if [ $rc = 0 ]; then
        trap - EXIT
        pg_stop
        rm -rf "$dir"
    else
        echo "pg-cluster: PostgreSQL's log: $dir/server.log" >&2
    fi
    exit $rc
    ;;
*)
    die "unknown command $cmd (start, stop or run)"
    ;;
esac
