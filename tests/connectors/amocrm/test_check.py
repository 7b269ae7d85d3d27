"""`AmoCrmConnector.check`: a read-only report on URL, credentials, account, reads and fields."""

from __future__ import annotations

import socket
from pathlib import Path

from connectors.amocrm import AmoCrmConnector, AmoCrmSettings
from connectors.base import CheckReport
from sandbox.amocrm.server import AmoSandboxServer
from tests.connectors.amocrm.conftest import llt_settings, oauth_settings

HEAD = ["base URL", "credentials", "time zone", "currency", "API filtering"]
READS = [f"read {n}" for n in ("contacts", "leads", "notes", "tasks", "events")]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def _items(report: CheckReport) -> dict[str, tuple[bool, bool, str]]:
    return {i.name: (i.ok, i.warning, i.detail) for i in report.items}


def test_a_good_account_passes_and_nothing_is_written(server: AmoSandboxServer) -> None:
    conn = AmoCrmConnector(llt_settings(server))
    version = server.state.version
    report = conn.check("ru")
    assert report.ok and report.crm == "amocrm" and report.account_id == "30551234"
    names = [i.name for i in report.items]
    assert names[: len(HEAD) + len(READS)] == HEAD + READS
    items = _items(report)
    assert "Europe/Riga" in items["time zone"][2]
    assert items["rights"][0] and "administrator" in items["rights"][2]
    assert "Письмо" in items["task types"][2]
    assert "'День рождения'" in items["field birthday"][2]
    assert items["field HEATSYNC_TEMPERATURE"][1]  # missing: a warning, created on the first run
    assert server.state.version == version
    assert all(k.startswith("GET ") for k in server.stats()["by_route"])

    conn.ensure_schema("ru")
    after = _items(conn.check("ru"))
    assert after["field HEATSYNC_TEMPERATURE"][:2] == (True, False)
    relabel = _items(conn.check("en"))["field HEATSYNC_TEMPERATURE"]
    assert relabel[:2] == (True, True) and "updated" in relabel[2]


def test_an_unreachable_url_fails_the_first_item() -> None:
    settings = AmoCrmSettings(
        base_url=f"http://127.0.0.1:{_closed_port()}", access_token="test-token-unreachable"
    )
    report = AmoCrmConnector(settings).check("ru")
    assert not report.ok and report.account_id is None
    assert [(i.name, i.ok) for i in report.items] == [("base URL", False)]
    assert "AMOCRM_BASE_URL" in report.items[0].detail


def test_a_wrong_token_fails_the_credentials(server: AmoSandboxServer) -> None:
    report = AmoCrmConnector(llt_settings(server, access_token="test-token-wrong")).check("ru")
    assert [(i.name, i.ok) for i in report.items] == [("base URL", True), ("credentials", False)]
    assert "AMOCRM_ACCESS_TOKEN" in report.items[1].detail
    assert "test-token-wrong" not in report.items[1].detail


def test_a_spent_refresh_token_fails_the_credentials(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    AmoCrmConnector(oauth_settings(server, tmp_path / "first")).portal_info()
    # another machine's store: the same initial token, already spent
    report = AmoCrmConnector(oauth_settings(server, tmp_path / "second")).check("ru")
    items = _items(report)
    assert not items["credentials"][0]
    assert "already used" in items["credentials"][2]


def test_a_blocked_account_is_reported_not_retried(server: AmoSandboxServer) -> None:
    server.block(60)
    report = AmoCrmConnector(llt_settings(server)).check("ru")
    items = _items(report)
    assert not items["credentials"][0] and "blocked the account" in items["credentials"][2]
    assert server.stats()["requests"] == 1


def test_a_refused_grant_is_not_later_taken_for_an_interrupted_refresh(
    server: AmoSandboxServer, tmp_path: Path
) -> None:
    AmoCrmConnector(oauth_settings(server, tmp_path / "first")).portal_info()
    for _ in range(2):
        report = AmoCrmConnector(oauth_settings(server, tmp_path / "second")).check("ru")
        detail = _items(report)["credentials"][2]
        assert "already used" in detail and "interrupted" not in detail
