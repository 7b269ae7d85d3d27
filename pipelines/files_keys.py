"""Keys of a table read by the Arrow reader: default portal, generated ids, duplicate keys.

What files_frame does with the texts (the portal defaults to "default", a row without an id gets
"row-<row number>", a row repeating an earlier row's keys is a problem), done on the integer codes
of the keys: an id column whose values are all different (files_text) has no duplicate to look
for, and otherwise only the rows whose id repeats are compared. Only when a given id looks like
a generated one are the texts themselves compared, by the reference code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import files_frame as ref
from pipelines.files_common import DEFAULT_PORTAL, Problems, shown
from pipelines.files_text import Text

ID_COLUMNS = {"activities": "activity_id", "deals": "deal_id"}
DUPLICATES = {  # table -> key columns, the column a duplicate is reported in, what it is called
    "contacts": (("portal", "contact_id"), "contact_id", "contact id"),
    "activities": (("portal", "activity_id"), "activity_id", "activity id"),
    "deals": (("portal", "deal_id", "contact_id"), "deal_id", "deal for this contact"),
}
GENERATED = "row-"


def fill_and_check_keys(
    out: dict[str, object], table: str, n: int, name: str, problems: Problems
) -> None:
    """Fill the default portal and the missing ids (from the row number), then report rows that
    repeat the keys of an earlier row (rows missing a key are reported as missing already)."""
    portal = out.get("portal")
    if isinstance(portal, Text):
        out["portal"] = portal.filled(DEFAULT_PORTAL)
    else:
        empty = np.asarray([DEFAULT_PORTAL], dtype=object)
        out["portal"] = Text(np.zeros(n, np.int32), empty, lambda i: None, True)
    keys, column, what = DUPLICATES[table]
    if not all(k in out or k == ID_COLUMNS.get(table) for k in keys):
        _fill_ids(out, table, n)
        return  # a missing key column is reported already
    texts = {k: v for k in keys if isinstance(v := out.get(k), Text)}
    canon = [texts[k].canonical() if k in texts else None for k in keys]
    ids = canon[keys.index(column)]
    # a row without an id gets "row-<n>": compare texts if a given id looks like one
    made = ID_COLUMNS.get(table) == column and ids is not None and bool(ids.missing().any())
    collide = made and ids is not None and _has_generated(ids)
    _fill_ids(out, table, n)
    if collide:
        frame = pd.DataFrame({k: _objects(out[k]) for k in keys})
        ref.duplicates(frame, list(keys), column, what, name, problems)
        return
    if ids is not None and ids.codes is None:
        return  # every given id is there once (and no id was generated): no duplicate keys
    main = keys.index(column)
    arrays = [c.row_codes() if c is not None else np.full(n, -1, np.int32) for c in canon]
    _report(arrays, main, _objects(out[column]), column, what, name, problems)


def _has_generated(rows: Text) -> bool:
    """Whether a given id looks like one made for a row without an id."""
    vals = pd.Series(rows.vals, dtype=object)
    return bool(vals.str.startswith(GENERATED).any())


def _objects(value: object) -> np.ndarray:
    if isinstance(value, Text):
        return value.objects()
    assert isinstance(value, pd.Series)
    return value.to_numpy(dtype=object)


def _fill_ids(out: dict[str, object], table: str, n: int) -> np.ndarray | None:
    """Give rows without an id "row-<row number>"; returns where (None for contacts)."""
    column = ID_COLUMNS.get(table)
    if column is None:
        return None
    given = out.get(column)
    if isinstance(given, Text) and given.arrow is not None:
        # every given id differs (files_text): handed over as the Arrow strings read, no str
        # object per row; generated ids are written in beside them
        missing = given.missing()
        ids_arrow = given.arrow
        if missing.any():
            numbers = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
            made = pc.binary_join_element_wise(GENERATED, numbers, "")
            ids_arrow = pc.if_else(pa.array(missing), made, ids_arrow.combine_chunks())
        out[column] = pd.Series(pd.arrays.ArrowExtensionArray(_plain(ids_arrow)), copy=False)
        return missing
    if isinstance(given, Text):
        ids, missing = given.objects(), given.missing()
    else:
        ids, missing = np.full(n, None, dtype=object), np.ones(n, dtype=bool)
    where = np.flatnonzero(missing)
    if where.size:
        numbers = pc.cast(pa.array(where + 1), pa.string())
        ids[where] = pc.binary_join_element_wise(GENERATED, numbers, "").to_numpy(
            zero_copy_only=False
        )
    out[column] = pd.Series(ids, copy=False)
    return missing


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Arrow strings as pa.string() (what TEXT columns hold), chunked."""
    chunked = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    return chunked.cast(pa.string()) if chunked.type != pa.string() else chunked


def _report(
    keys: list[np.ndarray],
    main: int,
    shown_values: np.ndarray,
    column: str,
    what: str,
    name: str,
    problems: Problems,
) -> None:
    """Report rows whose key codes (-1: missing, never a duplicate) repeat an earlier row's."""
    complete = np.logical_and.reduce([k >= 0 for k in keys])
    ids = keys[main]
    if not complete.any():
        return
    counts = np.bincount(ids[complete], minlength=int(ids.max()) + 1)
    if counts.max() <= 1:  # the usual case: every id once
        return
    rows = np.flatnonzero(complete & (np.append(counts, 0)[ids] > 1))
    frame = pd.DataFrame({i: k[rows] for i, k in enumerate(keys)})
    dup = np.zeros(len(ids), dtype=bool)
    dup[rows[frame.duplicated(keep="first").to_numpy()]] = True

    def describe(i: int) -> str:
        at = int(np.searchsorted(rows, i))
        same = (frame == frame.iloc[at]).all(axis=1).to_numpy()
        first = int(rows[np.flatnonzero(same)[0]]) + 1
        return f"duplicate {what} {shown(shown_values[i])} (first at row {first})"

    problems.add(name, column, dup, describe)


def contact_rows(out: dict[str, object]) -> pd.DataFrame | None:
    """The distinct (portal, contact_id) pairs of a valid table and how many rows hold each,
    from the codes (None without a contact_id column)."""
    portal, contact = out.get("portal"), out.get("contact_id")
    if not isinstance(portal, Text) or not isinstance(contact, Text):
        return None
    contact = contact.canonical()
    width = len(contact.vals)
    pair = portal.row_codes().astype(np.int64) * width + contact.row_codes()
    pair = pair[contact.row_codes() >= 0]
    if len(portal.vals) * width <= 4 * len(pair) + 1_000_000:
        rows = np.bincount(pair, minlength=len(portal.vals) * width)
        distinct = np.flatnonzero(rows)
        rows = rows[distinct]
    else:
        distinct, rows = np.unique(pair, return_counts=True)
    return pd.DataFrame(
        {
            "portal": portal.vals[distinct // max(width, 1)],
            "contact_id": contact.vals[distinct % max(width, 1)],
            "rows": rows,
        }
    )
