#!/usr/bin/env bash
# The browser the page tests drive (tests/engine/test_pages.py): Debian's
# chromium, installed with apt when missing (once; as root, as on these
# machines and in CI). Playwright's own browser download cannot work where
# only the package registries are reachable, so the tests point Playwright's
# pinned wheel at this binary (PONDER_CHROMIUM, default: chromium on PATH).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser.sh: chromium is missing; install Debian's chromium (as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
