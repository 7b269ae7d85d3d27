"""Canonical tables an extract streams out in chunks: memory stays flat however big the account.

A connector appends its mapped rows to a `TableSink`, one per canonical table. Every
`chunk_rows` rows the sink conforms them (`scoring.contract.conform`) and spills them as one Arrow
table to a Parquet file of the scratch folder its caller gave (`spill_into`), or keeps the Arrow
table in memory when there is none (tests, small portals). Rows go to named parts, handed back in
the parts' order whatever the order they were appended in, so a connector may map its lists as
their pages arrive and still produce the rows in the order of reading one list after the other.

What the connector used to return as frames is the sink read back: rows of contacts it learnt
were removed left out (`drop_contacts`), and of rows sharing a key (`scoring.contract.KEYS`) the
last one kept. `keep_last` finds those rows over any number of chunks from hashes of the keys,
checked exactly where two hashes agree, so the keys themselves never sit in memory all at once.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoring import contract

CHUNK_ROWS = 5_000
ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "ts": pa.timestamp("ns", tz="UTC"),
    "date": pa.timestamp("ns"),
    "bool": pa.bool_(),
    "float": pa.float64(),
    "int": pa.int64(),
}

_SPILL: ContextVar[Path | None] = ContextVar("heatsync_spill", default=None)


@contextlib.contextmanager
def spill_into(folder: Path) -> Iterator[Path]:
    """Within the block, extracts spill their chunks into `folder` (a local scratch folder)."""
    token = _SPILL.set(folder)
    try:
        yield folder
    finally:
        _SPILL.reset(token)


def spill_folder() -> Path | None:
    """The scratch folder set by `spill_into`, or None (chunks stay in memory)."""
    return _SPILL.get()


def table_schema(table: str, extra: Mapping[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of a conformed canonical table (contract columns, then `extra`)."""
    spec = {**contract.TABLES[table], **(extra or {})}
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in spec.items()])


