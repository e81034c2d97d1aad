#!/usr/bin/env bash
# The main job on a fresh machine: install, build the sample twin on first use, serve it on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec twin serve "$@"
