"""Shared fixtures of the reliability tests (the fault matrix)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_stale_definitions_state() -> Iterator[None]:
    """As in tests/pipelines/conftest.py: a disposed Dagster instance's definitions-state storage
    must not reach the next test's build of the definitions."""
    yield
    if "dagster" in sys.modules:
        from dagster._core.storage.defs_state.base import _current_storage

        _current_storage.set(None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault matrix's time per cell, and in all (its runs are what the matrix costs)."""
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            props = dict(getattr(report, "user_properties", []) or [])
            if "fault_matrix_seconds" in props and getattr(report, "when", "") == "call":
                rows.append((report.nodeid.split("[")[-1].rstrip("]"), props))
    if not rows:
        return
    terminalreporter.section("fault matrix: seconds per cell")
    for name, props in sorted(rows):
        terminalreporter.write_line(
            f"{props['fault_matrix_seconds']:7.1f}  {name}  ({props.get('fault_matrix_runs')})"
        )
        terminalreporter.write_line(f"         {props.get('fault_matrix_outcome')}")
    total = sum(float(p["fault_matrix_seconds"]) for _, p in rows)
    terminalreporter.write_line(f"{total:7.1f}  in all ({len(rows)} cells, summed over processes)")
