"""Where the canonical store's files live: a local folder, or an S3-compatible object store.

`HEATSYNC_STORE_URI` names it: unset, the local folder `HEATSYNC_HOME` (the layout and bytes of
every earlier version); a folder path or `file:///folder`, that folder; `s3://bucket/prefix`, the
objects under that prefix, reached through pyarrow's S3 client (`HEATSYNC_S3_ENDPOINT_URL` for a
store that is not AWS, such as MinIO; credentials and region as the AWS variables
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, else the AWS
SDK's usual chain).

A local folder is a `pathlib.Path`. An object store is an `ObjectPath`: the few Path operations
the store uses (`/`, name, stem, parent, exists, is_file, is_dir, glob, read_bytes, read_text,
unlink), and no local file I/O (it has no `__fspath__`, so code that would open it as a local
file fails instead of writing beside the working directory). Every file of the store is one
object, written in one upload that S3 makes visible only when complete: a reader sees the old
object or the new one, never part of one.

Locks of a store on an object store are PostgreSQL advisory locks when `HEATSYNC_POSTGRES_URL`
is set (`postgres_lock`: every machine using that database), else local files.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import posixpath
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

URI_VARIABLE = "HEATSYNC_STORE_URI"
POSTGRES_VARIABLE = "HEATSYNC_POSTGRES_URL"
ENDPOINT_VARIABLES = ("HEATSYNC_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


class StoreUriError(ValueError):
    """HEATSYNC_STORE_URI names no store heatsync can use."""


@dataclass(frozen=True)
class ObjectPath:
    """A file or folder of an object store: `key` is "bucket/prefix/..." on `fs`."""

    key: str
    fs: pafs.FileSystem = field(compare=False, repr=False)
    scheme: str = "s3"

    def __truediv__(self, part: str) -> ObjectPath:
        return ObjectPath(posixpath.join(self.key, str(part)), self.fs, self.scheme)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.key}"

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(posixpath.dirname(self.key), self.fs, self.scheme)

    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.key).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: an object store's folders are the prefixes of its objects."""

    def files(self, recursive: bool = False) -> list[ObjectPath]:
        """The objects under this folder, sorted (none when it does not exist)."""
        selector = pafs.FileSelector(self.key, recursive=recursive, allow_not_found=True)
        found = self.fs.get_file_info(selector)
        keys = sorted(f.path for f in found if f.type == pafs.FileType.File)
        return [ObjectPath(k, self.fs, self.scheme) for k in keys]

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        """The objects directly in this folder whose name matches `pattern`."""
        return (f for f in self.files() if fnmatch.fnmatchcase(f.name, pattern))

    def read_bytes(self) -> bytes:
        try:
            with self.fs.open_input_stream(self.key) as handle:
                return bytes(handle.read())
        except FileNotFoundError:
            raise
        except OSError as exc:
            if self._type() == pafs.FileType.NotFound:
                raise FileNotFoundError(str(self)) from exc
            raise

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        """Replace the object with `data` in one upload (visible only once complete)."""
        with self.fs.open_output_stream(self.key) as handle:
            handle.write(data)

    def unlink(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.exists():
            return
        self.fs.delete_file(self.key)


StorePath = Path | ObjectPath


def store_location(uri: str, home: Path, env: Mapping[str, str] | None = None) -> StorePath:
    """The folder or prefix `uri` names (`home` when it is empty)."""
    env = os.environ if env is None else env
    uri = uri.strip()
    if not uri:
        return home
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise StoreUriError(f"{URI_VARIABLE}={uri} names no bucket (s3://bucket/prefix)")
        key = posixpath.join(bucket, prefix.strip("/")) if prefix.strip("/") else bucket
        return ObjectPath(key, s3_filesystem(*_s3_settings(env)))
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise StoreUriError(f"{URI_VARIABLE}: {scheme}:// is not supported (a folder or s3://)")
    return Path(uri).expanduser().resolve()


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((env[n].strip() for n in names if (env.get(n) or "").strip()), "")


def _s3_settings(env: Mapping[str, str]) -> tuple[str, str, str, str, str]:
    return (
        _first(env, ENDPOINT_VARIABLES),
        _first(env, REGION_VARIABLES),
        (env.get("AWS_ACCESS_KEY_ID") or "").strip(),
        (env.get("AWS_SECRET_ACCESS_KEY") or "").strip(),
        (env.get("AWS_SESSION_TOKEN") or "").strip(),
    )


@functools.cache
def s3_filesystem(
    endpoint: str, region: str, access_key: str, secret_key: str, session_token: str
) -> pafs.S3FileSystem:
    """One S3 client per endpoint, region and credentials (kept for the process)."""
    options: dict[str, Any] = {}
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        if rest:
            options.update(endpoint_override=rest.rstrip("/"), scheme=scheme)
        else:
            options.update(endpoint_override=endpoint.rstrip("/"))
    if region:
        options["region"] = region
    if access_key and secret_key:
        options.update(access_key=access_key, secret_key=secret_key)
        if session_token:
            options["session_token"] = session_token
    return pafs.S3FileSystem(**options)


@contextmanager
def object_writer(path: ObjectPath) -> Iterator[BinaryIO]:
    """A handle whose bytes replace `path` when the block ends without an error. They are
    gathered in a local temporary file (a big table is written row group by row group, never
    whole in memory) and sent in one upload at the end: an error or a kill before then sends
    nothing, and S3 shows an object only once its upload completed."""
    with tempfile.TemporaryFile() as spool:
        yield cast(BinaryIO, spool)
        spool.flush()
        spool.seek(0)
        with path.fs.open_output_stream(path.key) as handle:
            handle.upload(spool)


def read_frame(path: StorePath, **kwargs: Any) -> pd.DataFrame:
    """`pd.read_parquet` of a store file."""
    if isinstance(path, ObjectPath):
        return pd.read_parquet(path.key, filesystem=path.fs, **kwargs)
    return pd.read_parquet(path, **kwargs)


def read_table(path: StorePath) -> pa.Table:
    """`pq.read_table` of a store file."""
    if isinstance(path, ObjectPath):
        return pq.read_table(path.key, filesystem=path.fs)
    return pq.read_table(path)


def dataset(files: list[StorePath], schema: pa.Schema) -> pads.Dataset:
    """One Parquet dataset over some files of one store."""
    objects = [f for f in files if isinstance(f, ObjectPath)]
    if objects:
        return pads.dataset(
            [f.key for f in objects], format="parquet", schema=schema, filesystem=objects[0].fs
        )
    return pads.dataset([str(f) for f in files], format="parquet", schema=schema)


def filled(folder: StorePath) -> bool:
    """Whether a store folder holds a store: on an object store, a copied store is complete
    when its portal.json is there (`move_folder` copies it last)."""
    if isinstance(folder, ObjectPath):
        return (folder / "portal.json").is_file()
    return folder.exists()


def move_folder(source: StorePath, target: StorePath) -> None:
    """Move a store folder. Locally one rename; on an object store a copy of each object
    (portal.json last), the source deleted afterwards."""
    if isinstance(source, ObjectPath) and isinstance(target, ObjectPath):
        files = source.files(recursive=True)
        files.sort(key=lambda f: f.name == "portal.json")
        for each in files:
            source.fs.copy_file(each.key, target.key + each.key[len(source.key) :])
        source.fs.delete_dir(source.key)
        return
    assert isinstance(source, Path) and isinstance(target, Path)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def download(source: ObjectPath, target: Path) -> None:
    """Copy every object under `source` into the local folder `target`."""
    for each in source.files(recursive=True):
        local = target / each.key[len(source.key) + 1 :]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(each.read_bytes())


def _lock_keys(name: str) -> tuple[int, int]:
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return digest & 0x7FFFFFFF, (digest >> 32) & 0x7FFFFFFF


@contextmanager
def postgres_lock(
    url: str, name: str, refused: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock `name` on a connection of its own; the server
    releases it when the connection ends, with the process however it ends. Without `refused`,
    wait for it; with it, try every 0.2 s and call `refused(holder)` after each refusal (holder:
    the holder's application name, which says its pid and host), which raises to give up."""
    import psycopg2

    scheme, sep, rest = url.strip().partition("://")
    conn = psycopg2.connect(
        f"{scheme.split('+', 1)[0]}{sep}{rest}",  # libpq's spelling of SQLAlchemy's URL
        connect_timeout=10,
        application_name=f"heatsync pid {os.getpid()} on {socket.gethostname()}"[:63],
    )
    conn.autocommit = True
    keys = _lock_keys(name)
    try:
        with conn.cursor() as cursor:
            if refused is None:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", keys)
            else:
                while True:
                    cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", keys)
                    if cursor.fetchone()[0]:
                        break
                    cursor.execute(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                        "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 2",
                        keys,
                    )
                    row = cursor.fetchone()
                    refused(str(row[0]) if row else "")
                    time.sleep(0.2)
        yield
    finally:
        conn.close()
