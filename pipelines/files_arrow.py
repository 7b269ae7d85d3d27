"""Reading the canonical tables with Arrow: each distinct value of a column is checked once.

Same tables and problems as pipelines/files_frame.py (the reference, held to it by
tests/pipelines/test_files_arrow.py), without a Python object per row until the end. A text column
is dictionary-encoded (Parquet's own dictionaries where the file has them): trimming, NA words,
case, allowed values, true/false words, numbers and dates are worked out on the distinct values
and spread to the rows by their codes; duplicate keys are found on integer codes, and a problem's
message is written only for the first bad row of a column. Pandas objects are made once, at the
end, from the distinct values (one str object per distinct value). A column of a type this module
does not take on is converted to pandas as pd.read_parquet would and checked by the reference
code; a CSV file that Arrow would split differently from pandas (see `csv_unsafe`) is not read
here at all (read_arrow returns None).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines import files_frame as ref
from pipelines.files_common import (
    CSV_SUFFIXES,
    ENUMS,
    FALSE_WORDS,
    NA_STRINGS,
    REQUIRED,
    TRUE_WORDS,
    FileError,
    Problems,
    log,
    shown,
    unknown_columns,
)
from pipelines.files_keys import contact_rows, fill_and_check_keys
from pipelines.files_text import WHITESPACE, Text, is_text, legacy_text, text
from scoring import contract

# Bytes after which pandas' CSV reader (skipinitialspace, a NUL ends a value) and Arrow's would
# disagree: a quote after or before a space, a NUL. Plain leading spaces are dropped below.
CSV_UNSAFE = (b' "', b'" ', b"\x00")
# columns expected to be unique: dictionary-encoding them on read would only cost
UNIQUE_COLUMNS = {"contacts": {"contact_id"}, "activities": {"activity_id"}, "deals": {"deal_id"}}
# text columns handed over as pandas categoricals (their codes and distinct values as read) rather
# than a str object per row: at 20M activities the object columns were most of the read's time
# and memory, and scoring codes these columns by their dictionary anyway
CATEGORICAL = {"activities": ("portal", "contact_id", "type", "direction", "outcome", "text")}
CSV_BLOCK = 1 << 24
# threads checking the columns of one file
COLUMN_THREADS = min(4, os.cpu_count() or 1)
# files_frame._OFFSET for Arrow's RE2: Python's \d is any decimal digit, \s any character
# str.isspace() is true of (RE2's are ASCII only)
OFFSET = ref._OFFSET.replace(r"\d", r"\p{Nd}").replace(
    r"\s", "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
)


def has_offset(texts: np.ndarray) -> np.ndarray:
    """Which stripped texts end in a time of day with a UTC offset (files_frame._OFFSET)."""
    values = pa.array(texts, type=pa.string(), from_pandas=True)
    found = pc.match_substring_regex(values, OFFSET).fill_null(False)
    return found.to_numpy(zero_copy_only=False)


def csv_unsafe(path: Path) -> bool:
    """True when the CSV file holds bytes that pandas and Arrow read differently (or is empty)."""
    with path.open("rb") as handle:
        try:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return any(data.find(b) >= 0 for b in CSV_UNSAFE)
        except ValueError:  # an empty file cannot be mapped
            return True


@dataclass
class Raw:
    """A file as read: its known columns as Arrow (names stripped), its other columns as pandas
    (as pd.read_csv/pd.read_parquet give them), all column names in file order, the row count."""

    data: pa.Table
    others: pd.DataFrame
    names: list[str]
    rows: int


def read_arrow(path: Path, table: str) -> Raw | None:
    """Read a CSV or Parquet file; None when this module does not read it (the reference reader
    does, with the same message on a broken file)."""
    spec = contract.TABLES[table]
    csv = path.suffix.lower() in CSV_SUFFIXES
    try:
        if csv:
            if csv_unsafe(path):
                return None
            names = _csv_header(path)
            if names is None or len(names) < 2:
                return None  # one column: pandas skips a row whose value is empty, Arrow not
            data = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            data = pa.table({n: _pandas_csv_text(data[n]) for n in names})
        else:
            schema = pq.read_schema(path)
            unique = UNIQUE_COLUMNS[table]
            coded = [
                f.name
                for f in schema
                if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
                and f.name.strip() in spec
                and f.name.strip() not in unique
            ]
            data = pq.read_table(path, read_dictionary=coded)
            index = (schema.pandas_metadata or {}).get("index_columns", [])
            data = data.drop_columns([c for c in index if isinstance(c, str)])
    except (pa.ArrowException, OSError, ValueError):
        return None
    names = [str(n).strip() for n in data.column_names]
    if len(set(names)) != len(names) or (csv and "" in names):
        return None  # pandas renames these ("Unnamed: 0", "a.1"): leave them to it
    extra = [old for old, new in zip(data.column_names, names, strict=True) if new not in spec]
    others = data.select(extra).to_pandas() if extra else pd.DataFrame(index=range(len(data)))
    if csv:
        others = others.where(others.notna(), np.nan)
    others.columns = [n.strip() for n in extra]
    known = [i for i, n in enumerate(names) if n in spec]
    rows = data.num_rows
    data = data.select(known).rename_columns([names[i] for i in known])
    return Raw(data, others, names, rows)


def _csv_header(path: Path) -> list[str] | None:
    """The column names of a CSV file as Arrow reads them (None if Arrow cannot)."""
    with pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
    ) as reader:
        names = list(reader.schema.names)
    return names if len(set(names)) == len(names) else None


def _pandas_csv_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """A CSV column as pd.read_csv(skipinitialspace=True, na_values=NA_STRINGS) reads it: leading
    spaces dropped, then an NA word (or nothing) is a missing value."""
    trimmed = pc.utf8_ltrim(values, characters=" ")
    return pc.if_else(pc.is_in(trimmed, pa.array(NA_STRINGS)), None, trimmed)


def _series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, copy=False)


def _timestamps(parsed: pd.Series, rows: Text, utc: bool) -> pd.Series:
    """Spread timestamps parsed from the distinct values to the rows (NaT where missing)."""
    if utc:
        parsed = parsed.dt.tz_localize(None)
    ints = rows.spread(parsed.to_numpy(dtype="datetime64[ns]").view("int64"), np.iinfo("int64").min)
    out = _series(ints.view("datetime64[ns]"))
    return out.dt.tz_localize("UTC") if utc else out


def validate(
    raw: Raw,
    table: str,
    name: str,
    notes: list[str] | None = None,
    contacts: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Check and type one table read by read_arrow from file `name`: what files_frame.validate
    does for a pandas frame, with the same problems in the same order and the same table."""
    warning = unknown_columns(raw.names, table, name)
    if warning:
        log.warning(warning)
        if notes is not None:
            notes.append(warning)
    problems = Problems()
    missing = [c for c in REQUIRED[table] if c not in raw.names]
    if table == "deals" and "closed_at" not in raw.names and "created_at" not in raw.names:
        missing.append("closed_at or created_at")
    found = ", ".join(raw.names) or "none"
    for c in missing:  # reported first; the columns that are there are still checked
        problems.add_line(f"{name}, column {c}: missing (a {table} file needs it; found: {found})")
    spec = contract.TABLES[table]
    out: dict[str, object] = {}
    absent: dict[str, np.ndarray] = {}

    def check(column: str) -> tuple[object, np.ndarray, list[str]]:
        own = Problems()  # each column's own, merged below in column order
        unique = column in UNIQUE_COLUMNS[table]
        value, where = _column(raw.data[column], spec[column], unique, column, name, own)
        return value, where, own.lines

    # the columns are checked side by side: the work is in Arrow and numpy, which let go of
    # the GIL (an id column of 20M rows takes as long as all the others together)
    columns = raw.data.column_names
    with ThreadPoolExecutor(max(1, min(COLUMN_THREADS, len(columns)))) as pool:
        for column, (value, where, lines) in zip(columns, pool.map(check, columns), strict=True):
            out[column], absent[column] = value, where
            problems.lines.extend(lines)
    raw.data = raw.data.select([])  # the Arrow buffers are no longer needed: free them
    pa.default_memory_pool().release_unused()
    for column in REQUIRED[table]:
        if column in absent:
            problems.add(name, column, absent[column], "missing value")
    for column, (label, allowed) in ENUMS.get(table, {}).items():
        rows = out.get(column)
        if isinstance(rows, Text):
            out[column] = _enum(rows, column, label, allowed, name, problems)
    if table == "deals":
        _deal_checks(out, name, problems)
    fill_and_check_keys(out, table, raw.rows, name, problems)
    if problems.lines:
        raise FileError(problems.lines)
    del absent
    for value in out.values():
        if isinstance(value, Text):
            value.raw_at = _unread  # no message to write: the values as read may go
    pa.default_memory_pool().release_unused()
    if contacts is not None:
        pairs = contact_rows(out)
        if pairs is not None:
            contacts[table] = pairs
    try:
        return _assemble(out, raw.others, table, raw.rows)
    except ValueError as exc:  # not expected after the checks above; still name the file
        raise FileError([f"{name}: {exc}"]) from None


