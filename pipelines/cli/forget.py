"""`heatsync forget CONTACT`: delete one contact's personal data from the local store (a data
subject's request for erasure), with no CRM call and no Dagster.

In each store of the selected portals (every configured portal's by default, a store shared by
two names once) it removes, under the store's lock and file by file atomically, the contact's
rows of contacts, activities, deals, quarantine, every day's scores, the decision log (and an
older store's changes.parquet), written.parquet and the task ledger, prints the rows removed per
table and appends a line without personal data to the store's erasures.jsonl. The CRM is not
touched: erasing the contact there is the CRM's job, and while the contact exists in the CRM a
later extract reads it back. Exit 0 when removed, 1 when not confirmed, 2 when no store knows the
contact (or the portal is unknown).
"""

from __future__ import annotations

import sys
from typing import TextIO

import pandas as pd

from pipelines.cli.common import StoreNotFound, portal_stores
from pipelines.store import FORGET_TABLES, PortalStore

NOT_FOUND = 2
NOT_CONFIRMED = 1
# what a store keeps outside heatsync's reach, said after every erasure
AFTERWARDS = (
    "heatsync did not touch the CRM: erase the contact there too (HubSpot: delete it, or its "
    "GDPR delete; amoCRM/Kommo: delete the contact). While it exists in the CRM, a later run "
    "reads it back (when the CRM reports it changed, or at a full extract) and scores it, writes "
    "its fields and plans its tasks again.\n"
    "Dagster's run history (DAGSTER_HOME) may still name it in run metadata (left-out lists, "
    "hot contacts unattended, failure examples): see docs/operations.md, "
    '"Where personal data lives".'
)


def forget(
    contact_id: str,
    portal: str | None,
    yes: bool,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Remove `contact_id` from the stores of `portal` (or of every portal); see the module."""
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    try:
        stores = portal_stores(portal)
    except StoreNotFound as exc:
        print(f"heatsync forget: {exc}", file=sys.stderr)
        return NOT_FOUND
    found = [(s, counts) for s in stores if sum((counts := s.forget(contact_id, False)).values())]
    if not found:
        where = ", ".join(f"{s.portal} ({s.key})" for s in stores)
        print(f"heatsync forget: no contact {contact_id} in the store of {where}", file=sys.stderr)
        return NOT_FOUND
    if not yes:
        for store, counts in found:
            print(_table(store, contact_id, counts, "to remove"), file=out)
        if not stdin.isatty():
            print(
                "heatsync forget: not confirmed; nothing deleted (pass --yes when not at a "
                "terminal)",
                file=sys.stderr,
            )
            return NOT_CONFIRMED
        print("Delete these rows for good? [y/N] ", end="", file=out, flush=True)
        if stdin.readline().strip().lower() not in ("y", "yes"):
            print("heatsync forget: nothing deleted", file=sys.stderr)
            return NOT_CONFIRMED
    for store, _ in found:
        with store.lock():
            marks = _marks(store, contact_id)
            removed = store.forget(contact_id)
            path = store.record_erasure(contact_id, removed, pd.Timestamp.now(tz="UTC"))
            mentions = _mentions(store, marks)
        print(_table(store, contact_id, removed, "removed"), file=out)
        print(f"  recorded in {path} (a hash of the id, no personal data)", file=out)
        if mentions:
            print(f"  note: {mentions}", file=out)
    print(AFTERWARDS, file=out)
    return 0


def _table(store: PortalStore, contact_id: str, counts: dict[str, int], what: str) -> str:
    lines = [f"contact {contact_id}, account {store.key} (portal {store.portal}), rows {what}:"]
    lines += [f"  {name:<11} {counts.get(name, 0):>6}" for name in FORGET_TABLES]
    return "\n".join(lines)


def _marks(store: PortalStore, contact_id: str) -> list[str]:
    """The contact's e-mail and phone, as stored (to look for in other rows' free text)."""
    row = store.contact(contact_id)
    if row.empty:
        return []
    values = [row.iloc[-1].get(c) for c in ("email", "phone")]
    return [str(v) for v in values if isinstance(v, str) and len(v.strip()) >= 5]


def _mentions(store: PortalStore, marks: list[str]) -> str:
    """forget does not edit free text: say whether other contacts' activity texts still hold
    the contact's e-mail or phone, so that an operator can look."""
    if not marks:
        return ""
    text = store.table("activities")["text"].astype("string")
    found = pd.Series(False, index=text.index)
    for mark in marks:
        found |= text.str.contains(mark, regex=False, na=False)
    hits = int(found.sum())
    if not hits:
        return ""
    return (
        f"{hits} activity text(s) of other contacts still contain its e-mail or phone; forget "
        "does not edit free text (activities.parquet, column text)"
    )
