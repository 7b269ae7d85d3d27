"""The decision log and `heatsync history`: what heatsync wrote, kept, created or not, and why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from connectors.base import TaskReport, WriteReport
from pipelines import steps
from pipelines.cli import main
from pipelines.cli.history import story
from pipelines.run.asof import AsOf, local_today
from pipelines.store import PortalStore
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state
from scoring import contract, load_config, plan_tasks

RANK = {"cold": 0, "warm": 1, "hot": 2}
BACKFILLED = (20, 10, 5)  # days before today; none the day before, so "turned hot" is today


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(generate_state(200, seed=5), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


def _warmed_up(store: PortalStore) -> str:
    """A contact cold on the first scored day, never cooling, hot today with a call_now task."""
    days = store.scored_days()
    temperatures = pd.concat(
        [store.scores(d)[["contact_id", "temperature"]].assign(day=d) for d in days]  # type: ignore[index]
    ).pivot(index="contact_id", columns="day", values="temperature")
    rank = temperatures.apply(lambda column: column.map(RANK)).dropna()
    rising = (rank.diff(axis=1).iloc[:, 1:] >= 0).all(axis=1)
    rising &= (rank[days[0]] == 0) & (rank[days[-1]] == 2)
    ledger = store.ledger()
    called = ledger.loc[ledger["rule"] == "call_now", "contact_id"]
    candidates = sorted(set(rank.index[rising]) & set(called))
    assert candidates, "no contact warmed up from cold to hot with a call"
    return candidates[0]


def _history(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["history", *args]) == 0
    return capsys.readouterr().out


def test_history_tells_how_a_contact_warmed_up_over_backfilled_days(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tz = server.state.account.get("timeZone", "UTC")
    today = pd.Timestamp(local_today(tz, pd.Timestamp.now(tz="UTC")))
    for back in BACKFILLED:
        assert main(["run", "--day", (today - pd.Timedelta(days=back)).strftime("%Y-%m-%d")]) == 0
    assert main(["run"]) == 0
    store = PortalStore(tmp_path / "home", "default")
    assert len(store.scored_days()) == len(BACKFILLED) + 1
    contact = _warmed_up(store)

    out = _history(capsys, contact, "--portal", "default")
    assert out.startswith(f"contact {contact} · ")
    assert f"account {store.key} (portal default)" in out.splitlines()[0]
    # the timeline: every scored day in order, with the temperature and score as stored
    timeline = re.findall(r"^(\d{4}-\d{2}-\d{2})  (\w+)\s+(\d+)  segment", out, re.MULTILINE)
    assert [day for day, _, _ in timeline] == store.scored_days()
    for day, temperature, score in timeline:
        stored = store.scores(day).set_index("contact_id").loc[contact]  # type: ignore[union-attr]
        assert (temperature, int(score)) == (stored["temperature"], round(stored["score"]))
        assert f"why: {stored['reasons']}" in out
    # what today's run wrote, old → new as the change log has it (nothing before: all new)
    changes = store.changes()
    changes = changes[changes["contact_id"] == contact]
    assert len(changes) and set(changes["run_id"]) == {changes["run_id"].iloc[0]}
    assert out.count("wrote ") == len(changes)
    assert "wrote temperature: – → hot" in out
    # the call it got when it turned hot, with its key
    call = store.ledger().set_index("contact_id").loc[[contact]]
    call = call[call["rule"] == "call_now"].iloc[0]
    assert (
        f"task call_now {call['period']} created: task {call['task_id']} (key {call['task_key']})"
        in out
    )
    assert out.index("wrote temperature") > out.index(store.scored_days()[-1])

    # another contact got no task, and the log says why
    log = store.decisions()
    no_owner = log[(log["kind"] == "task_not_created") & (log["reason"] == "no_owner")].iloc[0]
    other = _history(capsys, no_owner["contact_id"])
    period = no_owner["task_key"].rsplit(":", 1)[-1]
    assert f"no task {no_owner['name']} {period}: no_owner" in other

    # the materializations count the log rows and name the command that reads them
    instance = dg.DagsterInstance.get()
    for key, kinds in ((("crm", "field_writeback"), {"field_written"}), (("crm", "tasks"), set())):
        event = instance.get_latest_materialization_event(dg.AssetKey(list(key)))
        assert event is not None and event.asset_materialization is not None
        meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
        counts = meta["log_rows"]
        assert isinstance(counts, dict) and kinds <= set(counts) and sum(counts.values()) > 0
        assert re.fullmatch(r"heatsync history \S+ --portal default", str(meta["history"]))
    assert log["run_id"].nunique() == 1  # the backfills logged nothing

    capsys.readouterr()
    assert main(["history", "no-such-contact"]) == 2
    assert "no contact no-such-contact" in capsys.readouterr().err
    assert main(["history", contact, "--portal", "elsewhere"]) == 2
    assert "no store for portal elsewhere" in capsys.readouterr().err


@dataclass
class RefusingCrm:
    """Writes every contact but `refuse`, creates every task but `fail_key`."""

    refuse: str
    fail_key: str = ""
    crm: str = "hubspot"
    asked: list[str] = field(default_factory=list)

    def write_fields(self, updates: pd.DataFrame) -> WriteReport:
        failed = [{"contact_id": self.refuse, "reason": "INVALID_OPTION: heatsync_segment"}]
        return WriteReport(attempted=len(updates), written=len(updates) - 1, failed=failed)

    def create_tasks(self, tasks: pd.DataFrame) -> TaskReport:
        created = {k: f"t{i}" for i, k in enumerate(tasks["task_key"]) if k != self.fail_key}
        return TaskReport(created=created, failed=[{"task_key": self.fail_key, "reason": "quota"}])

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the CRM was asked: {name}")


NOW = pd.Timestamp("2026-03-02 09:00", tz="UTC")


def _store(tmp_path: Path) -> tuple[PortalStore, AsOf, pd.DataFrame]:
    store = PortalStore(tmp_path, "p")
    contacts = contract.conform(
        pd.DataFrame(
            {
                "contact_id": ["1", "2", "3"],
                "portal": "p",
                "name": ["Ann", "Bob", "Cy"],
                "owner_id": ["o1", "o1", None],
                "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
                "lifecycle_stage": "lead",
            }
        ),
        "contacts",
    )
    store.merge_extract(contacts, contract.empty("activities"), contract.empty("deals"), [])
    store.save_portal_meta({"time_zone": "UTC", "last_extract_at": NOW.isoformat()})
    as_of = AsOf.resolve("2026-03-02", "UTC", NOW)
    scores, _ = steps.score(store, as_of, load_config(None), "en")
    return store, as_of, scores


def test_a_refused_write_and_a_failed_task_are_logged_with_their_reasons(tmp_path: Path) -> None:
    store, as_of, scores = _store(tmp_path)
    crm = RefusingCrm(refuse="2")
    _, written = steps.write_fields(crm, store, scores, as_of, "run-1")  # type: ignore[arg-type]
    plan = plan_tasks(scores, store.table("contacts"), as_of=as_of.instant)
    crm.fail_key = plan.tasks["task_key"].iloc[0]
    _, tasks = steps.create_tasks(crm, store, scores, as_of, load_config(None), "en", "run-1")  # type: ignore[arg-type]

    log = store.decisions()
    assert set(log["run_id"]) == {"run-1"} and (log["at"] == as_of.instant).all()
    kept = log[log["kind"] == "field_kept"]
    assert set(kept["contact_id"]) == {"2"} and "temperature" in set(kept["name"])
    assert (kept["reason"] == "refused by the CRM: INVALID_OPTION: heatsync_segment").all()
    assert kept["old"].isna().all() and kept["new"].notna().all()
    wrote = log[log["kind"] == "field_written"]
    assert set(wrote["contact_id"]) == {"1", "3"}
    reasons = scores.set_index("contact_id")["reasons"]
    assert (wrote["reason"].to_numpy() == wrote["contact_id"].map(reasons).to_numpy()).all()

    not_created = log[log["kind"] == "task_not_created"].set_index("task_key")
    assert not_created.loc[crm.fail_key, "reason"] == "failed: quota"
    assert set(not_created.loc[not_created["contact_id"] == "3", "reason"]) == {"no_owner"}
    created = log[log["kind"] == "task_created"]
    assert len(created) == len(plan.tasks) - 1 and created["new"].str.startswith("t").all()
    assert written.metadata["log_rows"] == {"field_written": len(wrote), "field_kept": len(kept)}
    assert tasks.metadata["log_rows"]["task_not_created"] == len(not_created)
    assert tasks.metadata["history"].startswith("heatsync history ")

    # the kept-field helper others log with
    extra = steps.kept_rows(["1"], "segment", "edited by a person", old=pd.Series(["key"]))
    assert list(extra.loc[0, ["kind", "name", "old", "reason"]]) == [
        "field_kept",
        "segment",
        "key",
        "edited by a person",
    ]


def test_a_dry_run_logs_nothing(tmp_path: Path) -> None:
    store, as_of, scores = _store(tmp_path)
    crm = RefusingCrm(refuse="2")
    steps.write_fields(crm, store, scores, as_of, "dry", dry_run=True)  # type: ignore[arg-type]
    steps.create_tasks(crm, store, scores, as_of, load_config(None), "en", "dry", dry_run=True)  # type: ignore[arg-type]
    assert store.decisions().empty and not (store.root / "log").exists()


def test_a_store_of_an_earlier_version_still_reads(tmp_path: Path) -> None:
    store, as_of, _ = _store(tmp_path)
    old = pd.DataFrame(
        {
            "contact_id": ["1", "1", "2"],
            "field": ["temperature", "score", "temperature"],
            "old": ["None", "nan", "warm"],
            "new": ["warm", "55.0", "hot"],
            "changed_at": [as_of.instant] * 3,
            "run_id": "old-run",
        }
    )
    old.to_parquet(store.root / "changes.parquet", index=False)
    assert len(store.changes()) == 3
    mine = store.decisions("1")
    assert list(mine["kind"]) == ["field_written"] * 2 and mine["old"].isna().all()
    out = story(store, "1")
    assert "wrote temperature: – → warm" in out and "wrote score: – → 55" in out
