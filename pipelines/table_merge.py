"""An extract merged into one table of the store, chunk by chunk: memory stays flat.

The stored table, then the extract's rows, are one sequence of rows; of rows sharing the table's
key the last is kept, at its place, and for contacts the removed ones are left out: what
`pd.concat([stored, fresh]).drop_duplicates(keys, keep="last")` gives, without holding either
side whole. A first pass reads only the key columns (`connectors.sink.keep_last`), a second
writes the kept rows as row groups with `pyarrow.parquet.ParquetWriter` into the one atomic save
of the table (pipelines.storage). Every row carries the store's key as `portal`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.sink import TableSink, keep_last, table_schema
from pipelines.storage import ObjectPath, StorePath
from scoring import contract

ROW_GROUP_ROWS = 50_000
READ_ROWS = 20_000

Saving = Callable[[StorePath], AbstractContextManager[BinaryIO]]


def open_parquet(path: StorePath) -> pq.ParquetFile:
    if isinstance(path, ObjectPath):
        return pq.ParquetFile(path.fs.open_input_file(path.key))
    return pq.ParquetFile(path)


class _Source:
    """One side of the merge, read chunk by chunk: a stored table, a sink, or an Arrow table."""

    def __init__(self, side: StorePath | TableSink | pa.Table) -> None:
        self.side = side
        if isinstance(side, TableSink):
            self.schema = side.schema
            self.rows = sum(t.num_rows for t in side.key_chunks(["contact_id"]))
        elif isinstance(side, pa.Table):
            self.schema, self.rows = side.schema, side.num_rows
        else:
            meta = open_parquet(side).metadata
            self.schema = meta.schema.to_arrow_schema().remove_metadata()
            self.rows = meta.num_rows

    def chunks(self, columns: list[str] | None = None) -> Iterator[pa.Table]:
        side = self.side
        if isinstance(side, TableSink):
            yield from side.key_chunks(columns) if columns is not None else side.chunks()
            return
        names = self.schema.names if columns is None else columns
        names = [c for c in names if c in self.schema.names]
        if isinstance(side, pa.Table):
            for start in range(0, side.num_rows, READ_ROWS):
                yield side.select(names).slice(start, READ_ROWS)
            return
        for batch in open_parquet(side).iter_batches(batch_size=READ_ROWS, columns=names):
            yield pa.Table.from_batches([batch])


class _Again:
    """An iterable calling `make` on each iteration (`keep_last` may read the keys twice)."""

    def __init__(self, make: Callable[[], Iterator[pa.Table]]) -> None:
        self.make = make

    def __iter__(self) -> Iterator[pa.Table]:
        return self.make()


def output_schema(name: str, sources: list[_Source], stored: _Source | None) -> pa.Schema:
    """The merged table's columns: the contract's, then the others of the sides with rows (with
    no rows anywhere, of the stored table), in order; the contract's types for its columns."""
    sides = [s for s in sources if s.rows] or ([stored] if stored is not None else [])
    fields: dict[str, pa.DataType] = {f.name: f.type for f in table_schema(name)}
    for side in sides:
        for f in side.schema:
            if f.name not in fields:
                fields[f.name] = pa.string() if pa.types.is_null(f.type) else f.type
    return pa.schema([(n, t) for n, t in fields.items()])


def _conformed(table: pa.Table, schema: pa.Schema, portal: str) -> pa.Table:
    """`table` with exactly `schema`'s columns (missing ones null), `portal` the store's key."""
    columns = []
    for f in schema:
        if f.name == "portal":
            columns.append(pa.repeat(pa.scalar(portal, pa.string()), table.num_rows))
        elif f.name in table.column_names:
            column = table[f.name]
            columns.append(column if column.type == f.type else column.cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def merge_table(
    name: str,
    target: StorePath,
    fresh: TableSink | pd.DataFrame,
    portal: str,
    removed: Iterable[str],
    saving: Saving,
) -> int:
    """Merge `fresh` (conformed rows) into the table saved at `target` in one atomic save;
    returns the rows it now holds. `removed`: contacts left out of the contacts table."""
    if isinstance(fresh, pd.DataFrame):
        fresh = pa.Table.from_pandas(fresh, preserve_index=False).replace_schema_metadata(None)
    stored = _Source(target) if target.exists() else None
    sources = [s for s in (stored, _Source(fresh)) if s is not None]
    schema = output_schema(name, sources, stored)
    keys = [k for k in contract.KEYS[name] if k != "portal"]
    key_schema = pa.schema([schema.field(k) for k in keys])
    gone = pa.array(sorted({str(i) for i in removed}) if name == "contacts" else [], pa.string())
    removed_masks: list[np.ndarray] = []

    def key_chunks() -> Iterator[pa.Table]:
        first = not removed_masks
        for source in sources:
            for table in source.chunks(keys):
                table = _conformed(table, key_schema, portal)
                if len(gone) and first:
                    found = pc.is_in(table["contact_id"], gone).to_numpy(zero_copy_only=False)
                    removed_masks.append(found.astype(bool))
                yield table
        removed_masks.append(np.empty(0, bool))  # marks the first pass as done

    keep = keep_last(_Again(key_chunks), keys)
    if len(gone):
        keep &= ~np.concatenate(removed_masks)
    with saving(target) as handle:
        writer = pq.ParquetWriter(handle, schema)
        try:
            offset, pending, held = 0, [], 0
            for source in sources:
                for table in source.chunks():
                    mask = keep[offset : offset + table.num_rows]
                    offset += table.num_rows
                    if not mask.all():
                        table = table.filter(pa.array(mask))
                    if table.num_rows:
                        pending.append(_conformed(table, schema, portal))
                        held += table.num_rows
                    if held >= ROW_GROUP_ROWS:
                        writer.write_table(pa.concat_tables(pending), ROW_GROUP_ROWS)
                        pending, held = [], 0
            if pending or not keep.any():
                writer.write_table(
                    pa.concat_tables(pending) if pending else schema.empty_table(), ROW_GROUP_ROWS
                )
        finally:
            writer.close()
    return int(keep.sum())
