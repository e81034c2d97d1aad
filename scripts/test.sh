#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, make sure PostGIS is there (installing Debian's
# postgresql-15-postgis-3 where CREATE EXTENSION postgis fails), run pytest against a fresh database, drop it.
# Set TWIN_TEST_DATABASE_URL to use your own PostGIS instead. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
scripts/ensure_browser.sh  # Debian's chromium, chromium-driver and fonts-noto-cjk for tests/screens

created=""
if [[ -z "${TWIN_TEST_DATABASE_URL:-}" ]]; then
    TWIN_TEST_DATABASE_URL="$(scripts/ensure_postgis.sh)"
    created="${TWIN_TEST_DATABASE_URL##*/}"
fi
export TWIN_TEST_DATABASE_URL
cleanup() {
    if [[ -n "$created" ]]; then
        psql -q -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d postgres \
            -c "DROP DATABASE IF EXISTS \"$created\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# PostGIS tests must run: a skipped one fails the run (see tests/conftest.py).
export TWIN_REQUIRE_POSTGIS=1
python -m pytest "$@"
