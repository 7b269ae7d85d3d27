"""Text columns of the Arrow reader as codes into their distinct values, stripped once each.

A column read from a file becomes `Text`: the distinct values (stripped as str.strip() does,
blank ones missing) and each row's code into them, so every check on text runs once per distinct
value. Parquet's own dictionaries are reused (chunks of one row group share one, so only the
row groups' dictionaries are merged). A column expected to hold each value once (an id) is not
hashed into a table: its values are hashed to 64-bit numbers with numpy and sorted; when no two
numbers are equal no two values are, and the rows are their own codes. Only a repeated number
(a real duplicate, or a collision) sends the column through Arrow's dictionary encoding.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import files_frame as ref

# what str.strip() removes (every character whose str.isspace() is true)
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# ids longer than this many bytes are checked with Arrow's hash table instead
MAX_HASHED_BYTES = 64
# ids from which the duplicate check sorts on two threads
SPLIT_SORT_ROWS = 1_000_000
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)
_NO_BYTES = np.empty(0, dtype=np.uint8)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(31))


@dataclass
class Text:
    """A column as stripped text: row i is vals[codes[i]] (vals[i] when codes is None), missing
    where the code is -1 or the value None. `unique`: no value but None is in vals twice.
    `raw_at(i)`: row i's value as read. `blank`: where vals is None."""

    codes: np.ndarray | None
    stored: np.ndarray | None  # vals, or None while they are only in `arrow`
    raw_at: Callable[[int], object]
    unique: bool
    blank: np.ndarray | None = None
    arrow: pa.ChunkedArray | None = None

    def __post_init__(self) -> None:
        if self.blank is None:
            self.blank = np.asarray(pd.isna(self.vals), dtype=bool)

    @property
    def vals(self) -> np.ndarray:
        if self.stored is None:
            assert self.arrow is not None
            self.stored = self.arrow.to_pandas(deduplicate_objects=False).to_numpy()
            self.arrow = None
        return self.stored

    def missing(self) -> np.ndarray:
        assert self.blank is not None
        return self.spread(self.blank, True)

    def spread(self, per_value: np.ndarray, fill: object) -> np.ndarray:
        """Row values from one value per distinct text (`fill` for missing rows)."""
        if self.codes is None:
            return per_value
        return np.append(per_value, np.asarray([fill], dtype=per_value.dtype))[self.codes]

    def objects_with_none(self) -> np.ndarray:
        """vals and a None after them (what code -1 takes)."""
        return np.append(self.vals, np.asarray([None], dtype=object))

    def objects(self) -> np.ndarray:
        return self.spread(self.vals, None)

    def take_into(self, out: np.ndarray) -> None:
        """Write the row values (None where missing) into `out`."""
        if self.codes is None and self.stored is None and self.arrow is not None:
            start = 0  # a chunk at a time: no second array of every row's object
            for chunk in self.arrow.chunks:
                out[start : start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                start += len(chunk)
        elif self.codes is None:
            out[:] = self.vals
        else:
            np.take(self.objects_with_none(), self.codes, out=out)

    def row_codes(self) -> np.ndarray:
        return np.arange(len(self.vals)) if self.codes is None else self.codes

    def canonical(self) -> Text:
        """The same text with one code per distinct value and -1 for every missing row."""
        assert self.blank is not None
        if self.unique:
            if not self.blank.any():
                return self
            codes = np.where(self.missing(), -1, self.row_codes())
            return Text(codes, self.vals, self.raw_at, True, self.blank)
        codes, uniques = pd.factorize(self.vals)
        vals = np.asarray(uniques, dtype=object)
        return Text(np.append(codes, -1)[self.row_codes()], vals, self.raw_at, True)

    def filled(self, value: str) -> Text:
        """Canonical text with `value` in the missing rows."""
        same = self.canonical()
        found = np.flatnonzero(same.vals == value)
        vals = same.vals if found.size else np.append(same.vals, np.asarray([value], object))
        code = int(found[0]) if found.size else len(vals) - 1
        codes = same.row_codes()
        blank = np.zeros(len(vals), dtype=bool)
        return Text(np.where(codes < 0, code, codes), vals, self.raw_at, True, blank)


def is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)


