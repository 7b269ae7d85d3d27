from __future__ import annotations

from pathlib import Path

import pytest

from connectors.atomic import atomic_open, atomic_write_bytes, atomic_write_text


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.json"
    atomic_write_text(path, "first ä")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_directory_can_be_synced_too(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    with atomic_open(path, sync_directory=True) as handle:
        handle.write(b"{}")
    assert path.read_bytes() == b"{}"
