"""Secrets never reach what heatsync and Dagster record.

`heatsync run` (and `heatsync check`) is run against both sandboxes with distinctive credentials
made at test time, under injected 5xx, access tokens expired mid-run, a wrong token and a
refused refresh. Then every byte under DAGSTER_HOME (SQLite run and event storage, compute logs)
and HEATSYNC_HOME (store, quarantine, change log; Parquet files also read as tables) except the
amoCRM token store, the captured stdout/stderr and every log record (heatsync, Dagster, urllib3
at DEBUG) are searched for each credential and for every token the sandboxes issued: the full
value, its first and last 16 characters and its URL-encoded form. The token store, which must
hold the refresh token, is checked for modes 0700/0600 instead. Unit tests check the HTTP
layer's logging and error texts directly.
"""

from __future__ import annotations

import logging
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest
import requests

import connectors.hubspot.server_rules  # noqa: F401  (registers the token-bearing URL shapes)
from connectors.http import AuthError, JsonHttp, RateLimiter, log, redact
from pipelines.cli import main
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as amo_state
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state as hubspot_state
from tests.crm_variables import CRM_VARIABLES


def _secret(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(16)}"


def _needles(value: str) -> set[str]:
    return {value, value[:16], value[-16:], quote(value, safe=""), quote_plus(value)}


class Recorded:
    """What one test recorded: the homes, the captured output and the log records."""

    def __init__(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        self.home = tmp_path / "home"
        self.dagster = tmp_path / "dagster"
        self.caplog = caplog
        self.output: list[str] = []

    def texts(self) -> Iterator[tuple[str, str]]:
        """(where, text) of everything recorded except the token store."""
        tokens = self.home / "tokens"
        for root in (self.home, self.dagster):
            for path in sorted(root.rglob("*")):
                if path.is_file() and tokens not in path.parents:
                    yield str(path), path.read_bytes().decode("latin-1")
                    if path.suffix == ".parquet":  # its pages may be compressed
                        yield f"{path} (read)", pd.read_parquet(path).to_json(default_handler=str)
        for i, text in enumerate(self.output):
            yield f"output {i}", text
        for record in self.caplog.records:
            yield f"log {record.name}", f"{record.getMessage()} {record.args!r} {record.exc_text}"
        yield "log text", self.caplog.text

    def assert_clean(self, named: dict[str, str]) -> None:
        assert any(self.dagster.rglob("*.db")), "Dagster recorded nothing"
        leaks = [
            f"{name} in {where}"
            for where, text in self.texts()
            for name, value in named.items()
            if any(needle in text for needle in _needles(value))
        ]
        assert not leaks, leaks


@pytest.fixture
def recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Recorded:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in CRM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    caplog.set_level(logging.DEBUG)
    for name in ("heatsync", "urllib3", "requests", "dagster"):
        caplog.set_level(logging.DEBUG, logger=name)
    return Recorded(tmp_path, caplog)


def _run(recorded: Recorded, capfd: pytest.CaptureFixture[str], command: str = "run") -> int:
    code = main([command])
    out, err = capfd.readouterr()
    recorded.output += [out, err]
    return code


class _Expirer:
    """Expires every access token a sandbox issued once, mid-run: after `after` more requests."""

    def __init__(self, server: SandboxServer | AmoSandboxServer, after: int = 12) -> None:
        self._server = server
        self._after = after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._wait_and_expire, daemon=True)
        self.expired = False

    def _requests(self) -> int:
        return int(self._server.stats()["requests"])

    def _wait_and_expire(self) -> None:
        due = self._requests() + self._after
        while not self._stop.wait(0.02):
            if self._requests() >= due:
                if isinstance(self._server, SandboxServer):
                    self._server.expire_oauth_tokens()
                else:
                    self._server.expire_access_tokens()
                self.expired = True
                return

    def __enter__(self) -> _Expirer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------------ HubSpot


