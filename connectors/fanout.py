"""Concurrent reads of one portal: a few threads sharing the client's session and rate limiter.

Under a real API's latency one request at a time spends a fraction of the budget; `Fanout` runs
an extract's independent reads (whole streams, id chunks, pages of a paged list) on `workers`
threads. The limiter paces them (it is thread-safe and holds a slot while a request is in
flight), so more threads never mean more requests per window. Only the submitting thread waits
for results, and tasks never wait for other tasks, so a small pool cannot deadlock. On an error
the pending tasks are cancelled and the running ones stop at their next page (`stopped`).

`InOrder` runs a handler on each of a series of results in the order they were added, as soon as
that result and every earlier one are in, on the thread that completed the last of them: reads
that depend on earlier reads start without anyone waiting, in an order that does not depend on
which answer came first.

`Gate` lets one producing task run at most `limit` units ahead of the submitting thread: the task
waits for a unit before making more work, the submitting thread gives one back as it takes a
result. Only that one task ever waits (never a callback or a task another one waits for), so the
rest of the pool keeps running the reads the submitting thread waits on: no deadlock with two
workers or more. With one worker, where the task runs on the submitting thread, it never waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from connectors.http import ConnectorError

T = TypeVar("T")

__all__ = ["Fanout", "Gate", "InOrder", "PagedRead", "Stopped", "done", "read_pages"]


class Stopped(ConnectorError):
    """A read given up because another read of the same extract failed."""


class Fanout:
    """`workers` threads for one extract; use as a context manager."""

    def __init__(self, workers: int, name: str = "heatsync-read") -> None:
        self.workers = max(1, workers)
        self.stopped = threading.Event()
        # one worker: every task runs at once on the calling thread (one request at a time)
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix=name) if self.workers > 1 else None
        )

    @property
    def concurrent(self) -> bool:
        """Whether tasks run on threads of their own (not at once on the submitting thread)."""
        return self._pool is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        if failed:
            self.stopped.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=failed)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def collect(self, items: Iterable[T]) -> list[T]:
        """The items of an iterator, stopping between items once the extract failed."""
        out = []
        for item in items:
            if self.stopped.is_set():
                raise Stopped("another read of this extract failed")
            out.append(item)
        return out

    def stream(self, fn: Callable[..., Iterable[T]], *args: Any) -> Future[list[T]]:
        """Read a whole (sequential) stream on one thread."""
        return self.submit(lambda: self.collect(fn(*args)))

    def map(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """`fn` of each item, concurrently, in the items' order."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        return [f.result() for f in [self.submit(fn, item) for item in items]]


class Gate:
    """At most `limit` units taken and not yet given back (see the module docstring); `limit`
    None: no bound. `peak` is the most ever taken at once."""

    def __init__(self, fanout: Fanout, limit: int | None) -> None:
        self._fanout = fanout
        self.limit = limit if fanout.concurrent else None
        self._free = threading.Semaphore(self.limit or 1)
        self._lock = threading.Lock()
        self.taken = self.peak = 0

    def take(self) -> None:
        """Wait for a unit; raises `Stopped` once the extract failed."""
        if self.limit is not None:
            while not self._free.acquire(timeout=0.05):
                if self._fanout.stopped.is_set():
                    raise Stopped("another read of this extract failed")
        with self._lock:
            self.taken += 1
            self.peak = max(self.peak, self.taken)

    def give(self) -> None:
        with self._lock:
            self.taken -= 1
        if self.limit is not None:
            self._free.release()


def done(value: T) -> Future[T]:
    """A future that already holds `value`."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


class InOrder:
    """Handlers run on results in the order they were added (see the module docstring). A failed
    future or handler stops the series and is passed to `on_error`, once."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._on_error = on_error
        self._lock = threading.RLock()
        self._slots: dict[int, tuple[Future[Any], Callable[[Any], None]]] = {}
        self._added = 0
        self._next = 0
        self._failed = False

    def add(self, future: Future[T], handler: Callable[[T], None]) -> None:
        with self._lock:
            self._slots[self._added] = (future, handler)
            self._added += 1
        future.add_done_callback(self._drain)

    def _drain(self, _: object = None) -> None:
        with self._lock:
            while not self._failed and self._next in self._slots:
                future, handler = self._slots[self._next]
                if not future.done():
                    return
                del self._slots[self._next]
                self._next += 1
                try:
                    handler(future.result())
                except BaseException as exc:
                    self._failed = True
                    self._slots.clear()
                    self._on_error(exc)


@dataclass
class PagedRead:
    """One list read page by page (`page=1, 2, ...`). `fetch(page)` returns the page's items and
    whether another page follows; `last(items)` may end the read after a page (newest-first
    reads that reached older records)."""

    fetch: Callable[[int], tuple[list[dict[str, Any]], bool]]
    last: Callable[[list[dict[str, Any]]], bool] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    _pages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _end: int | None = None  # the last page of the list, once known
    _full: int = 0  # pages received that had a next page
    _next: int = 1  # the next page to ask for
    _inflight: set[int] = field(default_factory=set)

    def _done(self) -> bool:
        return self._end is not None and all(p in self._pages for p in range(1, self._end + 1))


def read_pages(fanout: Fanout, reads: Sequence[PagedRead], ahead: int) -> None:
    """Fill each read's `items` in page order, reading up to `ahead` pages of a list at once.

    A list starts with its first page alone; each page that has a next one allows one more in
    flight (up to `ahead`), so a one-page list costs one request and a long one at most
    `ahead - 1` requests past its end. The items are exactly those of reading page after page.
    """
    ahead = max(1, ahead)
    running: dict[Future[tuple[list[dict[str, Any]], bool]], tuple[PagedRead, int]] = {}

    def top_up(read: PagedRead) -> None:
        allowed = min(ahead, read._full + 1)
        while read._end is None and len(read._inflight) < allowed:
            page = read._next
            read._next += 1
            read._inflight.add(page)
            running[fanout.submit(read.fetch, page)] = (read, page)

    for read in reads:
        top_up(read)
    try:
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                read, page = running.pop(future)
                read._inflight.discard(page)
                if read._end is not None and page > read._end:
                    continue
                items, more = future.result()
                read._pages[page] = items
                if not items or not more or (read.last is not None and read.last(items)):
                    read._end = page if read._end is None else min(read._end, page)
                else:
                    read._full += 1
                if read._end is not None:
                    for other, (owner, p) in list(running.items()):
                        if owner is read and p > read._end and other.cancel():
                            running.pop(other)
                            read._inflight.discard(p)
                top_up(read)
    finally:
        for future in running:
            future.cancel()
    for read in reads:
        assert read._done()
        read.items = [item for p in range(1, (read._end or 0) + 1) for item in read._pages[p]]
        read._pages.clear()
