"""Validation of tables held as pandas frames: the reference the Arrow reader is tested against.

pipelines/files_arrow.py reads the files of `heatsync score` with Arrow and gives the same
tables and problems; files it does not take on (CSV that pandas and Arrow would split
differently, unusual column names) are read and checked here, value by value with pandas masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.files_common import (
    CSV_SUFFIXES,
    DEFAULT_PORTAL,
    ENUMS,
    FALSE_WORDS,
    NA_STRINGS,
    REQUIRED,
    TRUE_WORDS,
    FileError,
    Problems,
    check_suffix,
    log,
    shown,
    unknown_columns,
)
from scoring import contract

# An explicit UTC offset after a time of day ("…14:30Z", "…14:30:00+02:00").
_OFFSET = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
# A birthday without a year: "12-31" or "--12-31".
_MONTH_DAY = r"^-{0,2}\d{1,2}-\d{1,2}$"


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


def as_text(values: pd.Series) -> pd.Series:
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


def parse_timestamps(
    raw: pd.Series, text: pd.Series | None = None, offset: pd.Series | None = None
) -> pd.Series:
    """ISO 8601 strings (or datetimes) to UTC; NaT where a value cannot be read. `text`: the
    values already as stripped text, when the caller has it; `offset`: where they match
    _OFFSET, when the caller knows."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(raw):
        return raw.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    text = as_text(raw) if text is None else text
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    present = text.notna()
    if not present.any():
        return out
    # Parse values with and without an offset apart: in one call pandas lets a naive value
    # inherit the offset of an earlier aware one.
    if offset is None:
        offset = text.str.contains(_OFFSET, regex=True, na=False)
    aware = present & offset
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


def parse_dates(raw: pd.Series) -> pd.Series:
    """Calendar dates (naive midnight); a birthday may be given as MM-DD without a year."""
    if not (pd.api.types.is_datetime64_any_dtype(raw)):
        text = as_text(raw)
        no_year = text.str.match(_MONTH_DAY, na=False)
        year = str(contract.BIRTHDAY_UNKNOWN_YEAR)
        raw = text.where(~no_year, year + "-" + text.str.lstrip("-"))
    return parse_timestamps(raw).dt.tz_localize(None).dt.normalize()


def parse_bools(raw: pd.Series, name: str, column: str, problems: Problems) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        return raw.fillna(False).astype(bool)
    text = as_text(raw).str.lower()
    truthy = text.isin(TRUE_WORDS)
    bad = text.notna() & ~truthy & ~text.isin(FALSE_WORDS)
    problems.add(name, column, bad, "cannot read {value} as true/false", raw)
    return truthy.astype(bool)


def parse_numbers(raw: pd.Series, name: str, column: str, problems: Problems) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    text = as_text(raw)
    out = pd.to_numeric(text, errors="coerce").astype("float64")
    problems.add(
        name,
        column,
        text.notna() & out.isna(),
        "cannot read {value} as a number",
        raw,
    )
    return out


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
    problems = Problems()
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
            texts[column] = as_text(raw[column])
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
            parsed = parse_timestamps(values, None if dated else text_of(column))
        elif kind == "date":
            parsed = parse_dates(values)
        elif kind == "bool":
            out[column] = parse_bools(values, name, column, problems)
            continue
        elif kind in ("float", "int"):
            out[column] = parse_numbers(values, name, column, problems)
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
            deal_dates(out, name, problems)
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
        duplicates(out, ["portal", "activity_id"], "activity_id", "activity id", name, problems)
    elif table == "deals":
        ids = out["deal_id"] if "deal_id" in out.columns else pd.Series(None, index=out.index)
        out["deal_id"] = ids.where(ids.notna(), "row-" + row_ids)
        duplicates(
            out,
            ["portal", "deal_id", "contact_id"],
            "deal_id",
            "deal for this contact",
            name,
            problems,
        )
    else:
        duplicates(out, ["portal", "contact_id"], "contact_id", "contact id", name, problems)

    if problems.lines:
        raise FileError(problems.lines)
    try:
        return contract.conform(out, table)
    except ValueError as exc:  # not expected after the checks above; still name the file
        raise FileError([f"{name}: {exc}"]) from None


def deal_dates(out: pd.DataFrame, name: str, problems: Problems) -> None:
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


def duplicates(
    out: pd.DataFrame, keys: list[str], column: str, what: str, name: str, problems: Problems
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
        return f"duplicate {what} {shown(out[column].iloc[i])} (first at row {first})"

    problems.add(name, column, dup, describe)
