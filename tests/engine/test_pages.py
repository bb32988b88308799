"""The pages ponder serves, in a real browser (Debian's chromium, driven by
Playwright) against the real server, with every request that would leave
the machine blocked, as where no CDN can be reached. A screenshot of each
page is kept in test-artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from .conftest import Server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""ReDoc's build fetches its "powered by" logo from its CDN whatever it is
told; the page renders without it, so that one blocked request is allowed."""
BEAM = '{"beam_width": 2, "expand": 2, "max_steps": 3, "step_delimiter": "\\n", "prm": "step-checker"}'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("PONDER_CHROMIUM") or shutil.which("chromium")
    assert executable, "no chromium: run scripts/install-browser.sh (make test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    opened = context.new_page()
    opened.errors = []  # type: ignore[attr-defined]
    opened.on("console", lambda m: m.type == "error" and opened.errors.append(m.text))  # type: ignore[attr-defined]
    opened.on("pageerror", lambda e: opened.errors.append(str(e)))  # type: ignore[attr-defined]

    def offline(route: Route) -> None:
        if route.request.url.startswith(server.base_url):
            route.continue_()
        else:
            opened.errors.append(f"blocked {route.request.url}")  # type: ignore[attr-defined]
            route.abort()

    opened.route("**/*", offline)
    yield opened
    context.close()


def _keep(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_swagger_ui_renders_offline(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    _keep(page, "docs")
    assert any("/v1/chat/completions" in path for path in paths)
    assert not page.errors  # type: ignore[attr-defined]


def test_redoc_renders_offline(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/redoc")
    page.get_by_text("/v1/chat/completions").first.wait_for(timeout=60_000)
    _keep(page, "redoc")
    assert page.locator(".redoc-wrap").count() == 1
    assert page.locator("text=responses").count() >= 1  # every API's section is there
    badge = {f"blocked {REDOC_BADGE}", "Failed to load resource: net::ERR_FAILED"}
    assert set(page.errors) <= badge  # type: ignore[attr-defined]


def test_the_explorer_runs_two_strategies_side_by_side(page: Page, server: Server) -> None:
    # The page remembers the key it was given (a first load without it would
    # be refused, as it should be: the next test).
    page.add_init_script(f"localStorage.setItem('ponder-key', {server.api_key!r})")
    page.goto(f"{server.base_url}/ui")
    page.wait_for_selector("input[name=strategy][value=beam_search]")
    for box in page.locator("input[name=strategy]").all():
        box.set_checked(box.get_attribute("value") in ("beam_search", "self_consistency"))
    page.fill('input[aria-label="beam_search parameters"]', BEAM)
    page.fill('input[aria-label="self_consistency parameters"]', '{"n": 4, "prompt": "direct"}')
    page.fill("#max-tokens", "64")
    page.click("#run")
    page.wait_for_selector(".run.done >> nth=1", timeout=240_000)
    _keep(page, "ui")
    beam = page.locator('.run[data-strategy="beam_search"]')
    vote = page.locator('.run[data-strategy="self_consistency"]')
    assert beam.locator("svg.search-tree circle.pruned").count() >= 1
    assert beam.locator("svg.search-tree circle.kept").count() >= 1
    assert vote.locator("svg.votes rect.bar").count() >= 1
    for run in (beam, vote):
        assert run.locator(".answer").inner_text().strip()
        assert "tokens" in run.locator(".meta").inner_text()
    assert not page.errors  # type: ignore[attr-defined]


def test_the_explorer_refuses_a_wrong_key(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/ui")
    page.fill("#key", "not-the-key")
    page.dispatch_event("#key", "change")
    page.wait_for_function("document.querySelector('#status').textContent.length > 0")
    assert "API key" in page.inner_text("#status")
    assert page.locator("input[name=strategy]").count() == 0
