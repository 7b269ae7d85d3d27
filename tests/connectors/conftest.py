"""Fixtures: a generated demo portal served by the HubSpot sandbox over loopback HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector, HubSpotSettings

try:
    from sandbox.hubspot.server import SandboxOptions, SandboxServer
    from sandbox.hubspot.state import render_truth
    from sandbox.portal import Portal, generate_portal
except ImportError:  # pragma: no cover - the sandbox is built in parallel
    SANDBOX = False
else:
    SANDBOX = True

needs_sandbox = pytest.mark.skipif(not SANDBOX, reason="the HubSpot sandbox is not available")

ANCHOR = date(2026, 3, 2)
TOKEN = "sandbox-token"


def fake_token() -> str:
    """A throwaway credential made at test time, so no token-shaped string sits in the repo."""
    return "test-token-" + secrets.token_hex(12)


@pytest.fixture(scope="session")
def portal() -> Portal:
    return generate_portal(contacts=300, seed=7, anchor=ANCHOR)


@pytest.fixture(scope="session")
def base_state(portal: Portal) -> Any:
    return render_truth(portal)


def options(**overrides: Any) -> SandboxOptions:
    values: dict[str, Any] = dict(
        token=TOKEN,
        burst_limit=190,
        burst_window_s=10.0,
        search_per_second=5,
        search_lag_s=0.0,
        fail_rate_5xx=0.0,
        latency_ms=0,
        drop_rate=0.0,
        seed=1,
    )
    values.update(overrides)
    return SandboxOptions(**values)


@contextmanager
def serve(state: Any, **overrides: Any) -> Iterator[SandboxServer]:
    with SandboxServer(state, options(**overrides), port=0) as srv:
        yield srv


@pytest.fixture
def server(base_state: Any) -> Iterator[SandboxServer]:
    """A fresh server over a private copy of the small portal's state."""
    with serve(base_state.copy()) as srv:
        yield srv


def settings_for(srv: SandboxServer, **overrides: Any) -> HubSpotSettings:
    values: dict[str, Any] = dict(
        access_token=srv.token,
        base_url=srv.base_url,
        portal="sandbox",
        search_lag_s=0.0,
        overlap_s=0.0,
        max_total_wait_s=30.0,
    )
    values.update(overrides)
    return HubSpotSettings(**values)


def connector_for(srv: SandboxServer, **overrides: Any) -> HubSpotConnector:
    return HubSpotConnector(settings_for(srv, **overrides))
