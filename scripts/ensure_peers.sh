#!/usr/bin/env bash
# Install the peer servers the benchmarks compare the twin with, each in a venv of its own under bench/out/peers/
# (git-ignored), never in the project's .venv: tipg, pygeoapi and TiTiler pin FastAPI, Starlette, pydantic and
# rasterio versions of their own. Prints the three venv directories on stdout (tipg, pygeoapi, titiler).
# Skips a venv whose pinned set is already installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
base="$root/bench/out/peers"
mkdir -p "$base"

# name|pinned requirements (exact versions that install from PyPI; pygeoapi 0.21.0 is the newest for Python 3.11)
peers=(
    "tipg|tipg==1.6.1 uvicorn==0.54.0"
    "pygeoapi|pygeoapi==0.21.0 uvicorn==0.54.0 psycopg2-binary==2.9.13 SQLAlchemy==2.1.9 GeoAlchemy2==0.20.0 pygeofilter==0.4.0 starlette==1.10.0"
    "titiler|titiler.application==2.4.0 uvicorn==0.54.0"
)

install_one() {
    local name="$1" reqs="$2" venv="$base/$1"
    local stamp="$venv/.installed"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$reqs" ]]; then
        return 0
    fi
    echo "ensure_peers: installing $name ($reqs) into $venv" >&2
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q $reqs >&2
    echo "$reqs" >"$stamp"
}

for entry in "${peers[@]}"; do
    install_one "${entry%%|*}" "${entry#*|}"
done
for entry in "${peers[@]}"; do
    echo "$base/${entry%%|*}"
done
