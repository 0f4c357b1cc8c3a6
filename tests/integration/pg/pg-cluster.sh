#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throwaway PostgreSQL cluster for the tests (Debian's postgresql-15 binaries), run as an
# unprivileged user in a temporary directory and reached only over a Unix socket in it (no TCP
# port, so parallel runs cannot collide).
#   pg-cluster.sh start DIR     initdb + pg_ctl start; prints the base URL
#   pg-cluster.sh url DIR DB    prints the URL of database DB
#   pg-cluster.sh version DIR   prints the server version
#   pg-cluster.sh createdb DIR DB
#   pg-cluster.sh run DIR DB -- CMD...   fresh database DB, CMD with CORRAL_TEST_DATABASE set
#   pg-cluster.sh stop DIR      pg_ctl stop + rm -rf DIR
# Exit 77 (ctest's skip) when the PostgreSQL binaries are not installed.
set -euo pipefail
bindir=${CORRAL_PG_BINDIR:-/usr/lib/postgresql/15/bin}
pguser=corral
cmd=${1:?usage: pg-cluster.sh start|url|createdb|run|stop DIR ...}
dir=${2:?missing DIR}
shift 2

# Run a PostgreSQL binary as the unprivileged owner (initdb refuses root).
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		# From /: the caller's directory (a build tree under /root) may be closed to nobody.
		(cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@")
	else
		"$@"
	fi
}

url() { printf 'postgresql:///%s?host=%s&user=%s' "$1" "$dir" "$pguser"; }

case "$cmd" in
start)
	if [ ! -x "$bindir/initdb" ]; then
		echo "pg-cluster: $bindir/initdb not found (install postgresql)" >&2
		exit 77
	fi
	# A cluster left running by an interrupted run is stopped before its directory goes.
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$dir"
	chmod 0700 "$dir"
	as_owner "$bindir/initdb" -D "$dir/data" -U "$pguser" -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	# Socket only; fsync off: a throwaway cluster for tests (never for real data).
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=200 -c synchronous_commit=off" \
		start >/dev/null || {
		cat "$dir/server.log" >&2
		exit 1
	}
	url postgres
	echo
	;;
version)
	"$bindir/postgres" --version
	;;
url)
	url "${1:?missing DB}"
	echo
	;;
createdb)
	as_owner "$bindir/psql" -q -h "$dir" -U "$pguser" -d postgres -v ON_ERROR_STOP=1 -c "SET client_min_messages=warning" \
		-c "DROP DATABASE IF EXISTS \"$1\"" -c "CREATE DATABASE \"$1\"" >/dev/null
	;;
run)
	db=${1:?missing DB}
	shift
	[ "${1:-}" = "--" ] && shift
	if [ ! -S "$dir/.s.PGSQL.5432" ]; then
		echo "pg-cluster: no cluster running in $dir (fixture failed?)" >&2
		exit 1
	fi
	"$0" createdb "$dir" "$db"
	CORRAL_TEST_DATABASE=$(url "$db") exec "$@"
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "pg-cluster: unknown command $cmd" >&2
	exit 2
	;;
esac
