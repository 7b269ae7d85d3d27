"""Limits and faults of the amoCRM sandbox: 7 requests/s with an HTML 429 without Retry-After, a
403 block after repeated 429s, injected 5xx, latency, dropped connections and statistics."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState


def _session(srv: AmoSandboxServer) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {srv.long_lived_token}"
    return session


def test_more_than_7_per_second_is_429_html_then_a_403_block(amo_state: AmoState) -> None:
    options = AmoOptions(block_after_429=3, block_window_s=10, block_s=0.6)
    with AmoSandboxServer(amo_state, options) as srv, _session(srv) as api:
        url = f"{srv.base_url}/api/v4/contacts?limit=1"
        answers = [api.get(url, timeout=5) for _ in range(9)]
        codes = [a.status_code for a in answers]
        assert codes[:7] == [200] * 7 and codes[7:] == [429, 429]
        limited = answers[7]
        assert limited.headers["Content-Type"].startswith("text/html")
        assert "Retry-After" not in limited.headers
        assert "429 Too Many Requests" in limited.text
        with pytest.raises(ValueError):
            limited.json()
        # the third 429 within the window blocks the account: 403 HTML to everything
        assert api.get(url, timeout=5).status_code == 429
        blocked = api.get(url, timeout=5)
        assert blocked.status_code == 403 and blocked.headers["Content-Type"].startswith(
            "text/html"
        )
        assert "403 Forbidden" in blocked.text and "Retry-After" not in blocked.headers
        token = requests.post(f"{srv.base_url}/oauth2/access_token", json={}, timeout=5)
        assert token.status_code == 403
        time.sleep(1.05)  # the block and the one-second window are over
        assert api.get(url, timeout=5).status_code == 200
        stats = srv.stats()
        assert stats["429"] == 3 and stats["403"] == 2


def test_a_paced_client_is_never_limited(amo_state: AmoState) -> None:
    options = AmoOptions(rate_per_second=7)
    with AmoSandboxServer(amo_state, options) as srv, _session(srv) as api:
        url = f"{srv.base_url}/api/v4/contacts?limit=1"
        start = time.monotonic()
        for i in range(10):
            wait = start + i / 6.5 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            assert api.get(url, timeout=5).status_code == 200
        assert srv.stats()["429"] == 0


def test_block_and_unblock_by_hand(amo_server: AmoSandboxServer, amo_api) -> None:
    url = f"{amo_server.base_url}/api/v4/account"
    amo_server.block(30)
    assert amo_api.get(url, timeout=5).status_code == 403
    amo_server.unblock()
    assert amo_api.get(url, timeout=5).status_code == 200


def test_storm_5xx_latency_and_drops(amo_server: AmoSandboxServer, amo_api) -> None:
    url = f"{amo_server.base_url}/api/v4/users"
    amo_server.set_faults(storm_429=2, block_after_429=0)
    assert [amo_api.get(url, timeout=5).status_code for _ in range(3)] == [429, 429, 200]
    amo_server.set_faults(fail_rate_5xx=1.0)
    failures = [amo_api.get(url, timeout=5) for _ in range(12)]
    assert {r.status_code for r in failures} <= {502, 503, 504}
    assert len({r.status_code for r in failures}) >= 2
    assert all(r.headers["Content-Type"].startswith("text/html") for r in failures)
    amo_server.set_faults(fail_rate_5xx=0.0, latency_ms=120)
    start = time.perf_counter()
    assert amo_api.get(url, timeout=5).status_code == 200
    assert time.perf_counter() - start >= 0.12
    amo_server.set_faults(latency_ms=0, drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        amo_api.get(url, timeout=5)
    amo_server.set_faults(drop_rate=0.0)
    assert amo_api.get(url, timeout=5).status_code == 200
    stats = amo_server.stats()
    assert stats["5xx"] == 12 and stats["429"] == 2 and stats["dropped"] == 1
    assert stats["requests"] == 18 and stats["by_route"] == {"GET /api/v4/users": 18}
    amo_server.reset_stats()
    assert amo_server.stats()["requests"] == 0
    with pytest.raises(TypeError):
        amo_server.set_faults(no_such_option=1)


def test_by_route_masks_ids_and_counts_writes(amo_server: AmoSandboxServer, amo_api) -> None:
    cid = sorted(amo_server.state.contacts)[0]
    amo_api.get(f"{amo_server.base_url}/api/v4/contacts/{cid}", timeout=5)
    amo_api.get(f"{amo_server.base_url}/api/v4/contacts/{cid}/notes", timeout=5)
    amo_api.patch(f"{amo_server.base_url}/api/v4/contacts/{cid}", json={"name": "X"}, timeout=5)
    stats = amo_server.stats()
    assert stats["by_route"] == {
        "GET /api/v4/contacts/{id}": 1,
        "GET /api/v4/contacts/{id}/notes": 1,
        "PATCH /api/v4/contacts/{id}": 1,
    }
    assert stats["writes"] == 1
