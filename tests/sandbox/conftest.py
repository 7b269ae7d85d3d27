"""Shared fixtures: a small rendered portal (generated once) and servers on free loopback ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest
import requests

from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import HubSpotState, generate_state

ANCHOR = date(2026, 5, 1)


@pytest.fixture(scope="session")
def state_text() -> str:
    return json.dumps(generate_state(300, seed=5, anchor=ANCHOR).to_json())


@pytest.fixture
def state(state_text: str) -> HubSpotState:
    """A fresh, independent copy of the small demo portal."""
    return HubSpotState.from_json(json.loads(state_text))


@pytest.fixture
def server(state: HubSpotState) -> Iterator[SandboxServer]:
    with SandboxServer(state, SandboxOptions(token="test-token"), port=0) as srv:
        yield srv


@pytest.fixture
def api(server: SandboxServer) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    yield session
    session.close()
