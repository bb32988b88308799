"""The GPU smoke test's contract check (`ponder bench gpu`, step 1) run
against the CPU server, so that the code a GPU machine will run first is
known to pass against the real server: chat, streaming with usage,
self_consistency, best_of_n, beam_search, usage that adds up."""

from __future__ import annotations

from ponder.bench.gpu import check_contract

from .conftest import Server


def test_the_smoke_tests_contract_passes_on_the_real_server(server: Server) -> None:
    checks = check_contract(server.base_url, server.api_key, max_tokens=48)
    assert set(checks) == {"chat", "stream", "self_consistency", "best_of_n", "beam_search"}
    assert checks["self_consistency"]["samples"] == checks["best_of_n"]["samples"] == 8
    assert checks["beam_search"]["samples"] >= 4  # the first round alone draws 2 x 2
    assert checks["stream"]["finish_reason"] in ("stop", "length")
