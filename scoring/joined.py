"""Texts joined per group, each distinct prefix of a group's texts built once.

`join_per_group` gives per group 0..n-1 the labels of its rows (rows sorted by group, in order)
joined by a separator. The groups, longest first, have their sequences of label ids numbered one
position at a time (over the groups that long, on a dense table or by hashing); each distinct
prefix is a string built from its parent prefix's string plus one label, so a string is made per
distinct prefix, not per row. At 1M contacts the reasons and their texts repeat a lot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def first_of_codes(codes: np.ndarray) -> np.ndarray:
    """Position of each code's first row, for codes numbered in order of first appearance
    (pd.factorize without NA)."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    running = np.maximum.accumulate(codes)
    return np.flatnonzero(np.r_[True, running[1:] > running[:-1]])


def group_starts(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start row and size of each run of equal values in `group` (sorted)."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return starts, np.diff(np.r_[starts, len(group)])


def _numbered(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..d-1 of non-negative integer keys below `bound`, equal for equal keys, and the d
    distinct keys: by marking a dense table when it is small, else by hashing."""
    if bound <= 4 * len(keys) + 4096:
        mark = np.zeros(bound, dtype=bool)
        mark[keys] = True
        number = np.cumsum(mark, dtype=np.int64) - 1
        return number[keys], np.flatnonzero(mark)
    codes, distinct = pd.factorize(keys)
    return codes, np.asarray(distinct, dtype=np.int64)


def join_per_group(
    group: np.ndarray, value: np.ndarray, labels: np.ndarray, sep: str, n: int
) -> np.ndarray:
    """Per group 0..n-1 the labels[value] of its rows (`group` sorted) joined by `sep`, "" for a
    group without rows; an object array. `labels` are str, `value` in 0..len(labels)-1."""
    out = np.full(n, "", dtype=object)
    if len(group) == 0:
        return out
    labels = np.asarray(labels, dtype=object)
    sep_labels = sep + labels
    base = len(labels)
    starts, sizes = group_starts(group)
    # longest groups first: the groups still going at each position are a prefix
    by_size = np.argsort(-sizes, kind="stable")
    starts, sizes = starts[by_size], sizes[by_size]
    ids = group[starts]
    alive = np.searchsorted(-sizes, -np.arange(int(sizes[0]) + 1), side="left")
    seq = np.zeros(0, dtype=np.int64)  # each group's prefix so far, as a number
    strings = np.zeros(0, dtype=object)  # the text of each number
    for k in range(int(sizes[0])):
        m, ending = int(alive[k]), int(alive[k + 1])
        step = value[starts[:m] + k].astype(np.int64)
        if k:
            step += seq[:m] * base
        codes, keys = _numbered(step, base * max(len(strings), 1))
        label = keys % base
        texts = labels[label] if k == 0 else strings[keys // base] + sep_labels[label]
        out[ids[ending:m]] = texts[codes[ending:m]]
        seq, strings = codes, texts
    return out