def arrow_of(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A conformed frame as an Arrow table of exactly `schema` (no pandas metadata)."""
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def key_hashes(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """One uint64 per row from the values of `keys` (equal keys, equal hashes)."""
    if table.num_rows == 0:
        return np.empty(0, dtype=np.uint64)
    frame = table.select(list(keys)).to_pandas()
    hashes: np.ndarray = pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)
    return hashes


def keep_last(chunks: Iterable[pa.Table], keys: Sequence[str]) -> np.ndarray:
    """For the rows of `chunks` in order: True where no later row has the same `keys`.

    `chunks` is read twice at most (an iterable that can be iterated again): once for hashes,
    and, only when two rows share a hash, once for the keys of those rows."""
    hashes = np.concatenate([key_hashes(t, keys) for t in chunks] or [np.empty(0, np.uint64)])
    later: np.ndarray = pd.Series(hashes).duplicated(keep="last").to_numpy()
    if later.any():
        suspects = np.unique(hashes[later])
        where: list[np.ndarray] = []
        rows: list[pd.DataFrame] = []
        offset = 0
        for table in chunks:
            mine = np.isin(hashes[offset : offset + table.num_rows], suspects)
            if mine.any():
                where.append(np.flatnonzero(mine) + offset)
                rows.append(table.select(list(keys)).filter(pa.array(mine)).to_pandas())
            offset += table.num_rows
        exact = pd.concat(rows, ignore_index=True).duplicated(keep="last").to_numpy()
        later[np.concatenate(where)] = exact
    kept: np.ndarray = ~later
    return kept


class TableSink:
    """Rows of one canonical table, appended by a connector, spilled every `chunk_rows` rows.

    `parts` names the parts rows may be appended to, in the order they are read back. `folder`
    is where the chunks go (None: kept in memory). `dedupe`: of rows sharing the table's key,
    only the last is read back by `frame` and counted by `count`."""

    def __init__(
        self,
        table: str,
        folder: Path | None = None,
        extra: Mapping[str, str] | None = None,
        parts: Sequence[str] = ("",),
        chunk_rows: int | None = None,
        dedupe: bool = True,
    ) -> None:
        self.table = table
        self.extra = dict(extra or {})
        self.schema = table_schema(table, extra)
        self.folder = folder
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.keys = tuple(contract.KEYS[table]) if dedupe else ()
        self.removed: frozenset[str] = frozenset()
        self.appended = 0
        self._pending: dict[str, list[dict[str, Any]]] = {p: [] for p in parts}
        self._chunks: dict[str, list[Path | pa.Table]] = {p: [] for p in parts}
        self._spilled = 0
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def append(self, row: dict[str, Any], part: str = "") -> None:
        pending = self._pending[part]
        pending.append(row)
        self.appended += 1
        if len(pending) >= self.chunk_rows:
            self._spill(part)

    def extend(self, rows: Iterable[dict[str, Any]], part: str = "") -> None:
        for row in rows:
            self.append(row, part)

    def drop_contacts(self, contact_ids: Iterable[str]) -> None:
        """Leave the rows of these contacts out of what is read back."""
        self.removed = frozenset(str(i) for i in contact_ids)

    def close(self) -> None:
        """Spill what is pending (appending afterwards starts new chunks)."""
        for part in self._pending:
            if self._pending[part]:
                self._spill(part)

    def _spill(self, part: str) -> None:
        rows, self._pending[part] = self._pending[part], []
        frame = contract.conform(pd.DataFrame(rows), self.table, self.extra)
        unknown = sorted(set(frame.columns) - set(self.schema.names))
        if unknown:
            raise ValueError(f"{self.table}: columns outside the contract: {', '.join(unknown)}")
        table = arrow_of(frame, self.schema)
        if self.folder is None:
            self._chunks[part].append(table)
            return
        path = self.folder / f"{self.table}-{self._spilled:06d}.parquet"
        pq.write_table(table, path)
        self._spilled += 1
        self._chunks[part].append(path)

    def chunks(self) -> Iterator[pa.Table]:
        """The rows, chunk by chunk in the parts' order, removed contacts left out."""
        self.close()
        removed = pa.array(sorted(self.removed), type=pa.string())
        for part in self._chunks.values():
            for chunk in part:
                table = chunk if isinstance(chunk, pa.Table) else pq.read_table(chunk)
                if len(removed) and "contact_id" in table.column_names:
                    table = table.filter(pc.invert(pc.is_in(table["contact_id"], removed)))
                yield table

    def key_chunks(self, keys: Sequence[str]) -> Iterator[pa.Table]:
        """`chunks` reading only `keys` (and contact_id for the removed contacts) from disk."""
        self.close()
        wanted = list(dict.fromkeys([*keys, "contact_id"]))
        removed = pa.array(sorted(self.removed), type=pa.string())
        for part in self._chunks.values():
            for chunk in part:
                if isinstance(chunk, pa.Table):
                    table = chunk.select(wanted)
                else:
                    table = pq.read_table(chunk, columns=wanted)
                if len(removed):
                    table = table.filter(pc.invert(pc.is_in(table["contact_id"], removed)))
                yield table.select(list(keys))

    def count(self) -> int:
        """How many rows `frame` holds, without building it."""
        if not self.keys:
            return sum(t.num_rows for t in self.key_chunks(["contact_id"]))
        keys = [k for k in self.keys if k != "portal"]
        return int(keep_last(_Again(lambda: self.key_chunks(keys)), keys).sum())

    def frame(self) -> pd.DataFrame:
        """The whole table as a conformed frame (what a connector used to return)."""
        tables = list(self.chunks())
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        frame = contract.conform(table.to_pandas(), self.table, self.extra)
        if self.keys and len(frame):
            frame = frame.drop_duplicates(subset=list(self.keys), keep="last")
        return frame.reset_index(drop=True)

    def cleanup(self) -> None:
        """Delete the spilled chunks (the sink reads back nothing afterwards)."""
        for part in self._chunks.values():
            for chunk in part:
                if isinstance(chunk, Path):
                    chunk.unlink(missing_ok=True)
            part.clear()
        if self.folder is not None and self.folder.exists() and not any(self.folder.iterdir()):
            shutil.rmtree(self.folder, ignore_errors=True)


class _Again:
    """An iterable that calls `make` for each iteration (so `keep_last` may read twice)."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def __iter__(self) -> Iterator[pa.Table]:
        return iter(self.make())
