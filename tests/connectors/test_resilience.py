"""Rate limits, server errors, OAuth refresh and secret hygiene against the HubSpot sandbox."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from connectors.http import AuthError, ConnectorError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from tests.connectors.conftest import connector_for, fake_token, needs_sandbox

pytestmark = needs_sandbox


def _contact_ids(hub) -> list[str]:
    return sorted(str(r["id"]) for r in hub.client.list_objects("contacts", ["email"]))


def test_429_storm_is_waited_out_and_counted(server) -> None:
    hub = connector_for(server)
    clean = _contact_ids(hub)
    server.reset_stats()
    server.set_faults(storm_429=5)
    start = time.monotonic()
    assert _contact_ids(hub) == clean
    elapsed = time.monotonic() - start
    assert hub.stats.rate_limited == 5
    assert hub.stats.retries >= 5
    assert server.stats()["429"] == 5
    # Retry-After (or the rolling window) was honoured rather than hammering the server
    assert elapsed >= 0.9


def test_server_errors_are_retried_without_losing_records(server) -> None:
    hub = connector_for(server)
    clean = hub.extract(None, datetime.now(UTC))
    server.set_faults(fail_rate_5xx=0.2)
    noisy_hub = connector_for(server)
    noisy = noisy_hub.extract(None, datetime.now(UTC))
    server.set_faults(fail_rate_5xx=0.0)
    assert noisy_hub.stats.server_errors > 0 and noisy_hub.stats.retries > 0
    assert sorted(noisy.contacts["contact_id"]) == sorted(clean.contacts["contact_id"])
    assert sorted(noisy.activities["activity_id"]) == sorted(clean.activities["activity_id"])
    assert sorted(noisy.deals["deal_id"]) == sorted(clean.deals["deal_id"])


def test_secret_never_appears_in_errors_or_logs(server, caplog: pytest.LogCaptureFixture) -> None:
    secret = fake_token()
    hub = HubSpotConnector(
        HubSpotSettings(access_token=secret, base_url=server.base_url, max_total_wait_s=5)
    )
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthError) as info:
            hub.portal_info()
        server.set_faults(fail_rate_5xx=1.0)
        good = connector_for(server, max_attempts=2, max_total_wait_s=2)
        with pytest.raises(ConnectorError) as failing:
            good.portal_info()
        server.set_faults(fail_rate_5xx=0.0)
    assert info.value.status == 401
    for text in (str(info.value), repr(info.value), str(failing.value), caplog.text):
        assert secret not in text
        assert server.token not in text
    assert "HTTP 5" in str(failing.value)
    assert secret not in repr(hub.settings) and secret not in repr(hub)


def test_oauth_refresh_and_expired_token(server) -> None:
    settings = HubSpotSettings(
        client_id="sandbox-client-id",
        client_secret="sandbox-client-secret",
        refresh_token="sandbox-refresh-token",
        base_url=server.base_url,
    )
    hub = HubSpotConnector(settings)
    info = hub.portal_info()
    assert info.portal_id
    first_token = hub.client._oauth_token
    assert first_token and first_token != "sandbox-refresh-token"
    # the server expires the token; one 401 EXPIRED_AUTHENTICATION triggers one refresh
    server.expire_oauth_tokens()
    assert len(_contact_ids(hub)) > 0
    assert hub.client._oauth_token != first_token
