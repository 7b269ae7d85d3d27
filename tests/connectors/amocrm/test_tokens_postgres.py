"""amoCRM's rotating refresh tokens kept in PostgreSQL (HEATSYNC_POSTGRES_URL), shared by run
workers that have no token directory in common: the machine's PostgreSQL, a new database per
test (tests/deploy/conftest.py: skipped when unreachable, a failure under CI=true), and the
amoCRM sandbox, whose refresh tokens are single-use and rotate."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from connectors.amocrm import AmoCrmConnector
from connectors.amocrm.env import CRM
from connectors.amocrm.tokens import TOKENS_TABLE, PostgresTokenStore, libpq_url
from connectors.http import AuthError
from sandbox.amocrm.server import AmoSandboxServer
from tests.connectors.amocrm.conftest import token_calls
from tests.deploy import conftest as postgres_fixtures

# the machine's PostgreSQL and a new database per test (tests/deploy/conftest.py)
postgres_server = postgres_fixtures.postgres_server
postgres_url = postgres_fixtures.postgres_url


def _env(server: AmoSandboxServer, postgres: str | None) -> dict[str, str]:
    opts = server.options
    env = {
        "AMOCRM_BASE_URL": server.base_url,
        "AMOCRM_CLIENT_ID": opts.client_id,
        "AMOCRM_CLIENT_SECRET": opts.client_secret,
        "AMOCRM_REDIRECT_URI": opts.redirect_uri,
        "AMOCRM_REFRESH_TOKEN": str(opts.refresh_token),
    }
    if postgres is not None:
        env["HEATSYNC_POSTGRES_URL"] = postgres
    return env


def _connector(env: dict[str, str], machine: Path) -> AmoCrmConnector:
    connector = CRM.build("default", env, machine)
    assert isinstance(connector, AmoCrmConnector)
    return connector


def _worker(env: dict[str, str], machine: str, start_at: float) -> str:
    """One run worker on its own machine (its own state directory): read contacts at
    `start_at`, refreshing the token if it needs to."""
    try:
        connector = _connector(env, Path(machine))
        time.sleep(max(0.0, start_at - time.time()))
        connector.client.get("/contacts", [("limit", 1)])
        return "ok"
    except Exception as exc:  # reported to the parent
        return f"{type(exc).__name__}: {exc}"


def _at_once(env: dict[str, str], machines: list[Path]) -> list[str]:
    start_at = time.time() + 4.0  # after both processes have imported everything
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(machines)) as pool:
        return pool.starmap(_worker, [(env, str(m), start_at) for m in machines])


def _chains(url: str) -> list[dict[str, Any]]:
    import json

    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT body FROM {TOKENS_TABLE}")
        return [json.loads(row[0]) for row in cursor.fetchall()]


def test_two_machines_refreshing_at_once_spend_the_token_once(
    server: AmoSandboxServer, postgres_url: str, tmp_path: Path
) -> None:
    env = _env(server, postgres_url)
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]
    initial = str(server.options.refresh_token)

    assert _at_once(env, machines) == ["ok", "ok"]
    assert token_calls(server) == 1  # one worker exchanged the grant, the other used its answer
    assert server.tokens.status("refresh", initial) == "spent"
    (chain,) = _chains(postgres_url)
    assert chain["refresh_token"] and chain["inflight"] is None
    assert not [f for m in machines for f in m.joinpath("tokens").glob("amocrm-*.json")]

    # the access token expires under both at once: again one refresh, and both work
    for round_ in (2, 3):
        server.expire_access_tokens()
        assert _at_once(env, machines) == ["ok", "ok"]
        assert token_calls(server) == round_
        spent = chain["refresh_token"]
        (chain,) = _chains(postgres_url)
        assert server.tokens.status("refresh", spent) == "spent"
        assert chain["refresh_token"] != spent

    # a third machine joins later and continues the same chain
    server.expire_access_tokens()
    assert _worker(env, str(tmp_path / "machine-c"), 0.0) == "ok"
    assert token_calls(server) == 4


def test_without_a_shared_store_two_machines_break_the_chain(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    """What the shared store prevents: two token directories both spend the single-use grant."""
    env = _env(server, None)
    results = _at_once(env, [tmp_path / "machine-a", tmp_path / "machine-b"])
    assert results.count("ok") == 1
    (refused,) = [r for r in results if r != "ok"]
    assert "refused the refresh token" in refused


def test_a_chain_kept_in_the_token_directory_carries_over(
    server: AmoSandboxServer, postgres_url: str, tmp_path: Path
) -> None:
    machine = tmp_path / "machine"
    _connector(_env(server, None), machine).client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == 1  # the grant is spent; the file holds the chain

    server.expire_access_tokens()
    _connector(_env(server, postgres_url), machine).client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == 2  # the file's refresh token, not the spent grant
    (chain,) = _chains(postgres_url)
    assert chain["inflight"] is None
    # from now on the row is the chain, wherever the next worker runs
    server.expire_access_tokens()
    elsewhere = tmp_path / "another-machine"
    _connector(_env(server, postgres_url), elsewhere).client.get("/contacts", [("limit", 1)])
    assert token_calls(server) == 3


class SimulatedCrash(BaseException):
    pass


def test_a_crash_between_the_answer_and_the_save_is_explained(
    server: AmoSandboxServer,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _env(server, postgres_url)
    _connector(env, tmp_path).client.get("/contacts", [("limit", 1)])
    server.expire_access_tokens()
    real_write = PostgresTokenStore.write

    def crash_on_save(self: PostgresTokenStore, data: dict[str, Any]) -> None:
        if data.get("inflight") is None:  # the save of amoCRM's answer
            raise SimulatedCrash()
        real_write(self, data)

    monkeypatch.setattr(PostgresTokenStore, "write", crash_on_save)
    with pytest.raises(SimulatedCrash):
        _connector(env, tmp_path).client.get("/contacts")
    monkeypatch.setattr(PostgresTokenStore, "write", real_write)
    assert token_calls(server) == 2
    (chain,) = _chains(postgres_url)
    assert chain["inflight"] is not None  # committed before the request was sent

    with pytest.raises(AuthError) as caught:
        _connector(env, tmp_path).client.get("/contacts")
    assert "interrupted before its answer was saved" in str(caught.value)
    assert token_calls(server) == 3


def test_the_lock_waits_for_the_holder_and_times_out(
    server: AmoSandboxServer, postgres_url: str
) -> None:
    from connectors.amocrm.tokens import TokenStoreError

    base, client_id = server.base_url, server.options.client_id
    holder = PostgresTokenStore(postgres_url, base, client_id)
    waiter = PostgresTokenStore(postgres_url, base, client_id, lock_timeout_s=0.5)
    with holder.locked():
        started = time.monotonic()
        with pytest.raises(TokenStoreError, match="timed out waiting"), waiter.locked():
            pass
        assert time.monotonic() - started >= 0.4
    with waiter.locked():  # released with the holder's transaction
        assert waiter.read() is None


def test_the_pipelines_portal_keeps_its_chain_in_postgres(
    server: AmoSandboxServer, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEATSYNC_POSTGRES_URL is the deployment's: it reaches the connector a portal is built
    with (pipelines.portals passes only the portal's own variables)."""
    from pipelines.config import heatsync_config
    from pipelines.portals import configured_portals

    for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_REFRESH_TOKEN", "HEATSYNC_PORTALS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _env(server, postgres_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HEATSYNC_CRM", "amocrm")
    monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path))
    (portal,) = configured_portals(os.environ)
    connector = portal.connector(os.environ, portal.config(heatsync_config(os.environ)))
    assert connector.portal_info().portal_id
    assert len(_chains(postgres_url)) == 1
    assert not list(tmp_path.rglob("amocrm-*.json"))