def _stripped(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    out = pc.utf8_trim(values, characters=WHITESPACE)
    empty = pc.equal(out, "")
    if not pc.any(empty).as_py():  # the usual case: no copy of the strings
        return out
    return pc.if_else(empty, pa.scalar(None, out.type), out)


def text(values: pa.ChunkedArray, unique: bool = False) -> Text:
    """Distinct values stripped (blank is missing) and each row's code, for a text column;
    `unique`: the column is expected to hold each value once (see the module docstring)."""
    if pa.types.is_null(values.type) or len(values) == 0:
        empty = np.empty(0, dtype=object)
        return Text(np.full(len(values), -1, np.int32), empty, lambda i: None, True)
    if pa.types.is_dictionary(values.type):
        distinct, codes = _dictionary_codes(values)
    else:
        if unique:
            once = _unique_text(values)
            if once is not None:
                return once
        encoded = values.dictionary_encode()
        chunks = [c for c in encoded.chunks if len(c)]
        distinct = chunks[-1].dictionary  # every chunk's dictionary is a prefix of the last one
        codes = np.concatenate([_indices(c) for c in chunks])
    stripped = _stripped(distinct)
    unchanged = pc.all(pc.equal(stripped, distinct)).as_py() is not False
    vals = stripped.to_numpy(zero_copy_only=False)
    blank = stripped.is_null().to_numpy(zero_copy_only=False)

    def raw_at(i: int) -> object:
        return distinct[int(codes[i])].as_py() if codes[i] >= 0 else None

    return Text(codes, vals, raw_at, unchanged, blank)


def _indices(chunk: pa.DictionaryArray) -> np.ndarray:
    indices = chunk.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    return indices.to_numpy(zero_copy_only=False)


def _dictionary_codes(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """One dictionary for a dictionary-encoded column and each row's code into it."""
    chunks = [c for c in values.chunks if len(c)]
    seen: dict[tuple[object, ...], int] = {}
    dictionaries: list[pa.Array] = []
    which = []
    for chunk in chunks:
        d = chunk.dictionary
        key = (*(b.address if b is not None else 0 for b in d.buffers()), d.offset, len(d))
        if key not in seen:
            seen[key] = len(dictionaries)
            dictionaries.append(d)
        which.append(seen[key])
    merged = pa.concat_arrays(dictionaries).dictionary_encode()
    mapping = _indices(merged)
    starts = np.cumsum([0, *(len(d) for d in dictionaries)])
    # per dictionary: its codes in the merged one, and -1 last (what a null index takes)
    tables = [np.append(mapping[a:b], np.int32(-1)) for a, b in pairwise(starts)]
    codes = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
    start = 0
    for chunk, w in zip(chunks, which, strict=True):
        np.take(tables[w], _indices(chunk), out=codes[start : start + len(chunk)])
        start += len(chunk)
    return merged.dictionary, codes


def _unique_text(values: pa.ChunkedArray) -> Text | None:
    """The column with rows as their own codes, if no stripped value is there twice; None when
    one may be (or a value is too long to hash here)."""
    chunks = [_stripped(c) for c in values.chunks]
    hashes = [_hash(c) for c in chunks]
    if any(h is None for h in hashes):
        return None
    stripped = pa.chunked_array(chunks, type=values.type)
    present: np.ndarray = np.concatenate([h for h in hashes if h is not None])
    if stripped.null_count:
        blank = stripped.is_null().to_numpy(zero_copy_only=False)
        present = present[~blank]
    else:
        blank = np.zeros(len(stripped), dtype=bool)
    if _repeats(present):
        return None
    # the str objects are made when the table is built, after the Arrow table is freed
    return Text(None, None, lambda i: values[i].as_py(), True, blank, stripped)


def _repeats(numbers: np.ndarray) -> bool:
    """Whether a number is there twice. Sorted (numpy's sort lets go of the GIL) as two halves
    split by the top bit, side by side: at 20M ids the sort is most of the check."""
    if len(numbers) < SPLIT_SORT_ROWS or (os.cpu_count() or 1) < 2:
        return _sorted_repeats(numbers)
    high = numbers >= np.uint64(1 << 63)
    with ThreadPoolExecutor(2, thread_name_prefix="heatsync-ids") as pool:
        return any(pool.map(_sorted_repeats, (numbers[~high], numbers[high])))


def _sorted_repeats(numbers: np.ndarray) -> bool:
    numbers.sort()
    return bool((numbers[1:] == numbers[:-1]).any())


def _hash(strings: pa.Array) -> np.ndarray | None:
    """A 64-bit number per value, equal for equal values (garbage where null), read from the
    array's own bytes eight at a time (no copy of the strings)."""
    n = len(strings)
    wide = pa.types.is_large_string(strings.type)
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(
        offsets_buffer,
        dtype=np.int64 if wide else np.int32,
        count=n + 1,
        offset=strings.offset * (8 if wide else 4),
    ).astype(np.int64)
    lengths = np.diff(offsets)
    width = int(lengths.max()) if n else 0
    if width > MAX_HASHED_BYTES:
        return None
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else _NO_BYTES
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    # every position's next eight bytes as one little-endian number (an unaligned view)
    words = np.ndarray(shape=(data.size + 1,), dtype="<u8", buffer=padded, strides=(1,))
    out = lengths.astype(np.uint64) * _MIX[0]
    for start in range(0, width, 8):
        left = np.clip(lengths - start, 0, 8)
        piece = words[np.minimum(offsets[:-1] + start, data.size)] & _MASKS[left]
        mixed = (out ^ piece) * _MIX[1]
        mixed ^= mixed >> _MIX[2]
        # a value's number depends on its own bytes only, not on the longest value beside it
        out = np.where(left > 0, mixed, out)
    return out


def legacy_text(raw: pd.Series) -> Text:
    """A column of another type (numbers, dates) as the reference reader turns it into text."""
    codes, uniques = pd.factorize(ref.as_text(raw))
    return Text(codes, np.asarray(uniques, dtype=object), lambda i: raw.iloc[i], True)
