"""The amoCRM sandbox keeps a list's filtered, ordered records between its pages (`ListCache`):
paging builds the list once, a change to the account shows on the next page, and a read from
the first page sees even a record edited by hand."""

from __future__ import annotations

import requests

from sandbox.amocrm.server import AmoSandboxServer


def _page(api: requests.Session, srv: AmoSandboxServer, page: int, **query: str) -> list[dict]:
    params = {"limit": "40", "page": str(page), **query}
    answer = api.get(f"{srv.base_url}/api/v4/contacts", params=params, timeout=5)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["_embedded"]["contacts"])


def test_paging_builds_the_list_once(amo_server: AmoSandboxServer, amo_api) -> None:
    built: list[object] = []
    original = amo_server.ctx.lists.get

    def counting(state, key, build, **kw):  # type: ignore[no-untyped-def]
        return original(state, key, lambda: built.append(key) or build(), **kw)

    amo_server.ctx.lists.get = counting  # type: ignore[method-assign]
    ids = [c["id"] for page in (1, 2, 3) for c in _page(amo_api, amo_server, page)]
    assert ids == sorted(amo_server.state.contacts)
    assert len(built) == 1
    _page(amo_api, amo_server, 1, **{"order[updated_at]": "desc"})  # another query: another list
    assert len(built) == 2


def test_a_write_between_pages_shows_on_the_next_page(
    amo_server: AmoSandboxServer, amo_api
) -> None:
    newest = {"order[updated_at]": "desc"}
    first = _page(amo_api, amo_server, 1, **newest)
    oldest = _page(amo_api, amo_server, 3, **newest)[-1]
    body = [{"id": oldest["id"], "first_name": "Moved"}]
    answer = amo_api.patch(f"{amo_server.base_url}/api/v4/contacts", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    again = _page(amo_api, amo_server, 1, **newest)
    assert again[0]["id"] == oldest["id"] and again[0]["first_name"] == "Moved"
    assert [c["id"] for c in again[1:]] == [c["id"] for c in first[:-1]]


def test_a_record_added_by_hand_is_listed(amo_server: AmoSandboxServer, amo_api) -> None:
    before = _page(amo_api, amo_server, 3, limit="50")
    state = amo_server.state
    with state.lock:
        last = state.contacts[max(state.contacts)]
        added = {**last, "id": last["id"] + 1, "name": "Added by hand"}
        state.contacts[added["id"]] = added  # no version bump: the size changed
    after = _page(amo_api, amo_server, 3, limit="50")
    assert [c["id"] for c in after] == [c["id"] for c in before] + [added["id"]]


def test_a_read_from_the_first_page_sees_a_record_edited_by_hand(
    amo_server: AmoSandboxServer, amo_api
) -> None:
    newest = {"order[updated_at]": "desc"}
    oldest = _page(amo_api, amo_server, 3, **newest)[-1]
    with amo_server.state.lock:  # in place, no version bump, no size change
        raw = amo_server.state.contacts[oldest["id"]]
        raw["updated_at"] = max(c["updated_at"] for c in amo_server.state.contacts.values()) + 1
    assert _page(amo_api, amo_server, 1, **newest)[0]["id"] == oldest["id"]
