"""`heatsync forget CONTACT`: a store filled by the real pipeline on the HubSpot sandbox loses
every trace of one contact (scanned file by file) and nothing of the others."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.cli.forget import forget
from pipelines.store import FORGET_TABLES, PortalStore, quarantined_mentions
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(generate_state(150, seed=7), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("HEATSYNC_PORTALS", raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _cells(path: Path) -> list[str]:
    """Every value of a store file as text: each Parquet cell, or the file's lines."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return [str(v) for column in table.columns for v in column.to_pylist() if v is not None]
    return path.read_text(encoding="utf-8").splitlines()


def _traces(home: Path, contact_id: str, marks: list[str]) -> dict[str, int]:
    """Per file under `home`, how many values hold the contact's id (as a number of its own, not
    part of a longer one or of a decimal) or any of `marks` (name, e-mail, phone)."""
    token = re.compile(rf"(?<![\d.]){re.escape(contact_id)}(?![\d.])")
    found: dict[str, int] = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file() and p.name != ".lock"):
        hits = sum(
            1 for cell in _cells(path) if token.search(cell) or any(m in cell for m in marks)
        )
        if hits:
            found[str(path.relative_to(home))] = hits
    return found


def _counts(store: PortalStore) -> dict[str, int]:
    counts = {n: len(store.table(n)) for n in ("contacts", "activities", "deals")}
    counts["scores"] = sum(len(_scores(store, d)) for d in store.scored_days())
    counts["log"] = sum(pq.read_metadata(f).num_rows for f in (store.root / "log").glob("*"))
    counts["written"] = len(store.written())
    counts["ledger"] = len(store.ledger())
    counts["quarantine"] = len(store.quarantine())
    return counts


def _scores(store: PortalStore, day: str) -> pd.DataFrame:
    scores = store.scores(day)
    assert scores is not None
    return scores


def _pick(store: PortalStore) -> pd.Series:
    """A contact with a task, fields written and activities, whose name, e-mail and phone no
    other contact shares."""
    contacts = store.table("contacts")
    unique = pd.Series(True, index=contacts.index)
    for column in ("name", "email", "phone"):
        unique &= contacts[column].notna() & ~contacts[column].duplicated(keep=False)
    tasked = set(store.ledger()["contact_id"].astype(str))
    active = set(store.table("activities")["contact_id"].astype(str))
    dealt = set(store.table("deals")["contact_id"].astype(str))
    fit = contacts[unique & contacts["contact_id"].isin(tasked & active & dealt)]
    assert len(fit), "no contact with a task, activities and a deal"
    return fit.iloc[0]


