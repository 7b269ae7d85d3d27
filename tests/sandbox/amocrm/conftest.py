"""Fixtures of the amoCRM sandbox tests: a small rendered account, servers on loopback ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest
import requests

from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState

ANCHOR = date(2026, 5, 1)


@pytest.fixture(scope="session")
def amo_state_json() -> str:
    return json.dumps(generate_state(120, seed=5, anchor=ANCHOR).to_json())


@pytest.fixture
def amo_state(amo_state_json: str) -> AmoState:
    """A fresh, independent copy of the small demo account."""
    return AmoState.from_json(json.loads(amo_state_json))


@pytest.fixture
def amo_server(amo_state: AmoState) -> Iterator[AmoSandboxServer]:
    """A server without a practical rate limit (tests of the limit set their own)."""
    with AmoSandboxServer(amo_state, AmoOptions(rate_per_second=100_000), port=0) as srv:
        yield srv


@pytest.fixture
def amo_api(amo_server: AmoSandboxServer) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {amo_server.long_lived_token}"
    yield session
    session.close()