@pytest.fixture
def hubspot(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SandboxServer, dict[str, str]]]:
    named = {
        "private app token": _secret("hs-pat"),
        "client secret": _secret("hs-client-secret"),
        "refresh token": _secret("hs-refresh"),
        "auth code": _secret("hs-code"),
    }
    options = SandboxOptions(
        token=named["private app token"],
        client_id="hs-client-" + secrets.token_hex(4),
        client_secret=named["client secret"],
        refresh_token=named["refresh token"],
        oauth_code=named["auth code"],
        fail_rate_5xx=0.05,
    )
    with SandboxServer(hubspot_state(30, seed=7), options, port=0) as server:
        monkeypatch.setenv("HUBSPOT_BASE_URL", server.base_url)
        yield server, named


def test_hubspot_private_app_token_leaves_no_secret(
    hubspot: tuple[SandboxServer, dict[str, str]],
    recorded: Recorded,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, named = hubspot
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", named["private app token"])
    assert _run(recorded, capfd) == 0
    assert server.stats()["5xx"] > 0

    named["wrong token"] = _secret("hs-wrong-pat")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", named["wrong token"])
    assert _run(recorded, capfd) == 1
    assert "refused the access token" in recorded.output[-1]
    recorded.assert_clean(named)


def test_hubspot_oauth_leaves_no_secret(
    hubspot: tuple[SandboxServer, dict[str, str]],
    recorded: Recorded,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, named = hubspot
    monkeypatch.setenv("HUBSPOT_CLIENT_ID", server.options.client_id)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", named["client secret"])
    monkeypatch.setenv("HUBSPOT_REFRESH_TOKEN", named["refresh token"])
    server.set_faults(fail_rate_5xx=0.0)
    assert _run(recorded, capfd, "check") == 0  # introspection: the token in the URL path
    server.set_faults(fail_rate_5xx=0.05)
    with _Expirer(server) as expirer:
        assert _run(recorded, capfd) == 0
    assert expirer.expired and server.stats()["5xx"] > 0

    named["wrong refresh token"] = _secret("hs-wrong-refresh")
    monkeypatch.setenv("HUBSPOT_REFRESH_TOKEN", named["wrong refresh token"])
    assert _run(recorded, capfd) == 1
    assert recorded.output[-1].strip(), "a refused refresh says so"
    with server._meta:
        issued = list(server._oauth)
    assert len(issued) >= 2, "the run refreshed after its access token expired"
    named |= {f"OAuth access token {i}": token for i, token in enumerate(issued)}
    recorded.assert_clean(named)


# ------------------------------------------------------------------------------------ amoCRM


def _spy_on_issued_tokens(server: AmoSandboxServer) -> list[str]:
    """Every access and refresh token the sandbox's token endpoint answers, as it answers."""
    issued: list[str] = []
    answer = server.tokens.token_endpoint

    def spy(req: Any) -> Any:
        response = answer(req)
        body = response.body if isinstance(response.body, dict) else {}
        issued.extend(str(body[k]) for k in ("access_token", "refresh_token") if k in body)
        return response

    server.tokens.token_endpoint = spy  # type: ignore[method-assign]
    return issued


@pytest.fixture
def amocrm(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AmoSandboxServer, dict[str, str]]]:
    named = {
        "client secret": _secret("amo-client-secret"),
        "refresh token": _secret("amo-refresh"),
        "long-lived token": _secret("amo-llt"),
    }
    options = AmoOptions(
        client_id="amo-client-" + secrets.token_hex(4),
        client_secret=named["client secret"],
        redirect_uri="https://heatsync.example/amocrm/callback",
        refresh_token=named["refresh token"],
        long_lived_token=named["long-lived token"],
        auth_code=None,
        rate_per_second=50,
        fail_rate_5xx=0.03,
    )
    with AmoSandboxServer(amo_state(30, seed=9), options, port=0) as server:
        monkeypatch.setenv("AMOCRM_BASE_URL", server.base_url)
        yield server, named


def test_amocrm_oauth_chain_leaves_no_secret_and_the_token_store_is_private(
    amocrm: tuple[AmoSandboxServer, dict[str, str]],
    recorded: Recorded,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, named = amocrm
    issued = _spy_on_issued_tokens(server)
    named["auth code"] = server.issue_code()
    for name, value in {
        "AMOCRM_CLIENT_ID": server.options.client_id,
        "AMOCRM_CLIENT_SECRET": named["client secret"],
        "AMOCRM_REDIRECT_URI": server.options.redirect_uri,
        "AMOCRM_AUTH_CODE": named["auth code"],
    }.items():
        monkeypatch.setenv(name, value)
    assert _run(recorded, capfd, "check") == 0  # the code starts a chain
    monkeypatch.delenv("AMOCRM_AUTH_CODE")
    monkeypatch.setenv("AMOCRM_REFRESH_TOKEN", named["refresh token"])
    with _Expirer(server, after=4) as expirer:
        assert _run(recorded, capfd) == 0  # a new grant: a new chain, rotated mid-run
    assert expirer.expired and server.stats()["5xx"] > 0

    named["wrong client secret"] = _secret("amo-wrong-secret")
    monkeypatch.setenv("AMOCRM_CLIENT_SECRET", named["wrong client secret"])
    server.expire_access_tokens()
    assert _run(recorded, capfd) == 1  # the refresh is refused
    assert recorded.output[-1].strip(), "a refused refresh says so"
    assert len(issued) >= 4, "two grants, and a refresh after the access token expired"
    named |= {f"issued token {i}": token for i, token in enumerate(issued)}
    recorded.assert_clean(named)

    tokens = recorded.home / "tokens"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o700
    files = [p for p in tokens.iterdir() if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files


def test_amocrm_long_lived_token_leaves_no_secret(
    amocrm: tuple[AmoSandboxServer, dict[str, str]],
    recorded: Recorded,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, named = amocrm
    monkeypatch.setenv("AMOCRM_ACCESS_TOKEN", named["long-lived token"])
    assert _run(recorded, capfd) == 0
    assert server.stats()["5xx"] > 0
    named["wrong long-lived token"] = _secret("amo-wrong-llt")
    monkeypatch.setenv("AMOCRM_ACCESS_TOKEN", named["wrong long-lived token"])
    assert _run(recorded, capfd) == 1
    assert recorded.output[-1].strip()
    recorded.assert_clean(named)


# ------------------------------------------------------------------------------------ HTTP layer


class _Answer:
    """A fake `requests.Session` answering every request with one status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append({"method": method, "url": url, **kwargs})
        resp = requests.Response()
        resp.status_code = self.status
        resp._content = repr(self.body).replace("'", '"').encode()
        resp.headers["Content-Type"] = "application/json"
        resp.url = url
        return resp


def _http(session: _Answer, token: str) -> JsonHttp:
    return JsonHttp(
        "http://127.0.0.1:9",
        limiter=RateLimiter(100, 10.0, 10),
        auth=lambda: {"Authorization": f"Bearer {token}"},
        session=session,  # type: ignore[arg-type]
        sleep=lambda _s: None,
    )


def test_http_logs_no_authorization_header_and_errors_redact_tokens_in_urls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, code = _secret("bearer"), _secret("code")
    caplog.set_level(logging.DEBUG)
    session = _Answer(503, {"message": f"upstream said Bearer {token}"})
    with pytest.raises(Exception) as failed:
        _http(session, token).request("GET", f"/oauth/v1/access-tokens/{token}?code={code}")
    assert session.sent[0]["headers"]["Authorization"] == f"Bearer {token}"
    assert len(session.sent) > 1 and caplog.records, "retries were logged"
    texts = [str(failed.value), caplog.text, *(r.getMessage() for r in caplog.records)]
    for text in texts:
        assert token not in text and code not in text, text
        assert "Authorization" not in text, text

    session = _Answer(401, {"message": "bad token"})
    with pytest.raises(AuthError) as refused:
        _http(session, token).request("POST", f"/oauth2/access_token?refresh_token={token}")
    assert token not in str(refused.value) and token not in refused.value.technical


def test_urllib3_debug_lines_redact_a_token_in_the_path(caplog: pytest.LogCaptureFixture) -> None:
    token = "sbx-oauth-" + secrets.token_urlsafe(24)
    path = f"/oauth/v1/access-tokens/{token}"
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s', "http", "127.0.0.1", 80, "GET", path, "HTTP/1.1", 200, None
    )
    logging.getLogger("urllib3.util.retry").debug("Incremented Retry for (url='%s'): %r", path, 0)
    assert len(caplog.records) == 2
    assert token not in caplog.text and caplog.text.count("access-tokens/***") == 2
    assert redact(path) == "/oauth/v1/access-tokens/***"
    assert log.filters, "the shared HTTP logger redacts"
