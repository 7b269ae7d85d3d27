"""The store of amoCRM's rotating OAuth tokens: one file per account and client id.

amoCRM's refresh tokens are single-use: each refresh spends the old one and answers a new pair.
Losing the new pair, or two processes spending one refresh token, locks the integration out until
someone authorizes it again. So:

- One JSON file per (account base URL, client id) under the token directory, mode 0600 (the
  directory 0700), written atomically: a temporary file in the same directory (0600 from its
  creation), fsync, rename over the old file, fsync of the directory.
- A single writer across threads and processes: an exclusive `fcntl.flock` on a lock file beside
  it, held by the caller from reading the stored pair, through the token request, to saving the
  answer (`TokenStore.locked`). A process that waited for the lock re-reads the file and uses the
  pair another process just saved instead of refreshing again.
- The new pair is saved before its access token is used for anything.
- Before the token request the file records the refresh in flight (which token is being spent,
  since when). If the process dies after amoCRM answered but before the save, the next run finds
  that record next to a refresh token amoCRM has already spent: it still tries the token once
  (the request may never have arrived) and, when amoCRM answers "revoked", says that an
  interrupted refresh lost the chain and how to authorize again, instead of a bare 401.
  Residual risk, which no client can remove: a crash in the milliseconds between amoCRM's answer
  arriving and the fsync of the file loses that answer, and with it the chain.
- With PostgreSQL (`PostgresTokenStore`, when HEATSYNC_POSTGRES_URL is set) the chain is a row
  of a table instead, shared by run workers on many machines: the lock is a row lock
  (`SELECT ... FOR UPDATE`) held by one transaction from reading the chain to saving the answer,
  and each save commits at once on a second connection, so that the in-flight record and the
  new pair are durable before the token request is sent and before the new token is used.
- Each chain remembers the grant it started from (a hash of the refresh token or authorization
  code given in the environment). A grant in the environment that differs from it is a new grant
  (the user authorized again): the store starts a new chain from it. The same grant as before
  means "keep using the stored chain", never "spend the initial token again".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.atomic import atomic_open

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

FORMAT = "heatsync-amocrm-tokens/1"


class TokenStoreError(Exception):
    """The token store cannot be read, written or locked."""


def fingerprint(value: str) -> str:
    """A hash that identifies a token or grant without storing it in clear."""
    return hashlib.sha256(value.encode()).hexdigest()


def store_name(base_url: str, client_id: str) -> str:
    """The file name of the chain of one account and integration."""
    key = fingerprint(f"{base_url.rstrip('/').lower()}|{client_id}")[:20]
    return f"amocrm-{key}.json"


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class TokenStore:
    """The token file of one account and client id, with its cross-process lock."""

    def __init__(
        self, directory: Path, base_url: str, client_id: str, *, lock_timeout_s: float = 120.0
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / store_name(base_url, client_id)
        self.lock_path = self.path.with_suffix(".lock")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.lock_timeout_s = lock_timeout_s
        with _THREAD_LOCKS_GUARD:
            self._thread_lock = _THREAD_LOCKS.setdefault(str(self.path), threading.Lock())

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            why = f"cannot create the token directory {self.directory}: {exc}"
            raise TokenStoreError(why) from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock (threads of this process and other processes)."""
        self._ensure_dir()
        deadline = time.monotonic() + self.lock_timeout_s
        if not self._thread_lock.acquire(timeout=self.lock_timeout_s):
            raise TokenStoreError(f"timed out waiting for the token store lock {self.lock_path}")
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EACCES):
                            raise
                        if time.monotonic() >= deadline:
                            raise TokenStoreError(
                                f"timed out waiting for the token store lock {self.lock_path} "
                                "(another heatsync process is refreshing the amoCRM token)"
                            ) from None
                        time.sleep(0.05)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            self._thread_lock.release()

    def read(self) -> dict[str, Any] | None:
        """The stored chain, or None when there is none yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read the token store {self.path}: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise TokenStoreError(
                f"the token store {self.path} is not valid JSON; restore it or authorize again"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TokenStoreError(f"the token store {self.path} has an unknown format")
        return data

    def write(self, data: dict[str, Any]) -> None:
        """Replace the stored chain atomically (temp file, fsync, rename, fsync of the dir)."""
        self._ensure_dir()
        body = {
            **data,
            "format": FORMAT,
            "base_url": self.base_url,
            "client_id": self.client_id,
            "saved_at": time.time(),
        }
        payload = json.dumps(body, indent=2, sort_keys=True).encode("utf-8")
        # temp file beside it (0600 from creation), fsync, rename, fsync of the directory
        with atomic_open(self.path, sync_directory=True) as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(payload)


TOKENS_TABLE = "heatsync_amocrm_tokens"
LOCKS_TABLE = "heatsync_amocrm_token_locks"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TOKENS_TABLE} (chain text PRIMARY KEY, body text NOT NULL, "
    "saved_at timestamptz NOT NULL DEFAULT now())",
    f"CREATE TABLE IF NOT EXISTS {LOCKS_TABLE} (chain text PRIMARY KEY)",
)
_SCHEMA_READY: set[str] = set()


def libpq_url(url: str) -> str:
    """`url` as libpq reads it: SQLAlchemy's `postgresql+psycopg2://` names a driver too."""
    scheme, sep, rest = url.strip().partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PostgresTokenStore(TokenStore):
    """The chain of one account and client id as a row of a PostgreSQL table.

    `locked()` holds a transaction with `SELECT ... FOR UPDATE` on the chain's row of
    heatsync_amocrm_token_locks, so that one process on one machine at a time reads, spends and
    saves the chain; `write()` commits each save at once on a second connection (a process that
    dies mid-refresh leaves its in-flight record, like the file store). A missing row is read
    from `seed` (the file store of the token directory), so a chain kept in a file before
    PostgreSQL was configured carries over.
    """

    def __init__(
        self,
        url: str,
        base_url: str,
        client_id: str,
        *,
        lock_timeout_s: float = 120.0,
        seed: TokenStore | None = None,
    ) -> None:
        self.url = libpq_url(url)
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.lock_timeout_s = lock_timeout_s
        self.chain = store_name(base_url, client_id).removesuffix(".json")
        self.seed = seed
        self._held: Connection | None = None

    def _connect(self) -> Connection:
        import psycopg2

        try:
            conn = psycopg2.connect(self.url, connect_timeout=10)
        except psycopg2.Error as exc:
            raise TokenStoreError(
                f"cannot reach the PostgreSQL token store (HEATSYNC_POSTGRES_URL): "
                f"{str(exc).strip()}"
            ) from None
        conn.autocommit = True
        if self.url not in _SCHEMA_READY:
            self._create_tables(conn)
            _SCHEMA_READY.add(self.url)
        return conn

    @staticmethod
    def _create_tables(conn: Connection) -> None:
        import psycopg2

        for statement in _SCHEMA:
            try:
                with conn.cursor() as cursor:
                    cursor.execute(statement)
            except psycopg2.errors.UniqueViolation:
                pass  # another process created it at the same moment

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the chain's row lock (every process on every machine using this database)."""
        import psycopg2

        data = self._connect()
        try:
            with data.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {LOCKS_TABLE} (chain) VALUES (%s) ON CONFLICT DO NOTHING",
                    (self.chain,),
                )
            lock = self._connect()
            lock.autocommit = False
            try:
                with lock.cursor() as cursor:
                    wait_ms = max(1, int(self.lock_timeout_s * 1000))
                    cursor.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                    try:
                        cursor.execute(
                            f"SELECT chain FROM {LOCKS_TABLE} WHERE chain = %s FOR UPDATE",
                            (self.chain,),
                        )
                    except psycopg2.errors.LockNotAvailable:
                        raise TokenStoreError(
                            f"timed out waiting for the amoCRM token lock in PostgreSQL "
                            f"({LOCKS_TABLE}, chain {self.chain}): another heatsync process "
                            "is refreshing the token"
                        ) from None
                self._held = data
                try:
                    yield
                finally:
                    self._held = None
            finally:
                lock.rollback()
                lock.close()
        finally:
            data.close()

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        import psycopg2

        conn = self._held or self._connect()
        try:
            with conn.cursor() as cursor:
                yield cursor
        except psycopg2.Error as exc:
            why = str(exc).strip()
            raise TokenStoreError(f"the PostgreSQL token store failed: {why}") from None
        finally:
            if conn is not self._held:
                conn.close()

    def read(self) -> dict[str, Any] | None:
        """The stored chain; without a row, the seed's (the token file's), or None."""
        with self._cursor() as cursor:
            cursor.execute(f"SELECT body FROM {TOKENS_TABLE} WHERE chain = %s", (self.chain,))
            row = cursor.fetchone()
        if row is None:
            return self.seed.read() if self.seed is not None else None
        try:
            data = json.loads(row[0])
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TokenStoreError(
                f"the token chain {self.chain} in {TOKENS_TABLE} has an unknown format"
            )
        return data

    def write(self, data: dict[str, Any]) -> None:
        """Replace the stored chain; committed when this returns."""
        body = {
            **data,
            "format": FORMAT,
            "base_url": self.base_url,
            "client_id": self.client_id,
            "saved_at": time.time(),
        }
        payload = json.dumps(body, sort_keys=True)
        with self._cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TOKENS_TABLE} (chain, body, saved_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (chain) DO UPDATE SET body = EXCLUDED.body, saved_at = now()",
                (self.chain, payload),
            )
