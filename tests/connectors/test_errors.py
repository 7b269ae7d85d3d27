"""Credentials, permissions and reachability: never retried (or briefly), one readable line each."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import pytest

from connectors.http import (
    AuthError,
    ConnectorError,
    PermissionDeniedError,
    TransportError,
    UnreachableError,
)
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.settings import REQUIRED_SCOPES
from tests.connectors.conftest import connector_for, fake_token, needs_sandbox

pytestmark = needs_sandbox


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def _oauth(server, **overrides: str) -> HubSpotConnector:
    values = dict(
        client_id="sandbox-client-id",
        client_secret="sandbox-client-secret",
        refresh_token="sandbox-refresh-token",
    )
    values.update(overrides)
    return HubSpotConnector(HubSpotSettings(base_url=server.base_url, **values))


def test_a_wrong_token_fails_at_once_and_says_what_to_check(server) -> None:
    secret = fake_token()
    hub = HubSpotConnector(HubSpotSettings(access_token=secret, base_url=server.base_url))
    server.reset_stats()
    with pytest.raises(AuthError) as info:
        hub.extract(None, datetime.now(UTC))
    assert server.stats()["requests"] == 1 and hub.stats.retries == 0
    text = str(info.value)
    assert text.startswith(
        f"HubSpot refused the access token (401 INVALID_AUTHENTICATION) at {server.base_url} — "
        "check HUBSPOT_ACCESS_TOKEN"
    )
    assert "HUBSPOT_REFRESH_TOKEN" in text and "\n" not in text
    assert secret not in text and secret not in info.value.technical
    assert info.value.status == 401 and "correlationId" in info.value.technical


def test_a_missing_scope_is_a_permission_error_that_names_it(server) -> None:
    server.set_faults(scopes=("crm.objects.contacts.read", "crm.schemas.contacts.read"))
    hub = connector_for(server)
    server.reset_stats()
    with pytest.raises(PermissionDeniedError) as info:
        hub.extract(None, datetime.now(UTC))  # contacts and activities pass, deals do not
    assert isinstance(info.value, AuthError) and info.value.status == 403
    # never retried; reads already in flight on the extract's other threads may see it too
    assert hub.stats.retries == 0
    assert 1 <= server.stats()["403"] <= hub.settings.read_workers
    assert info.value.missing_scopes == ["crm.objects.deals.read"]
    text = str(info.value)
    # a full extract reaches the deals through the contacts' associations
    assert text.startswith(
        "HubSpot denied POST /crm/v4/associations/contacts/deals/batch/read (403 MISSING_SCOPES)"
    )
    assert ": missing scope crm.objects.deals.read — give the private app" in text
    assert all(scope in text for scope in REQUIRED_SCOPES)
    # a write without its scope fails the same way, at once
    server.reset_stats()
    with pytest.raises(PermissionDeniedError, match=r"crm\.schemas\.contacts\.write"):
        hub.ensure_schema("en")
    assert server.stats()["403"] == 1


def test_oauth_refreshes_once_then_a_401_is_final(server) -> None:
    server.set_faults(oauth_token_ttl_s=0.0)  # every issued token is already expired
    hub = _oauth(server)
    server.reset_stats()
    with pytest.raises(AuthError) as info:
        hub.portal_info()
    routes = server.stats()["by_route"]
    assert routes["GET account"] == 2  # the call, and once more after the refresh
    assert str(info.value).startswith(
        "HubSpot refused the access token (401 EXPIRED_AUTHENTICATION)"
    )
    assert "check HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN" in str(
        info.value
    )


def test_a_refused_refresh_token_is_an_auth_error(server) -> None:
    wrong = fake_token()
    hub = _oauth(server, refresh_token=wrong)
    server.reset_stats()
    with pytest.raises(AuthError) as info:
        hub.portal_info()
    assert server.stats()["requests"] == 1
    text = str(info.value)
    assert text.startswith(
        f"HubSpot refused to refresh the OAuth token at {server.base_url} (400 BAD_REFRESH_TOKEN): "
        "missing or unknown refresh token — check HUBSPOT_CLIENT_ID"
    )
    assert wrong not in text


@pytest.mark.parametrize(
    ("host", "reason"),
    [("127.0.0.1:{port}", "connection refused"), ("no-such-host.invalid", "host name not found")],
)
def test_an_unreachable_base_url_fails_fast(host: str, reason: str) -> None:
    base_url = "http://" + host.format(port=_closed_port())
    hub = HubSpotConnector(HubSpotSettings(access_token=fake_token(), base_url=base_url))
    start = time.monotonic()
    with pytest.raises(UnreachableError) as info:
        hub.portal_info()
    elapsed = time.monotonic() - start
    assert isinstance(info.value, ConnectorError) and not isinstance(info.value, TransportError)
    assert str(info.value).startswith(f"cannot reach {base_url}: {reason} — check HUBSPOT_BASE_URL")
    assert hub.stats.requests == 3  # a blip is retried briefly, no more
    assert elapsed < 10.0  # a guard: the three attempts' backoff is well under a second


def test_read_timeouts_mid_run_are_still_retried(server) -> None:
    hub = connector_for(server, read_timeout_s=0.2, max_attempts=3)
    server.set_faults(latency_ms=400)
    with pytest.raises(TransportError) as info:
        hub.portal_info()
    server.set_faults(latency_ms=0)
    assert not isinstance(info.value, UnreachableError)
    assert hub.stats.requests == 3 and hub.stats.retries == 2
