"""What the file readers share: formats, allowed values, problems and their one-line messages.

A problem line names the file, the 1-based data row (the header is not counted) and the column;
rows with the same problem in a column are one line naming the first and counting the others.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scoring import contract

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
REQUIRED: dict[str, tuple[str, ...]] = {
    "contacts": ("contact_id",),
    "activities": ("contact_id", "occurred_at", "type"),
    "deals": ("contact_id", "status"),
}
# column -> (what it is called in messages, allowed values); compared case-insensitively
ENUMS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "activities": {
        "type": ("activity type", contract.ACTIVITY_TYPES),
        "direction": ("direction", contract.DIRECTIONS),
    },
    "deals": {"status": ("deal status", contract.DEAL_STATUSES)},
}
DEFAULT_PORTAL = "default"
NA_STRINGS = ["", "NULL", "null", "None", "NaN", "nan", "NA", "N/A", "n/a"]
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
MAX_ROWS_LISTED = 5
# how alike an unknown column's name must be to a known one to be suggested (difflib ratio)
SUGGEST_CUTOFF = 0.6

log = logging.getLogger("heatsync")


class FileError(ValueError):
    """One or more problems in input files; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def check_suffix(path: Path, what: str) -> None:
    """Raise FileError unless `path` ends in a suffix we can read or write."""
    if path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise FileError(
            [
                f"{path.name}: cannot tell the format of {what} from '{path.suffix or path.name}'; "
                "use .csv or .parquet"
            ]
        )


class Problems:
    """Collects problems as (file, column, message, rows) and renders them one line each."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(
        self,
        name: str,
        column: str | None,
        mask: pd.Series | np.ndarray,
        message: str | Callable[[int], str],
        values: pd.Series | None = None,
    ) -> None:
        """Report the rows where `mask` is true, described by the first of them.

        `message` is text in which "{value}" stands for `values` at that row, or a function of
        the row's position.
        """
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if positions.size == 0:
            return
        first = int(positions[0])
        where = f"{name} row {first + 1}" + (f", column {column}" if column else "")
        if callable(message):
            text = message(first)
        else:
            value = shown(values.iloc[first]) if values is not None else ""
            text = message.replace("{value}", value)
        line = f"{where}: {text}"
        more = positions[1:]
        if more.size:
            listed = ", ".join(str(int(p) + 1) for p in more[:MAX_ROWS_LISTED])
            rest = more.size - min(more.size, MAX_ROWS_LISTED)
            line += (
                f" (also row{'s' if more.size > 1 else ''} {listed}"
                + (f" and {rest} more" if rest else "")
                + ")"
            )
        self.lines.append(line)

    def add_line(self, line: str) -> None:
        self.lines.append(line)


def shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def unknown_columns(columns: list[str], table: str, name: str) -> str | None:
    """The warning about the columns of file `name` that a `table` file does not use, or None.

    Names each unknown column, with the closest known one when there is a close match, and the
    known columns.
    """
    spec = contract.TABLES[table]
    unknown = [c for c in columns if c not in spec]
    if not unknown:
        return None
    by_lower = {c.lower(): c for c in spec}
    named = []
    for column in unknown:
        close = difflib.get_close_matches(
            column.lower(), list(by_lower), n=1, cutoff=SUGGEST_CUTOFF
        )
        hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
        named.append(f"{column!r}{hint}")
    return (
        f"{name}: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(named)} "
        f"{'are' if len(unknown) > 1 else 'is'} not used; "
        f"known {table} columns: {', '.join(spec)}"
    )