def _unread(i: int) -> object:
    raise AssertionError("values as read are freed once the table is valid")


def _assemble(out: dict[str, object], others: pd.DataFrame, table: str, n: int) -> pd.DataFrame:
    """The table as contract.conform would return it, built without copying a column: the text
    columns are written once into one object block, the others inserted beside it. If the
    contract's dtypes differ from what was built, contract.conform has the last word."""
    spec = contract.TABLES[table]
    blank = contract.conform(pd.DataFrame({c: [None] for c in spec}), table)
    coded = {
        c: _categorical(v) for c in CATEGORICAL.get(table, ()) if isinstance(v := out.get(c), Text)
    }
    out.update(coded)
    texts = [c for c in spec if blank[c].dtype == object and c not in coded]
    texts = [c for c in texts if not isinstance(v := out.get(c), pd.Series) or v.dtype == object]
    block = np.empty((len(texts), n), dtype=object)
    for i, column in enumerate(texts):
        value = out.pop(column, None)  # each column's codes freed as its objects are made
        if isinstance(value, Text):
            value.take_into(block[i])
        elif value is None:
            block[i] = blank[column].iloc[0]
        else:
            block[i] = np.asarray(value, dtype=object)
    frame = pd.DataFrame(block.T, columns=texts, index=pd.RangeIndex(n), copy=False)
    for loc, column in enumerate(spec):
        if column in texts:
            continue
        value = out.pop(column, None)
        if value is None:
            value = pd.Series(blank[column].iloc[0], index=frame.index, dtype=blank[column].dtype)
        frame.insert(loc, column, value)
    for column in others.columns:
        frame[column] = others[column]
    expected = [
        frame[c].dtype
        if c in coded or (c not in texts and frame[c].dtype == TEXT)
        else blank[c].dtype
        for c in spec
    ]
    if frame.dtypes.iloc[: len(spec)].tolist() != expected:
        return contract.conform(frame, table)
    return frame


