"""The HubSpot full extract streamed into sinks (connectors.sink) when the caller gives a scratch
folder, against the sandbox over HTTP: the same tables as the rows kept in lists, spilled in
chunks on disk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import connectors.sink as sink_module
from connectors.sink import TableSink, spill_into
from tests.connectors.conftest import connector_for, needs_sandbox, serve

pytestmark = needs_sandbox


def test_a_spilled_full_extract_equals_one_kept_in_lists(
    base_state: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "CHUNK_ROWS", 97)
    spilled_files: set[str] = set()
    real_spill = TableSink._spill

    def spill(self: TableSink, part: str) -> None:
        real_spill(self, part)
        if self.folder is not None:
            spilled_files.update(p.name for p in self.folder.glob("*.parquet"))

    monkeypatch.setattr(TableSink, "_spill", spill)
    with serve(base_state.copy()) as srv:
        until = datetime.now(UTC)
        kept = connector_for(srv).extract(None, until)
        with spill_into(tmp_path / "scratch"):
            spilled = connector_for(srv).extract(None, until)
    assert all(isinstance(spilled.tables[n], TableSink) for n in spilled.tables)
    assert not any(isinstance(kept.tables[n], TableSink) for n in kept.tables)
    for name in ("contacts", "activities", "deals"):
        assert spilled.count(name) == len(kept.frame(name))
        pd.testing.assert_frame_equal(spilled.frame(name), kept.frame(name), obj=name)
    for name in ("quarantine", "own_tasks"):
        pd.testing.assert_frame_equal(getattr(spilled, name), getattr(kept, name))
    assert spilled.removed_contact_ids == kept.removed_contact_ids
    assert spilled.warnings == kept.warnings
    assert len(kept.activities) > 1000
    assert sum(n.startswith("activities-") for n in spilled_files) > 10
