"""The amoCRM extract streamed (connectors.amocrm.pages, connectors.sink), against the sandbox
over HTTP: spilled to a scratch folder in small chunks it returns the same tables as kept in
memory, and while one list is mapped the others wait with at most `read_workers` pages each."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import connectors.sink as sink_module
from connectors.amocrm import AmoCrmConnector, activities
from connectors.amocrm.pages import PageQueue
from connectors.fanout import Fanout, PagedRead
from connectors.sink import TableSink, spill_into
from sandbox.amocrm.state import AmoState
from tests.connectors.amocrm.conftest import llt_settings, serve


def test_a_spilled_extract_equals_one_kept_in_memory(
    amo_state: AmoState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "CHUNK_ROWS", 37)
    seen: list[str] = []
    real_spill = TableSink._spill

    def spill(self: TableSink, part: str) -> None:
        real_spill(self, part)
        if self.folder is not None:
            seen.extend(sorted(p.name for p in self.folder.parent.rglob("*") if p.is_file()))

    monkeypatch.setattr(TableSink, "_spill", spill)
    parked: list[int] = []
    real_pages = activities._Parked.pages

    def replay(self: Any) -> Any:
        if self.path is not None:
            self.handle.flush()
            parked.append(len(self.path.read_text().splitlines()))
        return real_pages(self)

    monkeypatch.setattr(activities._Parked, "pages", replay)
    with serve(amo_state) as srv:
        until = datetime.now(UTC)
        conn = AmoCrmConnector(llt_settings(srv, page_size=25, read_workers=3))
        kept = conn.extract(None, until)
        with spill_into(tmp_path / "scratch"):
            spilled = conn.extract(None, until)
        assert isinstance(spilled.tables["activities"], TableSink)
        for name in ("contacts", "activities", "deals"):
            assert spilled.count(name) == len(kept.frame(name))
            pd.testing.assert_frame_equal(spilled.frame(name), kept.frame(name), obj=name)
        for name in ("quarantine", "own_tasks"):
            pd.testing.assert_frame_equal(getattr(spilled, name), getattr(kept, name))
        assert spilled.removed_contact_ids == kept.removed_contact_ids
        assert spilled.warnings == kept.warnings
    assert len(kept.activities) > 100
    assert sum(n.startswith("activities-") for n in set(seen)) > 3  # many chunks on disk
    assert parked and parked[0] >= 1  # the lead notes' pages waited on disk for the leads
    assert not (tmp_path / "scratch" / "lead_notes.jsonl").exists()


def test_lists_wait_for_their_reader_with_few_pages(amo_state: AmoState) -> None:
    with serve(amo_state) as srv:
        conn = AmoCrmConnector(llt_settings(srv, page_size=5, read_workers=3))
        fetched: dict[str, int] = {"contacts": 0, "notes": 0}

        def read(path: str, key: str, name: str) -> PagedRead:
            def fetch(page: int) -> tuple[list[dict[str, Any]], bool]:
                fetched[name] += 1
                return conn.client.page(path, key, [], page)

            return PagedRead(fetch)

        with Fanout(3) as fanout:
            queue = PageQueue(fanout, 3)
            queue.add("contacts", read("/contacts", "contacts", "contacts"))
            queue.add("notes", read("/contacts/notes", "notes", "notes"))
            contacts = []
            for handed, page in enumerate(queue.pages("contacts"), start=1):
                contacts += page
                assert fetched["contacts"] <= handed + 3
                assert fetched["notes"] <= 3  # waiting for its reader, a few pages ahead
            notes = [n for page in queue.pages("notes") for n in page]
    assert len(contacts) == len(amo_state.contacts) and len({c["id"] for c in contacts}) == len(
        contacts
    )
    assert fetched["contacts"] * 5 >= len(contacts) > 5 * 3
    assert len(notes) > 15
