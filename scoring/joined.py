"""Texts joined per group, each distinct prefix of a group's texts built once.

`join_per_group` gives per group 0..n-1 the labels of its rows (rows sorted by group, in order)
joined by a separator. The groups' sequences of label ids are numbered one position at a time
(an integer factorize per position over the groups that long); each distinct prefix is a string
built from its parent prefix's string plus one label, so a string is made per distinct prefix,
not per row. At 1M contacts the reasons and their texts repeat a lot.
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


def join_per_group(
    group: np.ndarray, value: np.ndarray, labels: np.ndarray, sep: str, n: int
) -> np.ndarray:
    """Per group 0..n-1 the labels[value] of its rows (`group` sorted) joined by `sep`, "" for a
    group without rows; an object array. `labels` are str."""
    out = np.full(n, "", dtype=object)
    if len(group) == 0:
        return out
    labels = np.asarray(labels, dtype=object)
    starts, sizes = group_starts(group)
    base = len(labels)
    seq = np.zeros(len(starts), dtype=np.int64)  # each group's prefix so far, as an id
    strings = np.zeros(0, dtype=object)  # the text of each prefix id of the last position
    sep_labels: np.ndarray | None = None
    for k in range(int(sizes.max())):
        sel = np.flatnonzero(sizes > k) if k else np.arange(len(starts))
        step = value[starts[sel] + k].astype(np.int64)
        if k:
            step += seq[sel] * base
        codes, keys = pd.factorize(step)
        label = keys % base
        if k == 0:
            texts = labels[label]
        else:
            if sep_labels is None:
                sep_labels = sep + labels
            texts = strings[keys // base] + sep_labels[label]
        # a group that ends here keeps its text now: ids are renumbered at every position
        ends = sizes[sel] == k + 1
        out[group[starts[sel[ends]]]] = texts[codes[ends]]
        seq[sel] = codes
        strings = texts
    return out
