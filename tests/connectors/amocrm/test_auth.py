"""amoCRM auth and HTTP behaviour against the sandbox: the rotating token store, concurrent
refreshes, a crash around a refresh, the 403 block, 429 backoff and 204 as an empty answer."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from connectors.amocrm import AmoCrmConnector, AmoCrmSettings
from connectors.amocrm.client import AccountBlockedError
from connectors.amocrm.tokens import TokenStore
from connectors.http import AuthError
from sandbox.amocrm.server import AmoSandboxServer
from tests.connectors.amocrm.conftest import llt_settings, oauth_settings, token_calls


def _store_file(token_dir: Path) -> Path:
    files = [p for p in token_dir.glob("amocrm-*.json")]
    assert len(files) == 1, files
    return files[0]


def test_rotation_across_two_connector_instances(server: AmoSandboxServer, tmp_path: Path) -> None:
    initial = server.options.refresh_token
    assert initial
    first = AmoCrmConnector(oauth_settings(server, tmp_path))
    assert first.portal_info().portal_id == "30551234"
    assert token_calls(server) == 1
    assert server.tokens.status("refresh", initial) == "spent"
    path = _store_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert initial not in path.read_text()  # the spent token is not kept

    # a second run: the same initial token is still in the environment, the stored access token
    # is still valid -> no refresh at all
    second = AmoCrmConnector(oauth_settings(server, tmp_path))
    second.portal_info()
    assert token_calls(server) == 1

    # the access token expires: the next run refreshes with the stored (rotated) refresh token,
    # never with the spent initial one
    server.expire_access_tokens()
    third = AmoCrmConnector(oauth_settings(server, tmp_path))
    third.client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == 2
    fourth = AmoCrmConnector(oauth_settings(server, tmp_path))
    fourth.client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == 2
    for conn in (first, second, third, fourth):
        conn.client.close()


def test_a_new_refresh_token_in_the_environment_starts_a_new_chain(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    AmoCrmConnector(oauth_settings(server, tmp_path)).portal_info()
    # the user authorizes again: a new code gives a new refresh token, put in the environment
    import requests

    opts = server.options
    answer = requests.post(
        f"{server.base_url}/oauth2/access_token",
        json={
            "client_id": opts.client_id,
            "client_secret": opts.client_secret,
            "redirect_uri": opts.redirect_uri,
            "grant_type": "authorization_code",
            "code": server.issue_code(),
        },
        timeout=5,
    ).json()
    new_grant = answer["refresh_token"]
    before = token_calls(server)
    conn = AmoCrmConnector(oauth_settings(server, tmp_path, refresh_token=new_grant))
    conn.client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == before + 1
    assert server.tokens.status("refresh", new_grant) == "spent"  # exchanged once, then rotated
    # and the run after it keeps the new chain
    again = AmoCrmConnector(oauth_settings(server, tmp_path, refresh_token=new_grant))
    server.expire_access_tokens()
    again.client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == before + 2


def test_a_mistyped_new_grant_keeps_the_stored_chain(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    AmoCrmConnector(oauth_settings(server, tmp_path)).portal_info()
    wrong = AmoCrmConnector(oauth_settings(server, tmp_path, refresh_token="not-a-real-token"))
    with pytest.raises(AuthError, match="refused the refresh token"):
        wrong.portal_info()
    good = AmoCrmConnector(oauth_settings(server, tmp_path))
    server.expire_access_tokens()
    good.client.get("/contacts", [("limit", 1)])  # the stored chain still works


def test_an_authorization_code_is_exchanged_once(server: AmoSandboxServer, tmp_path: Path) -> None:
    code = server.issue_code()
    settings = oauth_settings(server, tmp_path, refresh_token=None, auth_code=code)
    AmoCrmConnector(settings).portal_info()
    AmoCrmConnector(settings).portal_info()
    assert token_calls(server) == 1
    assert server.tokens.status("codes", code) == "spent"


def _refresh_in_child(values: dict[str, Any]) -> str:
    try:
        conn = AmoCrmConnector(AmoCrmSettings(**values))
        conn.client.get("/contacts", [("limit", 1)])
        return "ok"
    except Exception as exc:  # reported to the parent
        return f"{type(exc).__name__}: {exc}"


def test_two_processes_refreshing_at_once_spend_the_token_once(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    settings = oauth_settings(server, tmp_path)
    values = settings.model_dump()
    for key in ("client_secret", "refresh_token"):
        values[key] = getattr(settings, key).get_secret_value()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_refresh_in_child, [values] * 3)
    assert results == ["ok", "ok", "ok"]
    assert token_calls(server) == 1

    # and when the access token expires under both at once, again one refresh
    server.expire_access_tokens()
    with ctx.Pool(2) as pool:
        results = pool.map(_refresh_in_child, [values] * 2)
    assert results == ["ok", "ok"]
    assert token_calls(server) == 2


class SimulatedCrash(BaseException):
    pass


def test_a_crash_between_the_answer_and_the_save_is_explained(
    server: AmoSandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    AmoCrmConnector(oauth_settings(server, tmp_path)).portal_info()
    server.expire_access_tokens()
    real_write = TokenStore.write

    def crash_on_save(self: TokenStore, data: dict[str, Any]) -> None:
        if data.get("inflight") is None:  # the save of amoCRM's answer
            raise SimulatedCrash()
        real_write(self, data)

    monkeypatch.setattr(TokenStore, "write", crash_on_save)
    with pytest.raises(SimulatedCrash):
        AmoCrmConnector(oauth_settings(server, tmp_path)).client.get("/contacts")
    monkeypatch.setattr(TokenStore, "write", real_write)
    assert token_calls(server) == 2  # amoCRM answered (and spent the token); nothing was saved

    with pytest.raises(AuthError) as caught:
        AmoCrmConnector(oauth_settings(server, tmp_path)).client.get("/contacts")
    text = str(caught.value)
    assert "interrupted before its answer was saved" in text
    assert "authorize the integration again" in text
    assert token_calls(server) == 3  # tried once, no loop


def test_a_crash_before_the_request_leaves_the_chain_usable(
    server: AmoSandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    AmoCrmConnector(oauth_settings(server, tmp_path)).portal_info()
    server.expire_access_tokens()
    conn = AmoCrmConnector(oauth_settings(server, tmp_path))
    real = conn.client.token_http.request

    def die_before_sending(method: str, path: str, **kw: Any) -> Any:
        if path.endswith("/oauth2/access_token"):
            raise SimulatedCrash()  # the in-flight record is written, the request never left
        return real(method, path, **kw)

    monkeypatch.setattr(conn.client.token_http, "request", die_before_sending)
    with pytest.raises(SimulatedCrash):
        conn.client.get("/contacts")
    # the next run finds the in-flight record, tries the token once more: it was never spent
    AmoCrmConnector(oauth_settings(server, tmp_path)).client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == 2


def test_a_403_block_stops_the_run_with_a_clear_message(server: AmoSandboxServer) -> None:
    server.block(60)
    conn = AmoCrmConnector(llt_settings(server))
    with pytest.raises(AccountBlockedError) as caught:
        conn.portal_info()
    text = str(caught.value)
    assert "blocked the account" in text and "stops this run" in text
    assert server.stats()["requests"] == 1  # not retried
    other = AmoCrmConnector(llt_settings(server))  # another step of the same run
    with pytest.raises(AccountBlockedError):
        other.client.get("/contacts")
    assert server.stats()["requests"] == 1  # refused without asking again
    # a step in another process learns it from the account's pace file
    values = llt_settings(server).model_dump()
    values["access_token"] = server.long_lived_token
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        (result,) = pool.map(_burst_in_child, [values])
    assert result.startswith("AccountBlockedError") and "blocked the account" in result
    assert server.stats()["requests"] == 1


def test_429_backs_off_and_succeeds(server: AmoSandboxServer) -> None:
    server.set_faults(storm_429=2)
    conn = AmoCrmConnector(llt_settings(server))
    assert conn.portal_info().time_zone == "Europe/Riga"
    assert server.stats()["429"] == 2
    assert conn.stats.rate_limited == 2 and conn.stats.retries == 2
    assert server.stats()["403"] == 0


def test_the_pace_stays_under_seven_requests_a_second(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    for _ in range(20):
        conn.client.get("/account")
    assert server.stats()["429"] == 0


def test_204_is_an_empty_answer(connector: AmoCrmConnector) -> None:
    params = [("filter[updated_at][from]", 1), ("filter[updated_at][to]", 2)]
    assert list(connector.client.pages("/contacts", "contacts", params)) == []
    assert connector.client.get("/contacts/1") is None


def _burst_in_child(values: dict[str, Any]) -> str:
    try:
        conn = AmoCrmConnector(AmoCrmSettings(**values))
        for _ in range(12):
            conn.client.get("/account")
        return f"ok {conn.stats.rate_limited}"
    except Exception as exc:  # reported to the parent
        return f"{type(exc).__name__}: {exc}"


def test_processes_of_one_account_share_one_budget(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    settings = llt_settings(server, token_dir=tmp_path)
    values = settings.model_dump()
    values["access_token"] = server.long_lived_token
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_burst_in_child, [values] * 3)
    assert results == ["ok 0"] * 3
    stats = server.stats()
    assert stats["by_route"]["GET /api/v4/account"] == 36
    assert stats["429"] == 0 and stats["403"] == 0


def test_many_threads_waiting_for_a_refresh_do_not_starve_it(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    conn = AmoCrmConnector(oauth_settings(server, tmp_path))
    conn.portal_info()
    server.expire_access_tokens()
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(conn.client.get, "/account") for _ in range(12)]
        answers = [f.result(timeout=60) for f in futures]
    assert all(a["id"] == 30551234 for a in answers)
    assert token_calls(server) == 2  # one refresh for all of them
