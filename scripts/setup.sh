#!/usr/bin/env bash
# Create .venv and install the project with its pinned dependencies (skipped when already up to date).
# Source it (`. scripts/setup.sh`) to get the venv activated in your shell.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [[ ! -x "$root/.venv/bin/python" ]]; then
    echo "setup: creating $root/.venv" >&2
    "$python" -m venv "$root/.venv"
fi
stamp="$root/.venv/.installed"
if [[ ! -f "$stamp" || "$root/pyproject.toml" -nt "$stamp" ]]; then
    echo "setup: installing the twin and its dependencies (first run takes a minute or two)" >&2
    "$root/.venv/bin/python" -m pip install -q --upgrade pip >&2
    "$root/.venv/bin/python" -m pip install -q -e "$root[dev]" >&2
    touch "$stamp"
fi
"$root/scripts/ensure_assets.sh"  # the screens' deck.gl bundles from npm, pinned by package-lock.json (build/vendor/)
# shellcheck disable=SC1091
source "$root/.venv/bin/activate"