# the Arrow strings an id column is handed over as (no str object per row)
TEXT = pd.ArrowDtype(pa.string())


def _categorical(rows: Text) -> pd.Categorical:
    """A text column as a categorical: a category per distinct stripped value, missing rows NaN."""
    merged, names = pd.factorize(rows.vals)  # stripped values may repeat; None is -1
    if len(names) == len(rows.vals) and rows.codes is not None:
        codes = rows.codes  # the values are the categories as they are, in the same order
    else:
        codes = np.append(merged, -1)[rows.row_codes()]
    small = np.int8 if len(names) < 127 else np.int16 if len(names) < 32767 else np.int32
    categories = pd.Index(np.asarray(names, dtype=object), dtype=object)
    return pd.Categorical.from_codes(codes.astype(small, copy=False), categories, validate=False)


def _column(
    values: pa.ChunkedArray, kind: str, unique: bool, column: str, name: str, problems: Problems
) -> tuple[object, np.ndarray]:
    """One known column typed (a Text for text), and where it is missing."""
    if not is_text(values.type):
        return _typed_column(values, kind, column, name, problems)
    rows = text(values, unique and kind == "str")
    absent = rows.missing()
    if kind in ("ts", "date"):
        distinct = pd.Series(rows.vals, dtype=object)
        if kind == "ts":
            offset = pd.Series(has_offset(rows.vals))
            out = _timestamps(ref.parse_timestamps(distinct, distinct, offset), rows, utc=True)
        else:
            out = _timestamps(ref.parse_dates(distinct), rows, utc=False)
        problems.add(name, column, ~absent & out.isna().to_numpy(), _message(DATE, rows))
        return out, absent
    if kind == "bool":
        lowered = pd.Series(rows.vals, dtype=object).str.lower()
        truthy = lowered.isin(TRUE_WORDS).to_numpy()
        bad = (lowered.notna() & ~lowered.isin(TRUE_WORDS) & ~lowered.isin(FALSE_WORDS)).to_numpy()
        problems.add(name, column, rows.spread(bad, False), _message(BOOL, rows))
        return _series(rows.spread(truthy, False)), absent
    if kind in ("float", "int"):
        numbers = pd.to_numeric(pd.Series(rows.vals, dtype=object), errors="coerce")
        parsed = numbers.astype("float64").to_numpy()
        out = rows.spread(parsed, np.nan)
        problems.add(name, column, ~absent & np.isnan(out), _message(NUMBER, rows))
        return _series(out), absent
    return rows, absent


