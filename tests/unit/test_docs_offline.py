"""/docs and /redoc load Swagger UI and ReDoc from ponder itself, so they
render where no CDN can be reached; the key still guards the pages."""

from __future__ import annotations

import pytest

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"]),
    ("/redoc", ["redoc.standalone.js", "favicon.png"]),
])
async def test_the_pages_load_every_asset_from_this_server(page: str, assets: list[str]) -> None:
    async with asgi_client(asgi_app(ScriptedGenerator.of("4"))) as http:
        html = (await http.get(page)).text
        for asset in assets:
            assert f'"/static/docs/{asset}"' in html
            served = await http.get(f"/static/docs/{asset}")
            assert served.status_code == 200 and len(served.content) > 1000
    assert "cdn" not in html and "fonts.googleapis" not in html


async def test_the_key_still_guards_the_pages_but_not_the_public_assets() -> None:
    app = asgi_app(ScriptedGenerator.of("4"), api_key="k", secure_docs_and_metrics=True)
    async with asgi_client(app) as http:
        assert (await http.get("/docs")).status_code == 401
        assert (await http.get("/docs", headers={"Authorization": "Bearer k"})).status_code == 200
        assert (await http.get("/static/docs/swagger-ui.css")).status_code == 200


async def test_the_explorer_page_and_its_files_are_served_unless_turned_off() -> None:
    async with asgi_client(asgi_app(ScriptedGenerator.of("4"))) as http:
        page = await http.get("/ui")
        script = await http.get("/ui/ui.js")
        style = await http.get("/ui/ui.css")
    assert page.status_code == 200 and 'src="ui/ui.js"' in page.text
    assert script.status_code == 200 and "v1/chat/completions" in script.text
    assert style.status_code == 200
    async with asgi_client(asgi_app(ScriptedGenerator.of("4"), ui=False)) as http:
        assert (await http.get("/ui")).status_code == 404
