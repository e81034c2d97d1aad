#!/usr/bin/env bash
# Make sure the browser the screen tests drive is installed: Debian's chromium and chromium-driver, and the Noto CJK
# fonts so Chinese labels render (no font is ever downloaded by a page). Installs with apt-get only what is missing.
# The tests drive /usr/bin/chromium through Playwright for Python; `playwright install` is never used.
set -euo pipefail

log() { echo "ensure_browser: $*" >&2; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then missing+=(fonts-noto-cjk); fi

if ((${#missing[@]} == 0)); then
    exit 0
fi
log "installing ${missing[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/twin-apt-browser.log 2>&1; then
    apt-get update -qq >>/tmp/twin-apt-browser.log 2>&1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/twin-apt-browser.log 2>&1 \
        || { log "apt-get failed; see /tmp/twin-apt-browser.log"; exit 1; }
fi
command -v chromium >/dev/null 2>&1 || { log "chromium is still missing after installing"; exit 1; }
log "installed: $(chromium --version 2>/dev/null || echo chromium)"
