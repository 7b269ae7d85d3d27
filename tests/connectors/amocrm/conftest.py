"""Fixtures: a small rendered amoCRM account served by the amoCRM sandbox over loopback HTTP."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.amocrm import AmoCrmConnector, AmoCrmSettings
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState

ANCHOR = date(2026, 5, 1)


def fresh_options(**overrides: Any) -> AmoOptions:
    """Sandbox options with throwaway credentials made at test time (no secret in the repo)."""
    values: dict[str, Any] = dict(
        client_id="test-client-" + secrets.token_hex(4),
        client_secret="test-secret-" + secrets.token_hex(12),
        redirect_uri="https://heatsync.example/amocrm/callback",
        refresh_token="test-refresh-" + secrets.token_hex(16),
        long_lived_token="test-llt-" + secrets.token_hex(16),
        auth_code="test-code-" + secrets.token_hex(16),
        rate_per_second=7,
    )
    values.update(overrides)
    return AmoOptions(**values)


@pytest.fixture(scope="session")
def amo_state_json() -> str:
    return json.dumps(generate_state(120, seed=5, anchor=ANCHOR).to_json())


@pytest.fixture
def amo_state(amo_state_json: str) -> AmoState:
    return AmoState.from_json(json.loads(amo_state_json))


@contextmanager
def serve(state: AmoState, **overrides: Any) -> Iterator[AmoSandboxServer]:
    with AmoSandboxServer(state, fresh_options(**overrides), port=0) as srv:
        yield srv


@pytest.fixture
def server(amo_state: AmoState) -> Iterator[AmoSandboxServer]:
    with serve(amo_state) as srv:
        yield srv


def oauth_settings(srv: AmoSandboxServer, token_dir: Path, **extra: Any) -> AmoCrmSettings:
    opts = srv.options
    values: dict[str, Any] = dict(
        base_url=srv.base_url,
        client_id=opts.client_id,
        client_secret=opts.client_secret,
        redirect_uri=opts.redirect_uri,
        refresh_token=opts.refresh_token,
        token_dir=token_dir,
        max_total_wait_s=30.0,
    )
    values.update(extra)
    return AmoCrmSettings(**values)


PACE_DIR = Path(tempfile.gettempdir()) / "heatsync-amocrm-tests"


def llt_settings(srv: AmoSandboxServer, **extra: Any) -> AmoCrmSettings:
    values: dict[str, Any] = dict(
        base_url=srv.base_url,
        access_token=srv.long_lived_token,
        max_total_wait_s=30.0,
        # the account's pace file: one per sandbox (a port may come back in a later test)
        token_dir=PACE_DIR / srv.options.client_id,
    )
    values.update(extra)
    return AmoCrmSettings(**values)


@pytest.fixture
def connector(server: AmoSandboxServer) -> Iterator[AmoCrmConnector]:
    conn = AmoCrmConnector(llt_settings(server))
    yield conn
    conn.client.close()


def token_calls(srv: AmoSandboxServer) -> int:
    return int(srv.stats()["by_route"].get("POST /oauth2/access_token", 0))
