"""Canonical tables from CSV or Parquet files, validated before anything is scored.

The file commands of `heatsync` (score, backtest, calibrate) read the canonical tables
(scoring/contract.py) from files: CSV (UTF-8, a header row) or Parquet, chosen by extension.
Required columns: contacts `contact_id`; activities `contact_id`, `occurred_at`, `type`; deals
`contact_id`, `status` and `closed_at` or `created_at`. Everything else is optional: `portal`
defaults to `default`, a missing `activity_id`/`deal_id` is generated from the row number, and a
deal's missing `created_at` is its `closed_at`.

Timestamps are ISO 8601 (`2026-01-05`, `2026-01-05 14:30`, `2026-01-05T14:30:00+02:00`); values
without an offset are UTC. Every file is checked whole before any table is
returned: a problem raises FileError whose lines name the file, the 1-based data row (the header
is not counted) and the column, every problem of every file at once (a missing column or value
does not hide a duplicate id elsewhere). A column the contract does not know is kept but not used:
it is a warning, not an error, logged to the "heatsync" logger and listed in Tables.notes, naming
the known columns and the closest one ("did you mean 'email'?"). Nothing here imports dagster.

Files are read with Arrow and checked one distinct value at a time (pipelines/files_arrow.py);
what Arrow would read differently from pandas goes to the pandas reader
(pipelines/files_frame.py), which is also the reference the Arrow reader is tested against.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.atomic import atomic_open
from pipelines import files_arrow
from pipelines.files_common import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    FileError,
    check_suffix,
    unknown_columns,
)
from pipelines.files_frame import read_raw, validate
from scoring import contract

__all__ = [
    "CSV_SUFFIXES",
    "PARQUET_SUFFIXES",
    "FileError",
    "Tables",
    "check_suffix",
    "read_raw",
    "read_table",
    "read_tables",
    "unknown_columns",
    "unknown_contacts",
    "validate",
    "write_table",
]


@dataclass
class Tables:
    """The three canonical tables read from files (empty tables for files not given), and the
    warnings about them (one line each, already logged), e.g. unknown columns."""

    contacts: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # per table as read: (id of the frame, its distinct (portal, contact_id) pairs with their
    # row counts), so unknown_contacts need not hash every row again
    contact_rows: dict[str, tuple[int, pd.DataFrame]] = field(
        default_factory=dict, repr=False, compare=False
    )


def read_table(
    path: Path,
    table: str,
    notes: list[str] | None = None,
    contacts: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Read and validate one canonical table from a CSV or Parquet file (warnings: validate;
    `contacts`: see files_arrow.validate)."""
    check_suffix(path, "the file")
    if not path.is_file():
        raise FileError([f"{path}: no such file"])
    raw = files_arrow.read_arrow(path, table)
    if raw is None:
        return validate(read_raw(path), table, path.name, notes)
    return files_arrow.validate(raw, table, path.name, notes, contacts)


def read_tables(
    contacts: Path,
    activities: Path | None = None,
    deals: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Tables:
    """Read and validate all given files; raise one FileError listing the problems of all of them.

    Files not given are empty tables. Nothing is returned unless every file is valid; warnings
    are logged as they are found and returned in Tables.notes.
    """
    problems: list[str] = []
    notes: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    pairs: dict[str, pd.DataFrame] = {}
    given = [
        (table, path)
        for table, path in (("contacts", contacts), ("activities", activities), ("deals", deals))
        if path is not None
    ]

    def read(table: str, path: Path) -> tuple[pd.DataFrame | None, list[str], list[str]]:
        own_notes: list[str] = []
        try:
            return read_table(path, table, own_notes, pairs), own_notes, []
        except FileError as exc:
            return None, own_notes, exc.problems

    # the files are read side by side (Arrow and numpy work, which lets go of the GIL); their
    # notes and problems are kept in file order
    with ThreadPoolExecutor(max(1, len(given))) as pool:
        reads = [pool.submit(read, table, path) for table, path in given]
        for (table, path), future in zip(given, reads, strict=True):
            if progress:
                progress(f"reading {path.name}")
            frame, own_notes, own_problems = future.result()
            notes.extend(own_notes)
            problems.extend(own_problems)
            if frame is not None:
                frames[table] = frame
    for table in ("contacts", "activities", "deals"):
        if table not in frames and not problems:
            frames[table] = contract.empty(table)
    if problems:
        raise FileError(problems)
    tables = Tables(frames["contacts"], frames["activities"], frames["deals"], notes)
    tables.contact_rows = {t: (id(frames[t]), p) for t, p in pairs.items()}
    return tables


def unknown_contacts(tables: Tables) -> dict[str, int]:
    """Rows of activities/deals whose contact is not in the contacts table (scoring skips them).

    Uses the pairs counted while reading (Tables.contact_rows) for frames not replaced since.
    """
    out: dict[str, int] = {}
    known = _pairs(tables, "contacts")
    for table in ("activities", "deals"):
        frame: pd.DataFrame = getattr(tables, table)
        if frame.empty:
            continue
        pairs = _pairs(tables, table)
        # both tables' pairs as integers (codes shared by the two), then one sorted lookup
        codes = []
        for column in ("portal", "contact_id"):
            both = np.concatenate([known[column].to_numpy(), pairs[column].to_numpy()])
            codes.append(pd.factorize(both, use_na_sentinel=False)[0].astype(np.int64))
        joint = codes[0] * (int(codes[1].max(initial=0)) + 1) + codes[1]
        missing = ~np.isin(joint[len(known) :], joint[: len(known)])
        count = int(pairs["rows"].to_numpy()[missing].sum())
        if count:
            out[table] = count
    return out


def _pairs(tables: Tables, table: str) -> pd.DataFrame:
    """A table's distinct (portal, contact_id) pairs and how many rows hold each."""
    frame: pd.DataFrame = getattr(tables, table)
    known = tables.contact_rows.get(table)
    if known is not None and known[0] == id(frame) and int(known[1]["rows"].sum()) == len(frame):
        return known[1]
    return (
        frame.groupby(["portal", "contact_id"], sort=False, dropna=False, observed=True)
        .size()
        .rename("rows")
        .reset_index()
    )


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by extension, through a temporary file so no half file is left."""
    check_suffix(path, "the output")
    with atomic_open(path) as handle:
        if path.suffix.lower() in CSV_SUFFIXES:
            frame.to_csv(handle, index=False)
        else:
            frame.to_parquet(handle, index=False)
