"""The API fuzzed from its own OpenAPI schema: requests that break the schema,
in any field and any way, get a 4xx in OpenAI's error shape, never a 5xx, and
the engine keeps serving."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from .conftest import Server


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_invalid_requests_are_openai_shaped_client_errors(
    server: Server, http: httpx.Client, path: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operation = schema[path]["POST"]
    statuses: list[int] = []

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(GenerationMode.NEGATIVE))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.base_url, headers=server.headers(), timeout=60)
        assert 400 <= response.status_code < 500, (case.body, response.text)
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        statuses.append(response.status_code)

    check()
    assert len(statuses) >= 20  # it really sent requests
    good = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert good.status_code == 200
