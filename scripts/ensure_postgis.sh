#!/usr/bin/env bash
# Make sure a PostGIS test database exists and print its URL on stdout.
#
# Uses $TWIN_TEST_DATABASE_URL when it is set (your own PostGIS). Otherwise it uses the local PostgreSQL 15 on
# 127.0.0.1:5432 (trust auth), installs Debian's postgresql-15-postgis-3 when `CREATE EXTENSION postgis` fails,
# and creates a fresh database named twin_test_<random>; scripts/test.sh drops it afterwards.
set -euo pipefail

if [[ -n "${TWIN_TEST_DATABASE_URL:-}" ]]; then
    echo "$TWIN_TEST_DATABASE_URL"
    exit 0
fi

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER

log() { echo "ensure_postgis: $*" >&2; }

wait_for_server() {
    for _ in $(seq 1 60); do
        if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then return 0; fi
        sleep 1
    done
    log "PostgreSQL on $PGHOST:$PGPORT does not answer"
    return 1
}

start_local_cluster() {
    if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
        log "starting the local PostgreSQL 15 cluster"
        pg_ctlcluster --skip-systemctl-redirect 15 main start >&2 || true
    fi
}

start_local_cluster
wait_for_server

probe_db="twin_probe_$$"
has_postgis() {
    psql -q -d postgres -c "CREATE DATABASE $probe_db" >/dev/null 2>&1 || return 1
    local ok=1
    if psql -q -d "$probe_db" -c "CREATE EXTENSION postgis" >/dev/null 2>&1; then ok=0; fi
    psql -q -d postgres -c "DROP DATABASE IF EXISTS $probe_db" >/dev/null 2>&1 || true
    return $ok
}

if ! has_postgis; then
    log "PostGIS is missing: installing postgresql-15-postgis-3 from Debian"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq postgresql-15-postgis-3 >/tmp/twin-apt.log 2>&1; then
        apt-get update -qq >/tmp/twin-apt.log 2>&1
        apt-get install -y -qq postgresql-15-postgis-3 >/tmp/twin-apt.log 2>&1
    fi
    start_local_cluster
    wait_for_server
    has_postgis || { log "CREATE EXTENSION postgis still fails after installing"; exit 1; }
fi

db="twin_test_$(date +%s)_$$"
psql -q -d postgres -c "CREATE DATABASE $db" >&2
psql -q -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis" >&2
log "created test database $db"
echo "postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$db"
