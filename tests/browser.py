"""Which Chromium the page tests drive, found without root: the one named
in ``PONDER_CHROMIUM``, else a system Chromium on PATH, else Playwright's
own (``playwright install chromium``, where the network allows)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome")
HOW_TO_GET_ONE = (
    "no Chromium for the page tests: run `.venv/bin/playwright install chromium`, or install "
    "your distribution's chromium (`sudo scripts/install-browser.sh` on Debian and Ubuntu), "
    "or point PONDER_CHROMIUM at one; `make test PYTEST_ARGS='-m \"not pages\"'` skips them"
)


def chromium(playwright_own: str | None) -> str | None:
    """The browser to launch: a path, or None for none at all.

    ``playwright_own`` is where Playwright keeps its own browser (it may not
    have been downloaded)."""
    given = os.environ.get("PONDER_CHROMIUM")
    if given:
        return given
    for name in SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found:
            return found
    if playwright_own and Path(playwright_own).exists():
        return playwright_own
    return None
