#!/bin/sh
# Makes sure the e2e suite can run: Debian's Chromium, and playwright-core from package-lock.json.
#   sh tests/e2e/setup.sh            (make e2e)
#   sh tests/e2e/setup.sh --fonts    also CJK and emoji fonts, for the screenshots (make screenshot)
# Never downloads a browser of its own (no `playwright install`).
set -eu
cd "$(dirname "$0")"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive

apt_install() { # only what is missing; apt-get update only if the first try fails
    missing=""
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    [ -z "$missing" ] && return 0
    echo "e2e setup: apt-get install$missing"
    $sudo apt-get install -y -qq $missing >/dev/null ||
        { $sudo apt-get update -qq && $sudo apt-get install -y -qq $missing >/dev/null; }
}

[ -x /usr/bin/chromium ] || apt_install chromium
[ "${1:-}" = --fonts ] && apt_install fonts-noto-cjk fonts-noto-color-emoji
command -v node >/dev/null || { echo "e2e setup: needs Node.js 20+ and npm" >&2; exit 1; }
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error
