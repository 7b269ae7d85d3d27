"""Auth errors, rate limits, fault injection, OAuth refresh and request statistics."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.hubspot.server import SandboxOptions, SandboxServer


def test_401_bodies_do_not_echo_the_token(server) -> None:
    url = f"{server.base_url}/crm/v3/objects/contacts"
    missing = requests.get(url)
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token-123"})
    for response in (missing, wrong):
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found")
        assert body["correlationId"]
        assert "not-the-token-123" not in response.text
    assert server.stats()["401"] == 2
    assert "test-token" not in repr(server.options)


def test_ten_secondly_burst_limit(server, api) -> None:
    server.set_faults(burst_limit=3, burst_window_s=2.0)
    url = f"{server.base_url}/crm/v3/objects/contacts"
    answers = [api.get(url, params={"limit": 1}) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "2000"
    limited = answers[3]
    body = limited.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"] and 1 <= int(limited.headers["Retry-After"]) <= 2
    # search has its own budget and does not count against the burst
    search = api.post(f"{server.base_url}/crm/v3/objects/contacts/search", json={})
    assert search.status_code == 200
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in search.headers)
    time.sleep(2.05)
    assert api.get(url, params={"limit": 1}).status_code == 200
    assert server.stats()["429"] == 1


def test_search_secondly_limit(server, api) -> None:
    server.set_faults(search_per_second=2)
    url = f"{server.base_url}/crm/v3/objects/contacts/search"
    codes = [api.post(url, json={"limit": 1}) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    body = codes[2].json()
    assert body["policyName"] == "SECONDLY" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your secondly limit."
    assert codes[2].headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert api.post(url, json={"limit": 1}).status_code == 200


def test_storm_and_5xx_and_latency(server, api) -> None:
    url = f"{server.base_url}/crm/v3/objects/contacts"
    server.set_faults(storm_429=2)
    assert [api.get(url).status_code for _ in range(3)] == [429, 429, 200]
    server.set_faults(fail_rate_5xx=1.0)
    failures = [api.get(url) for _ in range(12)]
    assert {r.status_code for r in failures} <= {502, 503, 504}
    assert len({r.status_code for r in failures}) >= 2
    for r in failures:
        if r.status_code == 503:
            assert r.json()["status"] == "error"
        else:
            assert r.headers["Content-Type"].startswith("text/html")
    server.set_faults(fail_rate_5xx=0.0, latency_ms=150)
    start = time.perf_counter()
    assert api.get(url).status_code == 200
    assert time.perf_counter() - start >= 0.15
    stats = server.stats()
    assert stats["5xx"] == 12 and stats["429"] == 2


def test_dropped_connections(server, api) -> None:
    server.set_faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.get(f"{server.base_url}/crm/v3/objects/contacts", timeout=5)
    server.set_faults(drop_rate=0.0)
    assert api.get(f"{server.base_url}/crm/v3/objects/contacts", timeout=5).status_code == 200
    assert server.stats()["dropped"] == 1


def _patch_sequence(state, seed: int, rate: float) -> tuple[list[int], dict[str, str]]:
    """PATCH 20 contacts' firstname under drop-after-apply; (status or -1, names held after)."""
    options = SandboxOptions(token="t", drop_after_apply_rate=rate, seed=seed)
    ids = [str(r.id) for _, r in zip(range(20), state.iter_live("contacts"), strict=False)]
    out = []
    with SandboxServer(state, options) as srv, requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        base = f"{srv.base_url}/crm/v3/objects/contacts"
        for i, contact_id in enumerate(ids):
            try:
                answer = session.patch(
                    f"{base}/{contact_id}", json={"properties": {"firstname": f"N{i}"}}, timeout=5
                )
                out.append(answer.status_code)
            except requests.ConnectionError:
                out.append(-1)
        # reads are never dropped by this fault
        held = {
            c: session.get(f"{base}/{c}", timeout=5).json()["properties"]["firstname"] for c in ids
        }
        stats = srv.stats()
    assert stats["dropped_after_apply"] == out.count(-1)
    assert stats["writes"] == len(ids) and stats["dropped"] == 0
    return out, held


def test_drop_after_apply_changes_state_but_loses_the_answer(state) -> None:
    first, held = _patch_sequence(state, seed=3, rate=0.5)
    assert set(first) == {200, -1}
    # every PATCH landed, answered or not
    assert list(held.values()) == [f"N{i}" for i in range(len(held))]
    again, _ = _patch_sequence(state, seed=3, rate=0.5)
    assert again == first  # deterministic for the seed
    assert _patch_sequence(state, seed=4, rate=0.5)[0] != first


def _fault_sequence(state, seed: int) -> list[int]:
    options = SandboxOptions(token="t", fail_rate_5xx=0.3, drop_rate=0.1, seed=seed)
    out = []
    with SandboxServer(state, options) as srv, requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        for _ in range(30):
            try:
                out.append(session.get(f"{srv.base_url}/crm/v3/owners", timeout=5).status_code)
            except requests.ConnectionError:
                out.append(-1)
    return out


def test_faults_are_deterministic_for_a_seed(state) -> None:
    first = _fault_sequence(state, seed=42)
    assert _fault_sequence(state, seed=42) == first
    assert _fault_sequence(state, seed=43) != first
    assert {200, -1} <= set(first) and set(first) & {502, 503, 504}