def test_forget_removes_every_trace_of_one_contact_and_keeps_the_others(
    server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert main(["run"]) == 0
    store = PortalStore(home, "default")
    first = store.scored_days()[-1]
    yesterday = (pd.Timestamp(first) - pd.Timedelta(days=1)).date().isoformat()
    assert main(["run", "--day", yesterday]) == 0
    capsys.readouterr()
    contact = _pick(store)
    cid = str(contact["contact_id"])
    marks = [str(contact[c]) for c in ("name", "email", "phone")]
    other = str(store.table("contacts").query("contact_id != @cid")["contact_id"].iloc[0])

    # what the pipeline does not produce here: quarantined records that name the contact (and
    # ones that do not), and an older store's changes.parquet
    associated = {"contacts": {"results": [{"id": cid, "type": "call_to_contact"}]}}
    quarantined = pd.DataFrame(
        {
            "portal": store.key,
            "object_type": ["contacts", "calls", "leads", "notes", "deals", "contacts"],
            "object_id": [cid, "9000001", "9000002", "9000003", cid, other],
            "reason": "test",
            "payload": [
                json.dumps({"id": cid, "properties": {"email": marks[1]}}),
                json.dumps({"id": "9000001", "associations": associated}),
                json.dumps({"id": 9000002, "_embedded": {"contacts": [{"id": int(cid)}]}}),
                json.dumps({"id": 9000003, "entity_id": int(cid), "note_type": "call_in"}),
                # a deal whose own id is the same number, of another contact: not this contact
                json.dumps({"id": cid, "associations": {"contacts": [other]}}),
                json.dumps({"id": other, "properties": {}}),
            ],
        }
    )
    store.add_quarantine(quarantined, pd.Timestamp.now(tz="UTC"))
    pd.DataFrame(
        {
            "contact_id": [cid, other],
            "field": "temperature",
            "old": "cold",
            "new": "warm",
            "changed_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "run_id": "old",
        }
    ).to_parquet(store.root / "changes.parquet", index=False)

    before = _traces(home, cid, marks)
    for name in ("contacts", "activities", "deals", "scores", "log", "written", "ledger"):
        assert any(path.startswith(name) or f"/{name}" in path for path in before), name
    counts_before = _counts(store)
    own = {
        "contacts": 1,
        "activities": int((store.table("activities")["contact_id"] == cid).sum()),
        "deals": int((store.table("deals")["contact_id"] == cid).sum()),
        "scores": sum(
            int((_scores(store, d)["contact_id"] == cid).sum()) for d in store.scored_days()
        ),
        "log": len(store.decisions(cid)) - 1,  # one is of changes.parquet
        "written": int((store.written()["contact_id"] == cid).sum()),
        "ledger": int((store.ledger()["contact_id"] == cid).sum()),
        "quarantine": 4,
    }
    assert len(store.scored_days()) == 2 and own["scores"] == 2

    # without a terminal and without --yes: refused, nothing deleted
    assert main(["forget", cid]) == 1
    captured = capsys.readouterr()
    assert "not confirmed; nothing deleted" in captured.err
    assert _traces(home, cid, marks) == before
    # at a terminal, "n" keeps everything
    assert forget(cid, None, False, stdin=_Terminal("n\n")) == 1
    assert _traces(home, cid, marks) == before
    assert main(["forget", "99999999", "--yes"]) == 2
    assert "no contact 99999999" in capsys.readouterr().err

    assert main(["forget", cid, "--yes"]) == 0
    out = capsys.readouterr().out
    for name, count in own.items():
        assert re.search(rf"^  {name} +{count}$", out, re.M), (name, count, out)
    assert re.search(r"^  changes +1$", out, re.M)
    assert "did not touch the CRM" in out and "reads it back" in out

    after = _counts(store)

    # no value of any file under the home names the contact any more, but for the deal that
    # only shares its number (its id and payload: 2 values), which is another record
    quarantine = store.quarantine()
    assert quarantine["object_type"].tolist().count("deals") == 1
    assert _traces(home, cid, marks) == {
        str(store.root.relative_to(home) / "quarantine.parquet"): 2
    }
    quarantine[quarantine["object_type"] != "deals"].to_parquet(store.root / "quarantine.parquet")
    assert _traces(home, cid, marks) == {}
    erasure = json.loads((store.root / "erasures.jsonl").read_text().splitlines()[-1])
    assert erasure["account"] == store.key and len(erasure["contact_sha256"]) == 64
    assert erasure["removed"]["contacts"] == 1

    # the others are intact
    for name, count in own.items():
        assert after[name] == counts_before[name] - count, name
    assert len(store.changes()) == len(store.decisions(kind="field_written"))
    assert len(store.contact(other)) == 1
    assert (store.quarantine()["object_id"] == other).sum() == 1
    assert main(["history", other]) == 0
    assert main(["history", cid]) == 2
    assert main(["forget", cid, "--yes"]) == 2  # nothing left to forget
    capsys.readouterr()

    # the store still loads and the next run works; it reads the contact back from the CRM,
    # which reports it changed (heatsync wrote its fields minutes ago)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "(success)" in out
    assert len(store.contact(cid)) == 1


def test_a_quarantined_record_names_a_contact_only_where_a_contact_id_belongs() -> None:
    assert quarantined_mentions("contacts", "42", "{}", "42")
    assert quarantined_mentions(
        "lead_notes", None, '{"entity_type": "contacts", "entity_id": 42}', "42"
    )
    assert quarantined_mentions("tasks", None, '{"contact_id": "42"}', "42")
    assert quarantined_mentions("leads", None, '{"_embedded": {"contacts": [{"id": 42}]}}', "42")
    assert not quarantined_mentions("lead_notes", None, '{"entity_id": 42}', "42")  # a lead
    assert not quarantined_mentions("deals", "42", '{"id": "42", "amount": 42}', "42")
    assert not quarantined_mentions("calls", None, '{"contacts": [420, "4200"]}', "42")
    assert not quarantined_mentions("calls", None, "not json 42", "42")
    assert set(FORGET_TABLES) >= {"contacts", "quarantine", "ledger", "log", "written"}
