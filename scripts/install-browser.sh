#!/usr/bin/env bash
# Optional: a Chromium for the page tests (tests/engine/test_pages.py), for
# a machine that has none. The tests look for PONDER_CHROMIUM, then a system
# chromium, chromium-browser or google-chrome on PATH, then Playwright's own
# browser (tests/browser.py); `make test` itself never installs one.
#
#   scripts/install-browser.sh      # as root on Debian: apt's chromium;
#                                   # otherwise Playwright's own download
set -euo pipefail
venv="${VENV:-.venv}"
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "install-browser.sh: $(command -v "$name") is there already"
    exit 0
  fi
done
. /etc/os-release 2>/dev/null || true
if [ "$(id -u)" -eq 0 ] && [ "${ID:-}" = debian ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  command -v chromium
  exit 0
fi
# Ubuntu's apt chromium is a snap, which containers cannot run: Playwright's
# own build works there (its system libraries: `playwright install-deps`, as root).
"$venv/bin/playwright" install chromium
