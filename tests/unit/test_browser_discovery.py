"""The page tests find a Chromium without root, in a fixed order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..browser import HOW_TO_GET_ONE, chromium


def _executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but what a test puts there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("PONDER_CHROMIUM", raising=False)
    return folder


def test_ponder_chromium_comes_first(bare_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _executable(bare_path, "chromium")
    monkeypatch.setenv("PONDER_CHROMIUM", "/opt/my/chrome")
    assert chromium(None) == "/opt/my/chrome"


@pytest.mark.parametrize("name", ["chromium", "chromium-browser", "google-chrome"])
def test_then_a_system_chromium(bare_path: Path, tmp_path: Path, name: str) -> None:
    found = _executable(bare_path, name)
    playwright_own = _executable(tmp_path, "playwright-chrome")
    assert chromium(str(playwright_own)) == str(found)


def test_then_playwrights_own_where_it_was_downloaded(bare_path: Path, tmp_path: Path) -> None:
    playwright_own = _executable(tmp_path, "playwright-chrome")
    assert chromium(str(playwright_own)) == str(playwright_own)
    assert chromium(str(tmp_path / "not-downloaded")) is None


def test_with_none_the_message_says_how_to_get_one() -> None:
    assert "playwright install chromium" in HOW_TO_GET_ONE
    assert "PONDER_CHROMIUM" in HOW_TO_GET_ONE and "\n" not in HOW_TO_GET_ONE
    assert os.path.exists(Path(__file__).resolve().parents[2] / "scripts/install-browser.sh")
