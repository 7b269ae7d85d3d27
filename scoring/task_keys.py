"""(portal, contact_id) keys of scores, contacts and task history as dense integers.

The text columns of all three are coded in one vocabulary (hashed once; the scores' keys once more
only when they are not the contacts' row for row); a pair is then an integer, dense over the pairs
seen (a missing portal or id is a value of its own, a history value that is no score's or
contact's is another). Each score finds the last contact row of its pair, as
drop_duplicates(keep="last") and the lookup of scoring.codes do, and text ranks order ids and
portals as sorting their strings would.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd


def shared_codes(
    columns: list[pd.Series], extra: pd.Series
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, int]:
    """Codes of conformed text columns (str or None) in one vocabulary, -1 where missing, and
    the distinct texts of the columns; the codes of `extra` (any objects, e.g. the history's)
    in it, values not in the columns taking codes after the texts; the number of codes.

    Strings are hashed (Python caches a str's hash, and the same object compares equal at once),
    which at 1M ids is faster than coding by object identity and merging equal texts after.
    """
    arrays = [c.to_numpy(dtype=object) for c in [*columns, extra]]
    # scores made from the contacts hold the same keys row for row: hashed once
    same = [
        i
        for i in range(1, len(columns))
        if len(arrays[i]) == len(arrays[0]) and bool((arrays[i] == arrays[0]).all())
    ]
    coded = [a for i, a in enumerate(arrays) if i not in same]
    codes, uniques = pd.factorize(np.concatenate(coded))
    bounds = np.cumsum([0] + [len(a) for a in coded])
    parts = [codes[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    rest = iter(parts)
    out: list[np.ndarray] = []
    for i in range(len(arrays)):
        out.append(out[0] if i in same else next(rest))
    # numbered in order of first appearance: the columns' texts come before the extra's
    n_texts = int(codes[: bounds[-2]].max(initial=-1)) + 1
    return out[:-1], np.asarray(uniques[:n_texts], dtype=object), out[-1], len(uniques)


def text_ranks(names: np.ndarray) -> np.ndarray:
    """Position of each distinct text in str order, and len(names) (after all) for missing:
    index it with codes (-1 takes the last slot)."""
    out = np.empty(len(names) + 1, dtype=np.int64)
    out[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    out[-1] = len(names)
    return out


def pair_ids(
    portals: list[np.ndarray], ids: list[np.ndarray], n_portals: int, n_ids: int
) -> tuple[list[np.ndarray], int]:
    """Dense integer ids (0..size-1) of (portal code, id code) pairs, the same for equal pairs
    across the arrays (a missing code, -1, is a value of its own), and size."""
    keys = []
    for p, c in zip(portals, ids, strict=True):
        key = np.where(p < 0, n_portals, p).astype(np.int64)
        key *= n_ids + 1
        key += np.where(c < 0, n_ids, c)
        keys.append(key)
    size = (n_portals + 1) * (n_ids + 1)
    total = sum(len(k) for k in keys)
    if size <= 4 * total + 16:
        return keys, size
    # many portals: number the pairs seen instead
    dense, uniques = pd.factorize(np.concatenate(keys))
    bounds = np.cumsum([0] + [len(k) for k in keys])
    return [dense[lo:hi] for lo, hi in itertools.pairwise(bounds)], len(uniques)


def last_row_of(ids: np.ndarray, size: int) -> np.ndarray:
    """Per pair id 0..size-1 its last row in `ids`, -1 where none."""
    out = np.full(size, -1, dtype=np.int64)
    np.maximum.at(out, ids, np.arange(len(ids), dtype=np.int64))
    return out


def marked(ids: np.ndarray, size: int) -> np.ndarray:
    """Per pair id 0..size-1 whether it occurs in `ids`."""
    out = np.zeros(size, dtype=bool)
    out[ids] = True
    return out
