"""`HubSpotConnector.check`: a read-only report on URL, credentials, account, scopes, fields."""

from __future__ import annotations

import socket

from connectors.base import CheckReport
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.settings import OPTIONAL_SCOPES, REQUIRED_SCOPES
from tests.connectors.conftest import connector_for, fake_token, needs_sandbox

pytestmark = needs_sandbox

HEAD = ["base URL", "credentials", "time zone", "currency"]
SCOPE_ITEMS = [f"scope {s}" for s in (*REQUIRED_SCOPES, *OPTIONAL_SCOPES)]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def _items(report: CheckReport) -> dict[str, tuple[bool, bool, str]]:
    return {i.name: (i.ok, i.warning, i.detail) for i in report.items}


def _failed(report: CheckReport) -> list[str]:
    return [i.name for i in report.items if not i.ok]


def _footprint(server) -> tuple[int, int, int, int]:
    """What a write would change: the state version, tasks, contact properties, groups."""
    state = server.state
    with state.lock:
        return (
            state.version,
            len(state.objects["tasks"]),
            len(state.properties["contacts"]),
            sum(len(g) for g in state.groups.values()),
        )


def _oauth(server) -> HubSpotConnector:
    return HubSpotConnector(
        HubSpotSettings(
            base_url=server.base_url,
            client_id="sandbox-client-id",
            client_secret="sandbox-client-secret",
            refresh_token="sandbox-refresh-token",
        )
    )


def test_a_good_portal_passes_with_its_account_and_time_zone(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    server.reset_stats()
    before = _footprint(server)
    report = hub.check("en")
    assert report.ok and report.crm == "hubspot"
    assert report.account_id == str(server.state.account["portalId"])
    names = [i.name for i in report.items]
    assert names[: len(HEAD) + len(SCOPE_ITEMS)] == HEAD + SCOPE_ITEMS
    items = _items(report)
    assert report.account_id in items["credentials"][2]
    assert items["time zone"][2].startswith("Europe/Riga")
    assert items["currency"][2].startswith("EUR")
    assert "field heatsync_temperature" in items and "field heatsync_task_key (tasks)" in items
    assert not [i.name for i in report.items if i.warning]  # schema in place, every scope granted
    assert all("\n" not in i.detail for i in report.items)
    assert server.stats()["writes"] == 0 and _footprint(server) == before


def test_a_fresh_portal_passes_and_check_writes_nothing(server) -> None:
    hub = connector_for(server)
    server.reset_stats()
    before = _footprint(server)
    report = hub.check("ru")
    assert report.ok
    temperature = _items(report)["field heatsync_temperature"]
    assert temperature[:2] == (True, True) and "first run" in temperature[2]
    assert _items(report)["group heatsync (tasks)"][:2] == (True, True)
    # the team's VIP flag exists but with another label: ensure_schema would update it
    vip = _items(report)["field heatsync_vip"]
    assert vip[:2] == (True, True) and "label" in vip[2]
    stats = server.stats()
    assert stats["writes"] == 0
    assert not [r for r in stats["by_route"] if r.split()[0] in ("PATCH", "PUT", "DELETE")]
    assert _footprint(server) == before
    assert "heatsync_temperature" not in server.state.properties["contacts"]
    assert "heatsync" not in server.state.groups["tasks"]


def test_a_wrong_token_is_a_failed_credentials_item_after_one_request(server) -> None:
    secret = fake_token()
    hub = HubSpotConnector(HubSpotSettings(access_token=secret, base_url=server.base_url))
    server.reset_stats()
    report = hub.check("en")
    assert [(i.name, i.ok) for i in report.items] == [("base URL", True), ("credentials", False)]
    assert not report.ok and report.account_id is None
    detail = report.items[1].detail
    assert detail.startswith("HubSpot refused the access token (401 INVALID_AUTHENTICATION)")
    assert "check HUBSPOT_ACCESS_TOKEN" in detail and secret not in detail
    assert server.stats()["requests"] == 1 and hub.stats.retries == 0


def test_a_closed_port_is_a_failed_base_url_item() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    hub = HubSpotConnector(HubSpotSettings(access_token=fake_token(), base_url=base_url))
    report = hub.check("en")
    assert [(i.name, i.ok) for i in report.items] == [("base URL", False)]
    assert report.items[0].detail.startswith(f"cannot reach {base_url}: connection refused")
    assert not report.ok and report.account_id is None


def test_a_missing_read_scope_is_named(server) -> None:
    granted = tuple(s for s in REQUIRED_SCOPES if s != "crm.objects.deals.read")
    server.set_faults(scopes=granted)
    hub = connector_for(server)
    server.reset_stats()
    report = hub.check("en")
    assert not report.ok and report.account_id == str(server.state.account["portalId"])
    assert _failed(report) == ["scope crm.objects.deals.read"]
    detail = _items(report)["scope crm.objects.deals.read"][2]
    assert "403 MISSING_SCOPES" in detail and "missing scope crm.objects.deals.read" in detail
    # the optional scope is not granted either: a warning, not a failure
    assert _items(report)["scope sales-email-read"][:2] == (True, True)
    assert server.stats()["writes"] == 0


def test_a_missing_write_scope_is_named(server) -> None:
    granted = tuple(s for s in REQUIRED_SCOPES if s != "crm.schemas.contacts.write")
    server.set_faults(scopes=granted)
    hub = connector_for(server)
    before = _footprint(server)
    report = hub.check("en")
    assert _failed(report) == ["scope crm.schemas.contacts.write"]
    detail = _items(report)["scope crm.schemas.contacts.write"][2]
    assert detail.startswith("not granted") and "give the private app" in detail
    assert _items(report)["scope crm.objects.contacts.write"][:2] == (True, False)
    assert _footprint(server) == before


def test_oauth_scopes_come_from_the_access_token_metadata(server) -> None:
    server.set_faults(scopes=tuple(s for s in REQUIRED_SCOPES if s != "crm.objects.contacts.write"))
    hub = _oauth(server)
    server.reset_stats()
    report = hub.check("lv")
    assert _failed(report) == ["scope crm.objects.contacts.write"]
    assert "give the OAuth app" in _items(report)["scope crm.objects.contacts.write"][2]
    routes = server.stats()["by_route"]
    assert routes["GET oauth/access-tokens/{id}"] == 1  # the token itself stays out of stats
    assert server.stats()["writes"] == 0


def test_a_property_of_the_wrong_type_fails_and_says_what_differs(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    path = f"{hub.settings.properties_path('contacts')}/heatsync_score"
    hub.client.http.request("DELETE", path, write=True)
    hub.client.create_property(
        "contacts",
        {
            "name": "heatsync_score",
            "label": "Score",
            "type": "string",
            "fieldType": "text",
            "groupName": "heatsync",
        },
    )
    report = hub.check("en")
    assert _failed(report) == ["field heatsync_score"]
    detail = _items(report)["field heatsync_score"][2]
    assert "string/text" in detail and "number/number" in detail


def test_a_label_or_description_drift_is_a_warning(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    hub.client.update_property("contacts", "heatsync_trend", {"description": "edited by hand"})
    report = hub.check("en")
    assert report.ok
    trend = _items(report)["field heatsync_trend"]
    assert trend[:2] == (True, True) and "description" in trend[2] and "label" not in trend[2]
    assert [i.name for i in report.items if i.warning] == ["field heatsync_trend"]
