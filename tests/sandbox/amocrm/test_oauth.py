"""OAuth of the amoCRM sandbox: code exchange, single-use rotating refresh tokens, expiry,
long-lived tokens, and a token registry that survives a restart."""

from __future__ import annotations

import time

import requests

from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState


def _grant(srv: AmoSandboxServer, **fields: str) -> requests.Response:
    opts = srv.options
    body = {
        "client_id": opts.client_id,
        "client_secret": opts.client_secret,
        "redirect_uri": opts.redirect_uri,
        **fields,
    }
    return requests.post(f"{srv.base_url}/oauth2/access_token", json=body, timeout=5)


def _refresh(srv: AmoSandboxServer, token: str) -> requests.Response:
    return _grant(srv, grant_type="refresh_token", refresh_token=token)


def _contacts(srv: AmoSandboxServer, token: str) -> int:
    url = f"{srv.base_url}/api/v4/contacts?limit=1"
    return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code


def test_authorization_code_is_single_use(amo_server: AmoSandboxServer) -> None:
    code = amo_server.options.auth_code
    assert code
    first = _grant(amo_server, grant_type="authorization_code", code=code)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86_400
    assert body["access_token"].count(".") == 2 and body["refresh_token"]
    assert isinstance(body["server_time"], int)
    assert _contacts(amo_server, body["access_token"]) == 200
    again = _grant(amo_server, grant_type="authorization_code", code=code)
    assert again.status_code == 400
    assert again.headers["Content-Type"].startswith("application/problem+json")
    fresh = amo_server.issue_code()
    assert _grant(amo_server, grant_type="authorization_code", code=fresh).status_code == 200


def test_refresh_tokens_rotate_and_a_spent_one_is_refused(amo_server: AmoSandboxServer) -> None:
    initial = amo_server.options.refresh_token
    assert initial
    first = _refresh(amo_server, initial)
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != initial
    reused = _refresh(amo_server, initial)
    assert reused.status_code == 401
    body = reused.json()
    assert body["hint"] == "Token has been revoked" and body["status"] == 401
    assert body["type"].endswith("/OAuthProblemJson")
    second = _refresh(amo_server, rotated)
    assert second.status_code == 200
    assert _refresh(amo_server, rotated).status_code == 401
    # both access tokens issued stay valid until they expire
    assert _contacts(amo_server, first.json()["access_token"]) == 200
    assert _contacts(amo_server, second.json()["access_token"]) == 200
    assert amo_server.tokens.status("refresh", second.json()["refresh_token"]) == "valid"


def test_bad_client_and_redirect_are_refused(amo_server: AmoSandboxServer) -> None:
    token = amo_server.options.refresh_token
    assert token
    wrong = _grant(
        amo_server, grant_type="refresh_token", refresh_token=token, client_secret="nope"
    )
    assert wrong.status_code == 401 and wrong.json()["hint"] == "Client authentication failed"
    redirect = _grant(
        amo_server, grant_type="refresh_token", refresh_token=token, redirect_uri="https://x"
    )
    assert redirect.status_code == 400
    unknown = _refresh(amo_server, "def50200-not-a-token")
    assert unknown.status_code == 400
    # none of these spent the real token
    assert _refresh(amo_server, token).status_code == 200


def test_access_tokens_expire(amo_state: AmoState) -> None:
    options = AmoOptions(access_token_ttl_s=0.3, rate_per_second=1000)
    with AmoSandboxServer(amo_state, options) as srv:
        answer = _refresh(srv, options.refresh_token or "")
        access = answer.json()["access_token"]
        assert answer.status_code == 200
        assert _contacts(srv, access) == 200
        time.sleep(0.35)
        assert _contacts(srv, access) == 401
        again = _refresh(srv, answer.json()["refresh_token"]).json()["access_token"]
        assert _contacts(srv, again) == 200
        srv.expire_access_tokens()
        assert _contacts(srv, again) == 401
        assert srv.stats()["401"] == 2


def test_long_lived_and_wrong_tokens(amo_server: AmoSandboxServer) -> None:
    assert _contacts(amo_server, amo_server.long_lived_token or "") == 200
    answer = requests.get(f"{amo_server.base_url}/api/v4/contacts", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert _contacts(amo_server, "wrong-token-123") == 401
    assert "wrong-token-123" not in repr(amo_server.options)
    assert amo_server.options.client_secret not in repr(amo_server.options)


def test_spent_tokens_stay_spent_across_a_restart(amo_state: AmoState, tmp_path) -> None:
    path = tmp_path / "amocrm.json"
    options = AmoOptions(rate_per_second=1000)
    with AmoSandboxServer(amo_state, options, state_path=path) as srv:
        rotated = _refresh(srv, options.refresh_token or "").json()["refresh_token"]
    again = AmoState.load(path)
    with AmoSandboxServer(again, AmoOptions(rate_per_second=1000)) as srv:
        assert _refresh(srv, options.refresh_token or "").status_code == 401
        assert _refresh(srv, rotated).status_code == 200
