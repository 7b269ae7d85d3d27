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
from typing import Any

from connectors.atomic import atomic_open

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
