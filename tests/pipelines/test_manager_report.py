"""The manager's view of a run: the contact_scores and crm_tasks metadata (transitions, hot and
unattended, owner load) and `heatsync report`'s self-contained HTML page, on a small sandbox
HubSpot scored yesterday (a backfill) and today through Dagster."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets import build_assets
from pipelines.cli import main
from pipelines.partitions import partition_key, portals
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.steps import local_today
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

PORTAL = "default"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "distribution",
    "transitions",
    "warmed-up",
    "cooled-down",
    "hot-unattended",
    "owner-load",
    "backtest",
)


@dataclass
class Ran:
    home: Path
    today: str
    yesterday: str
    scores_meta: dict[str, dg.MetadataValue]
    past_scores_meta: dict[str, dg.MetadataValue]
    tasks_meta: dict[str, dg.MetadataValue]
    report: Path


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, dg.MetadataValue]:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if "/".join(mat.asset_key.path) == key:
            return dict(mat.metadata)
    raise AssertionError(f"no materialization of {key}")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    tmp = tmp_path_factory.mktemp("manager")
    with (
        SandboxServer(generate_state(200, seed=7), SandboxOptions(search_lag_s=0.0)) as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.chdir(tmp)  # no stray .env or portals.yaml is read
        patch.setenv("HUBSPOT_BASE_URL", server.base_url)
        patch.setenv("HUBSPOT_ACCESS_TOKEN", server.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            patch.delenv(name, raising=False)
        patch.delenv("HEATSYNC_PORTALS", raising=False)
        patch.setenv("HEATSYNC_HOME", str(tmp / "home"))
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(portals.name, [PORTAL])
        resources = {
            "crm": CrmResource(access_token=server.token, base_url=server.base_url),
            "heatsync": HeatsyncSettings(home=str(tmp / "home")),
        }
        tz = server.state.account.get("timeZone", "UTC")
        today = local_today(tz, pd.Timestamp.now(tz="UTC"))
        yesterday = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
        results = {
            day: dg.materialize(
                build_assets(),
                instance=instance,
                partition_key=partition_key(day, PORTAL),
                resources=resources,
            )
            for day in (yesterday, today)
        }
        assert all(r.success for r in results.values())
        assert main(["report"]) == 0
        yield Ran(
            home=tmp / "home",
            today=today,
            yesterday=yesterday,
            scores_meta=_metadata(results[today], "heatsync/scores"),
            past_scores_meta=_metadata(results[yesterday], "heatsync/scores"),
            tasks_meta=_metadata(results[today], "crm/tasks"),
            report=tmp / f"heatsync-report-{PORTAL}-{today}.html",
        )


def _table(value: dg.MetadataValue) -> list[dict[str, object]]:
    assert isinstance(value, dg.TableMetadataValue)
    return [dict(record.data) for record in value.records]


def test_scores_metadata_has_transitions_and_hot_unattended(ran: Ran) -> None:
    meta = ran.scores_meta
    rows = _table(meta["transitions"])
    assert [r["previous"] for r in rows] == ["cold", "warm", "hot", "new"]
    contacts = meta["contacts_scored"].value
    assert sum(int(r[t]) for r in rows for t in ("cold", "warm", "hot")) == contacts  # type: ignore[call-overload]
    assert meta["transitions_since"].value == ran.yesterday
    changed = meta["warmed_up"].value + meta["cooled_down"].value  # type: ignore[operator]
    assert changed == meta["temperature_changed"].value
    unattended = meta["hot_unattended"].value
    assert isinstance(unattended, int) and unattended <= meta["temperature_hot"].value  # type: ignore[operator]
    assert isinstance(meta["hot_unattended_md"], dg.MarkdownMetadataValue)
    assert str(meta["hot_unattended_md"].value).startswith("| contact_id | name | owner_id |")

    # a backfilled day gets its transitions too: nothing before it, so every contact is new
    past = _table(ran.past_scores_meta["transitions"])
    assert sum(int(r[t]) for r in past[:3] for t in ("cold", "warm", "hot")) == 0  # type: ignore[call-overload]
    assert ran.past_scores_meta["transitions_since"].value == "none"


def test_tasks_metadata_has_the_owner_load(ran: Ran) -> None:
    rows = _table(ran.tasks_meta["owner_load"])
    assert rows
    assert sum(int(r["created"]) for r in rows) == ran.tasks_meta["tasks_created"].value  # type: ignore[call-overload]
    assert sum(int(r["left_out"]) for r in rows) == ran.tasks_meta["left_out"].value  # type: ignore[call-overload]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.references: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "img":
            self.images.append(str(values.get("src")))
        self.references += [str(values[a]) for a in ("src", "href") if values.get(a)]


def test_report_is_one_self_contained_html_page(ran: Ran) -> None:
    text = ran.report.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert set(SECTIONS) <= page.ids
    assert f"heatsync · {PORTAL} · {ran.today}" in text
    assert "script" not in page.tags and "link" not in page.tags
    assert len(page.images) >= 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)
    assert all(ref.startswith("data:") for ref in page.references)
    assert not re.search(r"url\(|https?://", text)


def test_report_without_scores_for_the_day_exits_2(
    ran: Ran, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("HEATSYNC_HOME", str(ran.home))
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "unused")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--day", "2001-01-01", "--out", str(tmp_path / "r.html")]) == 2
    assert "has no scores for 2001-01-01" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: install it (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); CI=true requires it")


def test_report_renders_in_headless_chromium(ran: Ran, tmp_path: Path) -> None:
    chromium = _chromium_or_skip()
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1200,1800",
                ran.report.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    # a blank page compresses to a few kilobytes; charts and tables do not
    assert len(data) > 30_000
