"""Shared fixtures of the pipelines tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_stale_definitions_state() -> Iterator[None]:
    """Entering a Dagster instance puts its definitions-state storage in a context variable that
    disposing of the instance does not clear (Dagster 1.13); a later test that builds
    definitions without an instance then reaches that dead instance ("Attempted to resolve
    undefined DagsterInstance weakref"). Clear it after every test so that test order (and
    pytest-xdist's distribution) never matters."""
    yield
    if "dagster" in sys.modules:
        from dagster._core.storage.defs_state.base import _current_storage

        _current_storage.set(None)
