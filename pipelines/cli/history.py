"""`heatsync history CONTACT`: one contact's story, read from the store alone (no CRM call, no
Dagster).

Day by day: the temperature, score, segment, trend and reasons heatsync scored (the saved scores
of every day, backfilled ones included), then what it decided that day from the decision log:
the fields it wrote (old → new), the fields it kept and why, the tasks it created and the tasks
it did not create and why. Without --portal every configured portal's store is searched, and
each one that knows the contact is printed.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import Any, TextIO

import pandas as pd

from pipelines.cli.common import StoreNotFound, portal_stores
from pipelines.run.asof import local_today
from pipelines.store import PortalStore

NOT_FOUND = 2
EMPTY = "–"
INDENT = " " * 12


def history(
    contact_id: str, portal: str | None, days: int | None, out: TextIO | None = None
) -> int:
    """Print the story of `contact_id` in each store that knows it; 2 when none does."""
    out = out or sys.stdout
    try:
        stores = portal_stores(portal)
        stories = [story(store, contact_id, days) for store in stores]
        found = [text for text in stories if text]
        if not found:
            where = ", ".join(f"{s.portal} ({s.key})" for s in stores)
            raise StoreNotFound(f"no contact {contact_id} in the store of {where}")
    except StoreNotFound as exc:
        print(f"heatsync history: {exc}", file=sys.stderr)
        return NOT_FOUND
    print("\n\n".join(found), file=out)
    return 0


def story(store: PortalStore, contact_id: str, days: int | None = None) -> str:
    """The contact's story in one store as text; empty when the store does not know it."""
    tz = store.time_zone()
    scored = store.scored_days()
    since = None
    if days is not None:
        today = local_today(tz, pd.Timestamp.now(tz="UTC"))
        first = (date.fromisoformat(today) - timedelta(days=days - 1)).isoformat()
        scored = [d for d in scored if d >= first]
        since = pd.Timestamp(first).tz_localize(tz).tz_convert("UTC")
    contact = store.contact(contact_id)
    scores = store.contact_scores(contact_id, scored)
    decisions = store.decisions(contact_id, since=since)
    if contact.empty and scores.empty and decisions.empty:
        return ""
    decisions["day"] = decisions["at"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
    lines = [_header(store, contact_id, contact)]
    for day in sorted(set(scores["day"]) | set(decisions["day"])):
        lines += _day(day, scores[scores["day"] == day], decisions[decisions["day"] == day])
    if len(lines) == 1:
        lines.append("  nothing scored or decided yet")
    return "\n".join(lines)


def _text(value: object) -> str:
    return EMPTY if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _header(store: PortalStore, contact_id: str, contact: pd.DataFrame) -> str:
    parts = [f"contact {contact_id}"]
    if len(contact):
        row = contact.iloc[-1]
        name = row.get("name") if pd.notna(row.get("name")) else row.get("email")
        parts += [_text(name), f"owner {_text(row.get('owner_id'))}"]
    else:
        parts.append("no longer in the CRM")
    parts.append(f"account {store.key} (portal {store.portal})")
    return " · ".join(parts)


def _day(day: str, scores: pd.DataFrame, decisions: pd.DataFrame) -> list[str]:
    if len(scores):
        s = scores.iloc[-1]
        score = EMPTY if pd.isna(s.get("score")) else f"{float(s['score']):.0f}"
        lines = [
            f"{day}  {_text(s.get('temperature')):<5} {score:>3}  "
            f"segment {_text(s.get('segment'))}  trend {_text(s.get('trend'))}"
        ]
        if pd.notna(s.get("reasons")) and s.get("reasons"):
            lines.append(f"{INDENT}why: {s['reasons']}")
    else:
        lines = [f"{day}  (not scored)"]
    for run_id, run in decisions.groupby("run_id", sort=False, dropna=False):
        at = pd.Timestamp(run["at"].iloc[0]).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"{INDENT}run {_text(run_id)} at {at}:")
        lines += [f"{INDENT}  {_decision(d)}" for d in run.itertuples(index=False)]
    return lines


def _decision(d: Any) -> str:
    if d.kind == "field_written":
        return f"wrote {d.name}: {_value(d.old)} → {_value(d.new)}"
    if d.kind == "field_kept":
        wanted = "" if d.new is None else f" (heatsync's value {_value(d.new)})"
        return f"kept {d.name} at {_value(d.old)}{wanted}: {d.reason}"
    if d.kind == "task_created":
        return (
            f"task {d.name} {_period(d.task_key)} created: task {_text(d.new)} (key {d.task_key})"
        )
    return f"no task {d.name} {_period(d.task_key)}: {d.reason}"


def _value(value: object) -> str:
    """A logged field value as the CRM shows it: a whole number without its ".0"."""
    text = _text(value)
    return text[:-2] if text.endswith(".0") and text[:-2].lstrip("-").isdigit() else text


def _period(task_key: object) -> str:
    return str(task_key).rsplit(":", 1)[-1] if isinstance(task_key, str) else ""
