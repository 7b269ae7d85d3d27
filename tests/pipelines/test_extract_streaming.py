"""The streamed merge of an extract (pipelines.table_merge): the same table as concatenating the
stored and fresh frames and keeping the last row of each key, written as row groups in one atomic
save, from frames or from a connector's spilled chunks (connectors.sink)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import connectors.sink as sink_module
import pipelines.table_merge as table_merge
from connectors.sink import TableSink, keep_last
from pipelines.store import PortalStore
from scoring import contract

EXTRA = {"crm_id": "str"}


def _contacts(rng: np.random.Generator, n: int, ids: int, tag: str) -> pd.DataFrame:
    chosen = rng.integers(0, ids, n)
    return contract.conform(
        pd.DataFrame(
            {
                "contact_id": [f"c{i}" for i in chosen],
                "portal": "local",
                "created_at": pd.Timestamp("2026-01-01", tz="UTC")
                + pd.to_timedelta(rng.integers(0, 10_000, n), unit="min"),
                "name": [f"{tag}-{k}" for k in range(n)],
                "current_score": rng.random(n),
                "is_vip": rng.random(n) < 0.1,
            }
        ),
        "contacts",
    )


def _activities(rng: np.random.Generator, n: int, ids: int, tag: str) -> pd.DataFrame:
    chosen = rng.integers(0, ids, n)
    return contract.conform(
        pd.DataFrame(
            {
                "activity_id": [f"a{i}" for i in chosen],
                "contact_id": [f"c{i % 50}" for i in chosen],
                "portal": "local",
                "occurred_at": pd.Timestamp("2026-02-01", tz="UTC"),
                "type": "call",
                "text": [f"{tag}-{k}" for k in range(n)],
                "crm_id": [str(i) for i in chosen],
            }
        ),
        "activities",
        EXTRA,
    )


def _expected(name: str, frames: list[pd.DataFrame], key: str, removed: list[str]) -> pd.DataFrame:
    """The merge as the store did it before streaming: concat, keep the last of each key."""
    merged = pd.concat([f for f in frames if len(f)], ignore_index=True)
    merged["portal"] = key
    merged = merged.drop_duplicates(subset=list(contract.KEYS[name]), keep="last")
    if name == "contacts":
        merged = merged[~merged["contact_id"].isin(removed)]
    return contract.conform(merged.reset_index(drop=True), name)


def _sink(name: str, frame: pd.DataFrame, folder: Path | None, chunk: int) -> TableSink:
    extra = EXTRA if name == "activities" else None
    sink = TableSink(name, folder, extra=extra, chunk_rows=chunk)
    sink.extend(frame.to_dict("records"))
    return sink


@pytest.mark.parametrize("spilled", [True, False], ids=["spilled", "in-memory"])
def test_streamed_merge_equals_concat_and_keep_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spilled: bool
) -> None:
    monkeypatch.setattr(table_merge, "ROW_GROUP_ROWS", 700)
    monkeypatch.setattr(table_merge, "READ_ROWS", 300)
    rng = np.random.default_rng(7)
    store = PortalStore(tmp_path / "home", "local")
    removed = ["c3", "c17", "c400"]
    first = {
        "contacts": _contacts(rng, 2_000, 1_500, "one"),
        "activities": _activities(rng, 3_000, 2_500, "one"),
    }
    second = {
        "contacts": _contacts(rng, 1_800, 2_500, "two"),
        "activities": _activities(rng, 2_600, 4_000, "two"),
    }
    store.merge_extract(first["contacts"], first["activities"], contract.empty("deals"), [])
    folder = tmp_path / "scratch" if spilled else None
    sinks = {
        name: _sink(name, second[name], None if folder is None else folder / name, 250)
        for name in second
    }
    counts = store.merge_extract(
        sinks["contacts"], sinks["activities"], contract.empty("deals"), removed
    )
    for name in ("contacts", "activities"):
        want = _expected(name, [first[name], second[name]], store.key, removed)
        got = store.table(name)
        pd.testing.assert_frame_equal(got, want, obj=name)
        assert counts[name] == len(want)
        groups = pq.ParquetFile(store.root / f"{name}.parquet").metadata.num_row_groups
        assert groups > 1  # written as row groups, not one table at the end
    if spilled:
        assert len(list((tmp_path / "scratch" / "contacts").glob("*.parquet"))) == 8


def test_frames_merge_as_before_with_extra_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    store = PortalStore(tmp_path, "local")
    old = _activities(rng, 500, 400, "old")
    new = _activities(rng, 300, 600, "new").drop(columns=["crm_id"])
    store.merge_extract(contract.empty("contacts"), old, contract.empty("deals"), [])
    store.merge_extract(contract.empty("contacts"), new, contract.empty("deals"), [])
    want = _expected("activities", [old, new], store.key, [])
    got = store.table("activities")
    want["crm_id"] = want["crm_id"].where(want["crm_id"].notna(), None)  # null as Parquet has it
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want)


def test_keep_last_is_exact_when_every_hash_collides(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    frame = _contacts(rng, 3_000, 900, "x")
    sink = _sink("contacts", frame, None, 400)
    want = ~frame.duplicated(subset=["contact_id"], keep="last").to_numpy()
    monkeypatch.setattr(
        sink_module, "key_hashes", lambda table, keys: np.zeros(table.num_rows, np.uint64)
    )
    chunks = [t.select(["contact_id"]) for t in sink.chunks()]
    assert (keep_last(chunks, ["contact_id"]) == want).all()


def test_sink_parts_removed_contacts_count_and_cleanup(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    first, second = _activities(rng, 900, 700, "a"), _activities(rng, 800, 700, "b")
    sink = TableSink(
        "activities", tmp_path / "act", extra=EXTRA, parts=("one", "two"), chunk_rows=100
    )
    for a, b in zip(first.to_dict("records"), second.to_dict("records"), strict=False):
        sink.append(b, "two")  # interleaved: read back part by part all the same
        sink.append(a, "one")
    sink.extend(first.to_dict("records")[800:], "one")
    sink.drop_contacts(["c1", "c2"])
    both = pd.concat([first, second], ignore_index=True)
    both = both[~both["contact_id"].isin(["c1", "c2"])]
    want = both.drop_duplicates(["portal", "activity_id"], keep="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(sink.frame(), contract.conform(want, "activities", EXTRA))
    assert sink.count() == len(want)
    assert list((tmp_path / "act").glob("*.parquet"))
    sink.cleanup()
    assert not (tmp_path / "act").exists()


def test_a_merge_failing_mid_write_leaves_the_stored_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(9)
    store = PortalStore(tmp_path / "home", "local")
    before = _contacts(rng, 400, 300, "before")
    store.merge_extract(before, contract.empty("activities"), contract.empty("deals"), [])
    saved = store.table("contacts")
    sink = _sink("contacts", _contacts(rng, 600, 900, "after"), tmp_path / "chunks", 100)
    monkeypatch.setattr(table_merge, "ROW_GROUP_ROWS", 200)
    written: list[int] = []
    real = pq.ParquetWriter.write_table

    def failing(self: pq.ParquetWriter, table: object, *args: object, **kw: object) -> None:
        written.append(1)
        if len(written) == 3:
            raise OSError("the disk went away")
        real(self, table, *args, **kw)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OSError, match="went away"):
        store.merge_extract(sink, contract.empty("activities"), contract.empty("deals"), [])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(store.table("contacts"), saved)
    assert [p.name for p in store.root.iterdir() if "contacts" in p.name] == ["contacts.parquet"]


def test_scoring_reads_only_what_scoring_uses_and_scores_the_same(tmp_path: Path) -> None:
    from scoring import score_contacts
    from scoring.config import load_config

    rng = np.random.default_rng(21)
    store = PortalStore(tmp_path, "local")
    contacts = _contacts(rng, 300, 200, "c")
    activities = _activities(rng, 4_000, 3_000, "a")
    activities["occurred_at"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 120, len(activities)), unit="D"
    )
    activities.loc[::97, "occurred_at"] = pd.NaT
    store.merge_extract(contacts, activities, contract.empty("deals"), [])
    as_of = pd.Timestamp("2026-03-01 12:00", tz="UTC")
    read = store.scoring_table("activities", as_of)
    whole = store.table("activities")
    assert "crm_id" in whole.columns and "crm_id" not in read.columns
    known = whole["occurred_at"].notna() & (whole["occurred_at"] <= as_of)
    assert len(read) == int(known.sum()) < len(whole)
    config = load_config()
    args = dict(as_of=as_of, config=config, locale="en", tz="UTC")
    deals = store.scoring_table("deals", as_of)
    pruned = score_contacts(store.table("contacts"), read, deals, **args)
    full = score_contacts(store.table("contacts"), whole, store.table("deals"), **args)
    pd.testing.assert_frame_equal(pruned, full)
