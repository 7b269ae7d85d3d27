"""Text columns as integer codes, and (portal, contact_id) keys found on integers.

`text_codes` codes a text column once (a Python object column by object identity, a categorical or
Arrow-backed one by its dictionary); `contact_rows` finds each row's contact through those codes;
`last_of_each_key` is drop_duplicates(keep="last") on the keys. Used by prepare (20M activities)
and plan_tasks, where hashing every row's strings was most of the time.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract


def _int_type(n: int) -> type[np.signedinteger[Any]]:
    """The smallest signed integer type holding -1..n."""
    for kind in (np.int8, np.int16, np.int32):
        if n < np.iinfo(kind).max:
            return kind
    return np.int64


def contact_rows(frame: pd.DataFrame, contacts: pd.DataFrame) -> np.ndarray:
    """Row position in `contacts` (unique keys) of each row's (portal, contact_id), -1 if
    unknown; as _contact_index, on integer codes."""
    return _activity_contacts(frame, contacts)[0].astype(np.int64, copy=False)


def text_codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a text column (-1 where missing) and its distinct values as str.

    Values that are not str are converted as contract.conform does, and values equal as text
    share a code. A Python object column is coded by object identity first (_identity_codes), a
    categorical or Arrow-backed one by its dictionary: no row's text is hashed.
    """
    if isinstance(values, np.ndarray) or values.dtype == object:
        codes, uniques = _identity_codes(np.asarray(values, dtype=object))
    elif isinstance(values.dtype, pd.CategoricalDtype):
        # the categorical's own codes (categories no row uses are harmless names)
        codes = np.asarray(values.cat.codes)
        categories = values.cat.categories
        if categories.inferred_type in ("string", "empty"):
            # distinct str already: nothing to convert or merge
            small = _int_type(len(categories))
            return codes.astype(small, copy=False), np.asarray(categories, dtype=object)
        uniques = np.asarray(categories, dtype=object)
    else:
        codes, uniques = pd.factorize(values)
    plain = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    names = contract._series(plain, "str")
    merged, distinct = pd.factorize(names)  # a missing value: -1
    small = _int_type(len(distinct))
    if len(distinct) < len(names) or (merged < 0).any():
        codes = np.append(merged, -1).astype(small)[codes]  # codes of -1 stay -1
    return codes.astype(small, copy=False), np.asarray(distinct, dtype=object)


def _identity_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of an object array by object identity (the same object, the same code) and one
    object per code.

    The rows' object addresses are hashed as integers: a column read from a file holds one object
    per distinct text, so this finds its values without touching each row's string (at 20M rows
    several times faster than hashing the texts). Equal texts in different objects get
    different codes here; text_codes merges them.
    """
    values = np.ascontiguousarray(values, dtype=object)
    if len(values) == 0 or ctypes.sizeof(ctypes.c_void_p) != 8:
        codes, uniques = pd.factorize(values)
        return codes, np.asarray(uniques, dtype=object)
    address = ctypes.cast(values.ctypes.data, ctypes.POINTER(ctypes.c_int64))
    # read in place while `values` holds the objects
    codes, _ = pd.factorize(np.ctypeslib.as_array(address, shape=(len(values),)))
    # codes are numbered in order of first appearance: a row is its code's first exactly where
    # the running maximum of the codes grows
    running = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.r_[True, running[1:] > running[:-1]])
    return codes, values[first]


def _shared_codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """text_codes of two text columns in one vocabulary: codes of a, codes of b, names.

    Coded together by object identity, so columns sharing their objects (scores made from the
    contacts) hash no text at all, and others hash each distinct text once.
    """
    if a.dtype == object and b.dtype == object:
        codes, names = text_codes(np.concatenate([a.to_numpy(), b.to_numpy()]))
        return codes[: len(a)], codes[len(a) :], names
    # categorical or Arrow-backed: each by its dictionary, then the two vocabularies merged
    code_a, names_a = text_codes(a)
    code_b, names_b = text_codes(b)
    merged, names = pd.factorize(np.concatenate([names_a, names_b]))
    to_a, to_b = np.append(merged[: len(names_a)], -1), np.append(merged[len(names_a) :], -1)
    return to_a[code_a], to_b[code_b], np.asarray(names, dtype=object)


def _activity_contacts(acts: pd.DataFrame, contacts: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Row position in `contacts` (unique keys) of each activity's (portal, contact_id), -1 if
    unknown, and the activity's contact id codes and names (text_codes).

    Text is coded once per column (_shared_codes); the pair lookup is then on integers.
    """
    pa, pc, p_names = _shared_codes(_column(acts, "portal"), _column(contacts, "portal"))
    ca, cc, c_names = _shared_codes(_column(acts, "contact_id"), _column(contacts, "contact_id"))
    n_p, n_c = len(p_names) + 1, len(c_names) + 1  # the last code of each is "missing"
    # 32-bit keys and rows when they fit: at 20M activities each 64-bit column is 160 MB
    wide = np.int64 if n_p * n_c >= 2**31 or len(contacts) >= 2**31 else np.int32

    def key(p_codes: np.ndarray, c_codes: np.ndarray) -> np.ndarray:
        out = _missing_as(p_codes, n_p - 1, wide)
        out *= n_c
        out += _missing_as(c_codes, n_c - 1, wide)
        return out

    c_key, a_key = key(pc, cc), key(pa, ca)
    rows = np.arange(len(contacts), dtype=wide)
    if n_p * n_c <= 4 * (len(a_key) + len(contacts)):
        table = np.full(n_p * n_c, -1, dtype=wide)
        table[c_key] = rows
        cidx = table[a_key]
    else:  # many portals: a hash lookup rather than a table of every (portal, id) pair
        pos = pd.Index(c_key).get_indexer(a_key)
        cidx = np.where(pos >= 0, rows[pos], -1)
    return cidx, ca, c_names


def last_of_each_key(frame: pd.DataFrame) -> np.ndarray:
    """Which rows are the last of their (portal, contact_id), as drop_duplicates(keep="last")
    finds them, on integer codes."""
    p_codes, p_names = text_codes(_column(frame, "portal"))
    c_codes, c_names = text_codes(_column(frame, "contact_id"))
    n_c = len(c_names) + 1
    key = _missing_as(p_codes, len(p_names)) * n_c + _missing_as(c_codes, n_c - 1)
    return np.asarray(~pd.Series(key).duplicated(keep="last"))


def _missing_as(
    codes: np.ndarray, fill: int, dtype: type[np.signedinteger[Any]] = np.int64
) -> np.ndarray:
    """Codes as `dtype` (a copy) with -1 (missing) replaced by `fill`."""
    out = codes.astype(dtype)
    out[out < 0] = fill
    return out


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(None, index=frame.index, dtype=object)
