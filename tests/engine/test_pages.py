"""The pages ponder serves, in a real browser (Chromium, driven by
Playwright; ``tests/browser.py`` says which one) against the real server,
with every request that would leave the machine blocked, as where no CDN
can be reached, and under the Content-Security-Policy the server sends (a
violation is a console error, which fails a test). A screenshot of each
page is kept in test-artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from ..browser import HOW_TO_GET_ONE, chromium
from .conftest import Server

pytestmark = pytest.mark.pages

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""ReDoc's build fetches its "powered by" logo from its CDN whatever it is
told; the page's policy refuses it and the page renders without it, so that
one refusal is allowed."""
MARKUP = ('<img src=x onerror="window.injected = 1"><script>window.injected = 2</script>'
          '<b>bold</b>')
"""Text that, written into the page as HTML, would run a script."""
BEAM = '{"beam_width": 2, "expand": 2, "max_steps": 3, "step_delimiter": "\\n", "prm": "step-checker"}'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        executable = chromium(playwright.chromium.executable_path)
        if executable is None:
            pytest.fail(HOW_TO_GET_ONE, pytrace=False)
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


def _strict_policy(policy: str) -> None:
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'none'"
    assert directives["script-src"].startswith("'self'") and "unsafe" not in policy


def test_swagger_ui_renders_offline(page: Page, server: Server) -> None:
    loaded = page.goto(f"{server.base_url}/docs")
    assert loaded is not None
    _strict_policy(loaded.headers["content-security-policy"])
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    _keep(page, "docs")
    assert any("/v1/chat/completions" in path for path in paths)
    assert not page.errors  # type: ignore[attr-defined]


def test_redoc_renders_offline(page: Page, server: Server) -> None:
    loaded = page.goto(f"{server.base_url}/redoc")
    assert loaded is not None
    _strict_policy(loaded.headers["content-security-policy"])
    page.get_by_text("/v1/chat/completions").first.wait_for(timeout=60_000)
    page.fill("input[placeholder='Search...']", "tokenize")  # its search runs in a worker
    page.locator("[data-role='search:results'] li[aria-label=Tokenize]").wait_for(timeout=30_000)
    _keep(page, "redoc")
    assert page.locator(".redoc-wrap").count() == 1
    assert page.locator("text=responses").count() >= 1  # every API's section is there
    assert not [e for e in page.errors if REDOC_BADGE not in e]  # type: ignore[attr-defined]


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


def _only(page: Page, strategy: str, params: str) -> None:
    page.wait_for_selector(f"input[name=strategy][value={strategy}]")
    for box in page.locator("input[name=strategy]").all():
        box.set_checked(box.get_attribute("value") == strategy)
    page.fill(f'input[aria-label="{strategy} parameters"]', params)


def _shown_as_text(page: Page, where: str) -> None:
    """``MARKUP`` is on the page as text: no element made of it, no script
    run, no console error but the browser's own line for a refused call."""
    page.wait_for_timeout(500)  # time for an image's onerror to fire, if one were made
    assert MARKUP in page.inner_text(where)
    assert page.locator(f"{where} img, {where} script, {where} b").count() == 0
    assert page.evaluate("window.injected") is None
    refused = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert not [e for e in page.errors if e != refused]  # type: ignore[attr-defined]


def test_the_explorer_shows_an_error_that_holds_markup_as_text(page: Page, server: Server) -> None:
    """The server echoes an unknown strategy parameter's name in its 400."""
    page.add_init_script(f"localStorage.setItem('ponder-key', {server.api_key!r})")
    loaded = page.goto(f"{server.base_url}/ui")
    assert loaded is not None
    _strict_policy(loaded.headers["content-security-policy"])
    _only(page, "self_consistency", json.dumps({"n": 2, MARKUP: 1}))
    page.click("#run")
    page.wait_for_selector(".run .meta .error")
    _shown_as_text(page, ".run .meta")


def test_the_explorer_shows_every_api_text_as_text(page: Page, server: Server) -> None:
    """What a hostile upstream or a proxy could put in the API's answers: a
    strategy's name and description, a stream's error."""
    card = {"name": MARKUP, "description": MARKUP, "parameters": {}, "defaults": {}}
    page.route("**/v1/strategies", lambda route: route.fulfill(
        json={"object": "list", "default": "none", "efforts": {}, "data": [card]}))
    error = {"error": {"message": MARKUP, "type": "upstream_error", "param": None, "code": None}}
    page.route("**/v1/chat/completions", lambda route: route.fulfill(
        content_type="text/event-stream", body=f"data: {json.dumps(error)}\n\ndata: [DONE]\n\n"))
    page.add_init_script(f"localStorage.setItem('ponder-key', {server.api_key!r})")
    page.goto(f"{server.base_url}/ui")
    page.wait_for_selector("input[name=strategy]")
    _shown_as_text(page, "#strategies")
    page.locator("input[name=strategy]").set_checked(True)
    page.click("#run")
    page.wait_for_selector(".run .meta .error")
    _shown_as_text(page, ".run .meta")
    assert page.inner_text(".run h2") == MARKUP
