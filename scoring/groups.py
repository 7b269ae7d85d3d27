"""Reductions over activity-sized arrays keyed by small integers, without hashing.

Contacts are row positions 0..n-1 (`cidx`) and reason codes small integers, so a (contact, code)
pair is the integer cidx * n_codes + code. Groups are found by marking those integers in a dense
array and numbering the marked ones in order (groups come out sorted by key), and reduced with
np.bincount and ufunc.at: one pass each over the rows, where a pandas group-by on 20M rows hashes
every key first. A group's sum adds its rows in row order (plain, not the compensated summation
of a pandas group-by: sums may differ from one in the last bits); minima and maxima are exact.
"""

from __future__ import annotations

import numpy as np

NAT = np.iinfo(np.int64).min  # numpy's NaT as int64


def dense_groups(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each key (0..G-1, numbered in key order) and the G distinct keys.

    Keys are integers in [0, size); memory is one byte and one int per possible key.
    """
    marked = np.zeros(size, dtype=bool)
    marked[keys] = True
    distinct = np.flatnonzero(marked)
    number = np.cumsum(marked, dtype=np.int64 if size >= 2**31 else np.int32)
    del marked
    return number[keys] - 1, distinct


def group_min(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group 0..size-1 the smallest value, NaN where a group has no value (NaN skipped)."""
    out = np.full(size, np.nan)
    np.fmin.at(out, groups, np.asarray(values, dtype=float))
    return out


def group_max(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group 0..size-1 the largest value, NaN where a group has no value (NaN skipped)."""
    out = np.full(size, np.nan)
    np.fmax.at(out, groups, np.asarray(values, dtype=float))
    return out


def group_int_min(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group the smallest of integer values, as float, NaN where a group has no row."""
    values = np.asarray(values)
    if values.dtype.kind != "i":
        values = values.astype(np.int64)
    big = np.iinfo(values.dtype).max
    out = np.full(size, big, dtype=values.dtype)  # in the values' own type: no 20M-row copy
    np.minimum.at(out, groups, values)
    return np.where(out == big, np.nan, out.astype(float))


def group_latest(groups: np.ndarray, stamps: np.ndarray, size: int) -> np.ndarray:
    """Per group the latest of datetime64[ns] values (NaT where none), as datetime64[ns]."""
    out = np.full(size, NAT, dtype=np.int64)
    np.maximum.at(out, groups, np.asarray(stamps).view(np.int64))
    return out.view("datetime64[ns]")


def group_sum(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group the sum of float values in row order (NaN counted as 0)."""
    w = np.asarray(values, dtype=float)
    if np.isnan(w).any():
        w = np.where(np.isnan(w), 0.0, w)
    return np.bincount(groups, weights=w, minlength=size)[:size]


def group_count(groups: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(groups, minlength=size)[:size]