def test_writes_and_route_stats(server, api) -> None:
    base = f"{server.base_url}/crm/v3/objects"
    api.get(f"{base}/contacts")
    api.post(f"{base}/contacts/search", json={})
    api.post(f"{base}/contacts/batch/read", json={"inputs": [{"id": "1001"}]})
    api.post(
        f"{base}/contacts/batch/update",
        json={"inputs": [{"id": "1001", "properties": {"firstname": "A"}}]},
    )
    api.patch(f"{base}/contacts/1002", json={"properties": {"firstname": "B"}})
    api.post(f"{base}/tasks", json={"properties": {"hs_timestamp": "2026-05-01T00:00:00Z"}})
    api.post(
        f"{server.base_url}/crm/v4/associations/contacts/deals/batch/read", json={"inputs": []}
    )
    stats = server.stats()
    assert stats["requests"] == 7 and stats["writes"] == 3
    assert stats["by_route"]["PATCH objects/contacts/{id}"] == 1
    assert stats["by_route"]["POST objects/contacts/batch/update"] == 1
    server.reset_stats()
    assert server.stats()["requests"] == 0 and server.stats()["by_route"] == {}


def test_oauth_refresh_expiry_and_bad_refresh_token(state) -> None:
    options = SandboxOptions(token="static", oauth_token_ttl_s=60)
    with SandboxServer(state, options) as srv:
        form = {
            "grant_type": "refresh_token",
            "client_id": options.client_id,
            "client_secret": options.client_secret,
            "refresh_token": options.refresh_token,
        }
        for version in ("v1", "v3", "2026-03"):
            issued = requests.post(f"{srv.base_url}/oauth/{version}/token", data=form)
            assert issued.status_code == 200
        body = issued.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 60
        assert body["refresh_token"] == options.refresh_token
        url = f"{srv.base_url}/crm/v3/objects/contacts"
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert requests.get(url, headers=headers).status_code == 200
        srv.expire_oauth_tokens()
        expired = requests.get(url, headers=headers)
        assert expired.status_code == 401
        assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
        assert "expired" in expired.json()["message"]
        bad = requests.post(
            f"{srv.base_url}/oauth/v1/token", data={**form, "refresh_token": "nope"}
        )
        assert bad.status_code == 400 and bad.json()["status"] == "BAD_REFRESH_TOKEN"
        bad_client = requests.post(
            f"{srv.base_url}/oauth/v1/token", data={**form, "client_secret": "x"}
        )
        assert bad_client.status_code == 400


def test_oauth_tokens_expire_by_clock(state) -> None:
    options = SandboxOptions(oauth_token_ttl_s=0.3)
    with SandboxServer(state, options) as srv:
        form = {
            "grant_type": "refresh_token",
            "client_id": options.client_id,
            "client_secret": options.client_secret,
            "refresh_token": options.refresh_token,
        }
        token = requests.post(f"{srv.base_url}/oauth/v3/token", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{srv.base_url}/crm/v3/owners", headers=headers).status_code == 200
        time.sleep(0.4)
        answer = requests.get(f"{srv.base_url}/crm/v3/owners", headers=headers)
        assert answer.status_code == 401 and answer.json()["category"] == "EXPIRED_AUTHENTICATION"


def _row_error_run(state, seed: int) -> tuple[list[str], dict[str, str]]:
    """One batch update of 30 contacts (+ an unknown id) at row_error_rate 0.5."""
    options = SandboxOptions(token="t", row_error_rate=0.5, seed=seed)
    ids = [str(r.id) for _, r in zip(range(30), state.iter_live("contacts"), strict=False)]
    with SandboxServer(state, options) as srv, requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        answer = session.post(
            f"{srv.base_url}/crm/v3/objects/contacts/batch/update",
            json={
                "inputs": [
                    {"id": c, "properties": {"firstname": f"Seed{seed}"}} for c in [*ids, "424242"]
                ]
            },
            timeout=5,
        )
        row_errors = srv.stats()["row_errors"]
    assert answer.status_code == 207
    body = answer.json()
    by_id = {e["context"]["ids"][0]: e for e in body["errors"]}
    assert by_id.pop("424242")["category"] == "OBJECT_NOT_FOUND"  # never a transient error
    assert len(by_id) == row_errors == body["numErrors"] - 1
    for error in by_id.values():
        assert error["status"] == "error" and error["category"] in ("LOCKED", "INTERNAL_ERROR")
        if error["category"] == "LOCKED":
            assert "Locks will last for 2 seconds" in error["message"]
    # failed rows were not applied, the others were
    applied = {r["id"] for r in body["results"]}
    assert applied == set(ids) - set(by_id)
    for contact_id in ids:
        held = state.get("contacts", contact_id).props.get("firstname")
        assert (held == f"Seed{seed}") == (contact_id in applied)
    return sorted(by_id), {e["context"]["ids"][0]: e["category"] for e in by_id.values()}


def test_row_errors_in_batch_update_are_transient_shaped_and_seeded(state) -> None:
    first = _row_error_run(state, seed=5)
    assert {"LOCKED", "INTERNAL_ERROR"} == set(first[1].values())
    assert _row_error_run(state, seed=5) == first
    assert _row_error_run(state, seed=6) != first
