"""Canonical tables from CSV or Parquet files, validated before anything is scored.

The file commands of `heatsync` (score, backtest, calibrate) read the canonical tables
(scoring/contract.py) from files: CSV (UTF-8, a header row) or Parquet, chosen by extension.
Required columns: contacts `contact_id`; activities `contact_id`, `occurred_at`, `type`; deals
`contact_id`, `status` and `closed_at` or `created_at`. Everything else is optional: `portal`
defaults to `default`, a missing `activity_id`/`deal_id` is generated from the row number, and a
deal's missing `created_at` is its `closed_at`.

Timestamps are ISO 8601 (`2026-01-05`, `2026-01-05 14:30`, `2026-01-05T14:30:00+02:00`); values
without an offset are UTC. Every file is checked whole, with pandas masks, before any table is
returned: a problem raises FileError whose lines name the file, the 1-based data row (the header
is not counted) and the column, every problem of every file at once (a missing column or value
does not hide a duplicate id elsewhere). A column the contract does not know is kept but not used:
it is a warning, not an error, logged to the "heatsync" logger and listed in Tables.notes, naming
the known columns and the closest one ("did you mean 'email'?"). Nothing here imports dagster.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.atomic import atomic_open
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
# An explicit UTC offset after a time of day ("…14:30Z", "…14:30:00+02:00").
_OFFSET = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
# A birthday without a year: "12-31" or "--12-31".
_MONTH_DAY = r"^-{0,2}\d{1,2}-\d{1,2}$"
MAX_ROWS_LISTED = 5
# how alike an unknown column's name must be to a known one to be suggested (difflib ratio)
SUGGEST_CUTOFF = 0.6

log = logging.getLogger("heatsync")


class FileError(ValueError):
    """One or more problems in input files; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Tables:
    """The three canonical tables read from files (empty tables for files not given), and the
    warnings about them (one line each, already logged), e.g. unknown columns."""

    contacts: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def check_suffix(path: Path, what: str) -> None:
    """Raise FileError unless `path` ends in a suffix we can read or write."""
    if path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise FileError(
            [
                f"{path.name}: cannot tell the format of {what} from '{path.suffix or path.name}'; "
                "use .csv or .parquet"
            ]
        )


