"""Several paged lists read at once and handed over page by page: memory stays a few pages a list.

`PageQueue` starts every list of an extract at once on the extract's threads
(`connectors.fanout`), then gives the lists' pages to the mapping thread one list after the
other, each in page order (`pages(name)`). A list has at most `ahead` pages asked for and not yet
handed over, so a long list waits for its reader instead of piling up in memory. Like
`connectors.fanout.read_pages`: a list starts with its first page alone, each page that has a
next one allows one more (up to `ahead`), the pages after a list's end are cancelled or dropped,
and the items are exactly those of reading page after page.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from connectors.fanout import Fanout, PagedRead

Page = tuple[list[dict[str, Any]], bool]


@dataclass
class _List:
    read: PagedRead
    asked: dict[int, Future[Page]] = field(default_factory=dict)  # not yet handed over
    end: int | None = None  # the last page, once known
    full: int = 0  # pages seen that had a next page
    seen: set[int] = field(default_factory=set)  # pages whose answer was looked at
    next: int = 1  # the next page to ask for
    given: int = 0  # pages handed over


class PageQueue:
    """The pages of named lists, read `ahead` pages ahead on `fanout`."""

    def __init__(self, fanout: Fanout, ahead: int) -> None:
        self.fanout = fanout
        self.ahead = max(1, ahead)
        self.lists: dict[str, _List] = {}

    def add(self, name: str, read: PagedRead) -> None:
        self.lists[name] = _List(read)
        self._top_up(self.lists[name])

    def __contains__(self, name: str) -> bool:
        return name in self.lists

    def _look(self, state: _List) -> None:
        """Learn the end of a list from the answers already in, in page order."""
        for page in sorted(state.asked):
            future = state.asked[page]
            if page in state.seen or not future.done() or future.cancelled():
                continue
            if state.end is not None and page > state.end:
                continue
            items, more = future.result()  # a failed read fails the extract at once
            state.seen.add(page)
            last = state.read.last
            if not items or not more or (last is not None and last(items)):
                state.end = page if state.end is None else min(state.end, page)
            else:
                state.full += 1
        if state.end is not None:
            for page in [p for p in state.asked if p > state.end]:
                state.asked.pop(page).cancel()

    def _top_up(self, state: _List) -> None:
        self._look(state)
        allowed = min(self.ahead, state.full + 1)
        while state.end is None and len(state.asked) < allowed:
            page = state.next
            state.next += 1
            state.asked[page] = self.fanout.submit(state.read.fetch, page)
            self._look(state)

    def pages(self, name: str) -> Iterator[list[dict[str, Any]]]:
        """The pages of one list, in order, each handed over once."""
        state = self.lists.pop(name)
        try:
            while True:
                page = state.given + 1
                if state.end is not None and page > state.end:
                    return
                self._top_up(state)
                future = state.asked.get(page)
                if future is None:
                    return
                while not future.done():
                    lists = (state, *self.lists.values())
                    running = [f for s in lists for f in s.asked.values() if not f.done()]
                    wait(running, return_when=FIRST_COMPLETED)
                    for other in (state, *self.lists.values()):
                        self._top_up(other)
                items, _ = future.result()
                self._look(state)
                del state.asked[page]
                state.given = page
                self._top_up(state)
                for other in self.lists.values():
                    self._top_up(other)
                yield items
        finally:
            for future in state.asked.values():
                future.cancel()

    def close(self) -> None:
        for state in self.lists.values():
            for future in state.asked.values():
                future.cancel()
        self.lists.clear()