def _typed_column(
    values: pa.ChunkedArray, kind: str, column: str, name: str, problems: Problems
) -> tuple[object, np.ndarray]:
    """A column stored as numbers, booleans or timestamps (Parquet)."""
    if kind == "bool" and pa.types.is_boolean(values.type):
        return _series(values.fill_null(False).to_numpy()), _nulls(values)
    numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
    if kind in ("float", "int") and numeric:
        return values.to_pandas().astype("float64", copy=False), _nulls(values)
    if kind == "ts" and _utc_ns(values.type):
        # as the contract has it already: the int64 nanoseconds as they are (to_pandas would
        # convert the time zone of every row)
        chunks = [c.to_numpy(zero_copy_only=False) for c in values.chunks]
        stamps = np.concatenate(chunks) if chunks else np.empty(0, "datetime64[ns]")
        out = pd.Series(stamps, dtype=contract.UTC_NS, copy=False)
        return out, out.isna().to_numpy()
    raw = values.to_pandas()  # what the reference reader would have been given
    if kind == "ts" and raw.dtype == contract.UTC_NS:
        return raw, _absent(raw)  # as the contract has it already
    if kind == "ts":
        dated = pd.api.types.is_datetime64_any_dtype(raw)
        parsed = ref.parse_timestamps(raw, None if dated else ref.as_text(raw))
    elif kind == "date":
        parsed = ref.parse_dates(raw)
    elif kind == "bool":
        return ref.parse_bools(raw, name, column, problems), _absent(raw)
    elif kind in ("float", "int"):
        return ref.parse_numbers(raw, name, column, problems), _absent(raw)
    else:
        return legacy_text(raw), _absent(raw)
    absent = _absent(raw)
    if not pd.api.types.is_datetime64_any_dtype(raw):
        problems.add(name, column, ~absent & parsed.isna().to_numpy(), DATE, raw)
    return parsed, absent


def _utc_ns(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.unit == "ns" and kind.tz in ("UTC", "+00:00")


def _nulls(values: pa.ChunkedArray) -> np.ndarray:
    return pc.is_null(values, nan_is_null=True).to_numpy(zero_copy_only=False)


def _absent(raw: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(raw) or pd.api.types.is_numeric_dtype(raw):
        return raw.isna().to_numpy()
    return ref.as_text(raw).isna().to_numpy()


DATE = "cannot read {value} as a date (use ISO 8601, e.g. 2026-01-05 or 2026-01-05T14:30:00Z)"
BOOL = "cannot read {value} as true/false"
NUMBER = "cannot read {value} as a number"


def _message(template: str, rows: Text) -> Callable[[int], str]:
    return lambda i: template.replace("{value}", shown(rows.raw_at(i)))


def _enum(
    rows: Text,
    column: str,
    label: str,
    allowed: tuple[str, ...],
    name: str,
    problems: Problems,
) -> Text:
    lowered = pd.Series(rows.vals, dtype=object).str.lower()
    bad = (lowered.notna() & ~lowered.isin(allowed)).to_numpy()
    problems.add(
        name,
        column,
        rows.spread(bad, False),
        _message(f"unknown {label} {{value}} (expected one of: {', '.join(allowed)})", rows),
    )
    vals = lowered.where(lowered.notna(), None).to_numpy(dtype=object)
    return Text(rows.codes, vals, rows.raw_at, False, rows.blank)


def _deal_checks(out: dict[str, object], name: str, problems: Problems) -> None:
    """A deal's created_at defaults to its closed_at; a probability is between 0 and 1."""
    closed = out.get("closed_at")
    created = out.get("created_at")
    if isinstance(closed, pd.Series) or isinstance(created, pd.Series):
        if not isinstance(created, pd.Series):
            out["created_at"] = closed
        elif isinstance(closed, pd.Series):
            out["created_at"] = created.where(created.notna(), closed)
        column = "created_at" if created is not None else "closed_at"
        dates = out["created_at"]
        assert isinstance(dates, pd.Series)
        problems.add(
            name, column, dates.isna(), "missing value (a deal needs created_at or closed_at)"
        )
    p = out.get("stage_probability")
    if isinstance(p, pd.Series):
        problems.add(
            name,
            "stage_probability",
            p.notna() & ((p < 0) | (p > 1)),
            "{value} is not a probability between 0 and 1",
            p,
        )