def read_raw(path: Path) -> pd.DataFrame:
    """Read a CSV (every value as text, ids keep their leading zeros) or a Parquet file."""
    check_suffix(path, "the file")
    if not path.is_file():
        raise FileError([f"{path}: no such file"])
    try:
        if path.suffix.lower() in CSV_SUFFIXES:
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=NA_STRINGS,
                encoding="utf-8-sig",
                skipinitialspace=True,
            )
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise FileError([f"{path.name}: the file is empty (expected a header row)"]) from None
    except UnicodeDecodeError as exc:
        raise FileError(
            [f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
        ) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise FileError([f"{path.name}: cannot read the file: {detail}"]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)


class _Problems:
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
            shown = _shown(values.iloc[first]) if values is not None else ""
            text = message.replace("{value}", shown)
        line = f"{where}: {text}"
        more = positions[1:]
        if more.size:
            shown = ", ".join(str(int(p) + 1) for p in more[:MAX_ROWS_LISTED])
            rest = more.size - min(more.size, MAX_ROWS_LISTED)
            line += (
                f" (also row{'s' if more.size > 1 else ''} {shown}"
                + (f" and {rest} more" if rest else "")
                + ")"
            )
        self.lines.append(line)

    def add_line(self, line: str) -> None:
        self.lines.append(line)


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped strings (None for missing), without a per-value loop for strings."""
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        # ids stored as floats in Parquet: 42.0 -> "42" (whole numbers a float holds exactly)
        if present.mod(1).eq(0).all() and present.abs().le(2**53).all():
            values = values.astype("Int64")
    out = values.astype("object").where(values.notna(), None)
    kind = pd.api.types.infer_dtype(out, skipna=True)
    if kind not in ("string", "empty"):
        out = out.map(lambda v: v if v is None else str(v))
    out = out.str.strip()
    return out.where(out.notna() & (out != ""), None)


def _shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _parse_timestamps(raw: pd.Series, text: pd.Series | None = None) -> pd.Series:
    """ISO 8601 strings (or datetimes) to UTC; NaT where a value cannot be read. `text`: the
    values already as stripped text, when the caller has it."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(raw):
        return raw.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    text = _text(raw) if text is None else text
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    present = text.notna()
    if not present.any():
        return out
    # Parse values with and without an offset apart: in one call pandas lets a naive value
    # inherit the offset of an earlier aware one.
    aware = present & text.str.contains(_OFFSET, regex=True, na=False)
    naive = present & ~aware
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC")
        else:
            parsed = parsed.dt.tz_localize("UTC")
        out[naive] = parsed
    return out


def _parse_dates(raw: pd.Series) -> pd.Series:
    """Calendar dates (naive midnight); a birthday may be given as MM-DD without a year."""
    if not (pd.api.types.is_datetime64_any_dtype(raw)):
        text = _text(raw)
        no_year = text.str.match(_MONTH_DAY, na=False)
        year = str(contract.BIRTHDAY_UNKNOWN_YEAR)
        raw = text.where(~no_year, year + "-" + text.str.lstrip("-"))
    return _parse_timestamps(raw).dt.tz_localize(None).dt.normalize()


def _parse_bools(raw: pd.Series, name: str, column: str, problems: _Problems) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        return raw.fillna(False).astype(bool)
    text = _text(raw).str.lower()
    truthy = text.isin(TRUE_WORDS)
    bad = text.notna() & ~truthy & ~text.isin(FALSE_WORDS)
    problems.add(name, column, bad, "cannot read {value} as true/false", raw)
    return truthy.astype(bool)


def _parse_numbers(raw: pd.Series, name: str, column: str, problems: _Problems) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    text = _text(raw)
    out = pd.to_numeric(text, errors="coerce").astype("float64")
    problems.add(
        name,
        column,
        text.notna() & out.isna(),
        "cannot read {value} as a number",
        raw,
    )
    return out


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


def validate(
    raw: pd.DataFrame, table: str, name: str, notes: list[str] | None = None
) -> pd.DataFrame:
    """Check and type one table read from file `name`; raise FileError listing every problem.

    Returns the table conformed to the contract (extra columns kept as text). Warnings (unknown
    columns) are logged and, when `notes` is given, appended to it.
    """
    warning = unknown_columns([str(c) for c in raw.columns], table, name)
    if warning:
        log.warning(warning)
        if notes is not None:
            notes.append(warning)
    problems = _Problems()
    missing = [c for c in REQUIRED[table] if c not in raw.columns]
    required = [c for c in REQUIRED[table] if c in raw.columns]
    if table == "deals" and "closed_at" not in raw.columns and "created_at" not in raw.columns:
        missing.append("closed_at or created_at")
    found = ", ".join(map(str, raw.columns)) or "none"
    for c in missing:  # reported first; the columns that are there are still checked
        problems.add_line(f"{name}, column {c}: missing (a {table} file needs it; found: {found})")
    spec = contract.TABLES[table]
    out = raw.copy()
    texts: dict[str, pd.Series] = {}

    def text_of(column: str) -> pd.Series:
        # each column's stripped text made once: on millions of rows it is the costly part
        if column not in texts:
            texts[column] = _text(raw[column])
        return texts[column]

    def absent(column: str) -> pd.Series:
        values = raw[column]
        if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values):
            return values.isna()  # a date or number is never blank text
        return text_of(column).isna()

    for column in raw.columns:
        kind = spec.get(column)
        values = raw[column]
        if kind is None:
            continue
        if kind == "ts":
            dated = pd.api.types.is_datetime64_any_dtype(values)
            parsed = _parse_timestamps(values, None if dated else text_of(column))
        elif kind == "date":
            parsed = _parse_dates(values)
        elif kind == "bool":
            out[column] = _parse_bools(values, name, column, problems)
            continue
        elif kind in ("float", "int"):
            out[column] = _parse_numbers(values, name, column, problems)
            continue
        else:
            out[column] = text_of(column)
            continue
        given = ~absent(column) if not pd.api.types.is_datetime64_any_dtype(values) else False
        problems.add(
            name,
            column,
            given & parsed.isna(),
            "cannot read {value} as a date (use ISO 8601, e.g. 2026-01-05 or 2026-01-05T14:30:00Z)",
            values,
        )
        out[column] = parsed

    for column in required:
        problems.add(name, column, absent(column), "missing value")
    for column, (label, allowed) in ENUMS.get(table, {}).items():
        if column not in out.columns:
            continue
        lowered = out[column].str.lower()
        out[column] = lowered
        problems.add(
            name,
            column,
            lowered.notna() & ~lowered.isin(allowed),
            f"unknown {label} {{value}} (expected one of: {', '.join(allowed)})",
            raw[column],
        )
    if table == "deals":
        if "closed_at" in out.columns or "created_at" in out.columns:  # else reported missing
            _deal_dates(out, name, problems)
        if "stage_probability" in out.columns:
            p = out["stage_probability"]
            problems.add(
                name,
                "stage_probability",
                p.notna() & ((p < 0) | (p > 1)),
                "{value} is not a probability between 0 and 1",
                p,
            )

    portal = out["portal"] if "portal" in out.columns else pd.Series(None, index=out.index)
    out["portal"] = portal.where(portal.notna(), DEFAULT_PORTAL).astype("object")
    row_ids = pd.Series(np.arange(1, len(out) + 1), index=out.index).astype(str)
    if table == "activities":
        ids = (
            out["activity_id"] if "activity_id" in out.columns else pd.Series(None, index=out.index)
        )
        out["activity_id"] = ids.where(ids.notna(), "row-" + row_ids)
        _duplicates(out, ["portal", "activity_id"], "activity_id", "activity id", name, problems)
    elif table == "deals":
        ids = out["deal_id"] if "deal_id" in out.columns else pd.Series(None, index=out.index)
        out["deal_id"] = ids.where(ids.notna(), "row-" + row_ids)
        _duplicates(
            out,
            ["portal", "deal_id", "contact_id"],
            "deal_id",
            "deal for this contact",
            name,
            problems,
        )
    else:
        _duplicates(out, ["portal", "contact_id"], "contact_id", "contact id", name, problems)

    if problems.lines:
        raise FileError(problems.lines)
    try:
        return contract.conform(out, table)
    except ValueError as exc:  # not expected after the checks above; still name the file
        raise FileError([f"{name}: {exc}"]) from None


def _deal_dates(out: pd.DataFrame, name: str, problems: _Problems) -> None:
    """A deal's created_at defaults to its closed_at; a deal needs one of the two."""
    closed = out["closed_at"] if "closed_at" in out.columns else None
    created = out["created_at"] if "created_at" in out.columns else None
    if created is None:
        out["created_at"] = closed
    elif closed is not None:
        out["created_at"] = created.where(created.notna(), closed)
    column = "created_at" if created is not None else "closed_at"
    problems.add(
        name,
        column,
        out["created_at"].isna(),
        "missing value (a deal needs created_at or closed_at)",
    )


def _duplicates(
    out: pd.DataFrame, keys: list[str], column: str, what: str, name: str, problems: _Problems
) -> None:
    """Report rows repeating the keys of an earlier row; rows with a missing key (reported as
    missing already) are left out, the others still checked."""
    if not all(k in out.columns for k in keys):
        return  # a missing key column is reported already
    complete = out[keys].notna().all(axis=1)
    dup = out.duplicated(keys, keep="first") & complete

    def describe(i: int) -> str:
        same = (out[keys] == out[keys].iloc[i]).all(axis=1).to_numpy()
        first = int(np.flatnonzero(same)[0]) + 1
        return f"duplicate {what} {_shown(out[column].iloc[i])} (first at row {first})"

    problems.add(name, column, dup, describe)


def read_table(path: Path, table: str, notes: list[str] | None = None) -> pd.DataFrame:
    """Read and validate one canonical table from a CSV or Parquet file (warnings: validate)."""
    return validate(read_raw(path), table, path.name, notes)


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
    for table, path in (("contacts", contacts), ("activities", activities), ("deals", deals)):
        if path is None:
            frames[table] = contract.empty(table)
            continue
        if progress:
            progress(f"reading {path.name}")
        try:
            frames[table] = read_table(path, table, notes)
        except FileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise FileError(problems)
    return Tables(frames["contacts"], frames["activities"], frames["deals"], notes)


def unknown_contacts(tables: Tables) -> dict[str, int]:
    """Rows of activities/deals whose contact is not in the contacts table (scoring skips them)."""
    known = pd.MultiIndex.from_frame(tables.contacts[["portal", "contact_id"]])
    out: dict[str, int] = {}
    for table in ("activities", "deals"):
        frame: pd.DataFrame = getattr(tables, table)
        if frame.empty:
            continue
        keys = pd.MultiIndex.from_frame(frame[["portal", "contact_id"]])
        count = int((~keys.isin(known)).sum())
        if count:
            out[table] = count
    return out


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by extension, through a temporary file so no half file is left."""
    check_suffix(path, "the output")
    with atomic_open(path) as handle:
        if path.suffix.lower() in CSV_SUFFIXES:
            frame.to_csv(handle, index=False)
        else:
            frame.to_parquet(handle, index=False)
