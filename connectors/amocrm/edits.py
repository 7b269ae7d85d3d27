"""`AmoCrmConnector.field_edits`: who changed heatsync's contact fields, and when.

Reads `GET /api/v4/events` with `filter[entity]=contact`, `filter[entity_id][]` (≤ 10 contacts a
query, amoCRM's cap), `filter[type][]=custom_field_value_changed` and
`filter[created_at][from]=<since>`, ≤ 100 events a page. Each event names the field in
`value_after` / `value_before` (`custom_field_value.field_id`, or the type
`custom_field_<id>_value_changed`) and the user in `created_by`; heatsync's fields are found by
code in `GET /api/v4/contacts/custom_fields` and the account's `current_user_id` in
`GET /api/v4/account` (both read once per connector).

amoCRM records an API write as made by the user the token acts as (the one who made the
integration or its long-lived token): those events are heatsync's own. When that user also edits
by hand (`AmoCrmSettings.token_user_edits_by_hand`), its events are returned as `unknown` and the
caller tells them apart by comparing the value with what heatsync wrote. `created_by: 0` (no user)
and `AmoCrmSettings.integration_user_ids` are other integrations; any other user is a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from connectors.amocrm.batches import chunks
from connectors.amocrm.contacts import option_code
from connectors.amocrm.field_schema import by_code
from connectors.amocrm.models import CustomField
from connectors.amocrm.parsing import Bad, calendar_date
from connectors.amocrm.settings import FIELD_CODES, UPDATED_AT_CODE
from connectors.base import edits_frame, empty_edits

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector

CODES = {**FIELD_CODES, "updated_at": UPDATED_AT_CODE}
EVENT_TYPE = "custom_field_value_changed"
ENTITY_IDS_MAX = 10  # filter[entity_id][] takes at most 10 ids
SELECT_FIELDS = frozenset({"temperature", "segment", "trend"})
DATE_FIELDS = frozenset({"next_touch_due", "updated_at"})
_TYPED = re.compile(r"^custom_field_(\d+)_value_changed$")


def _field_values(event: dict[str, Any], key: str) -> list[dict[str, Any]]:
    out = []
    for item in event.get(key) or []:
        value = item.get("custom_field_value") if isinstance(item, dict) else None
        if isinstance(value, dict):
            out.append(value)
    return out


def event_field_id(event: dict[str, Any]) -> int | None:
    """The custom field an event is about (from its values, else from its type)."""
    for value in (*_field_values(event, "value_after"), *_field_values(event, "value_before")):
        if value.get("field_id") is not None:
            return int(value["field_id"])
    typed = _TYPED.match(str(event.get("type") or ""))
    return int(typed.group(1)) if typed else None


def shown_value(
    field: str, definition: CustomField, values: list[dict[str, Any]], tz: ZoneInfo
) -> str:
    """An event's value as text, heatsync's select options as canonical codes ("" = cleared)."""
    if not values:
        return ""
    first = values[0]
    text = first.get("text")
    if field in SELECT_FIELDS:
        enum = (
            definition.enum_by_id().get(int(first["enum_id"]))
            if first.get("enum_id") is not None
            else None
        )
        return option_code(field, enum.code if enum else None, text) or ""
    if field in DATE_FIELDS and text not in (None, ""):
        try:
            return calendar_date(text, tz, field).isoformat()
        except Bad:
            return str(text)
    return "" if text is None else str(text)


def _when(event: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(event["created_at"]), tz=UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _user(event: dict[str, Any]) -> int | None:
    try:
        return int(event.get("created_by"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def latest_edits(
    events: Iterable[dict[str, Any]], ours: dict[int, str], own: set[int], since: datetime
) -> dict[tuple[str, str], tuple[datetime, dict[str, Any]]]:
    """(contact, field) -> the newest event at or after `since` not by `own` users and newer
    than their newest one."""
    last_own: dict[tuple[str, str], datetime] = {}
    best: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
    ordered = sorted(events, key=lambda e: (int(e.get("created_at") or 0), str(e.get("id"))))
    for event in ordered:
        field_id, when = event_field_id(event), _when(event)
        if field_id not in ours or when is None or event.get("entity_id") is None:
            continue
        key = (str(event["entity_id"]), ours[field_id])
        if _user(event) in own:
            last_own[key] = when
        elif when >= since:
            best[key] = (when, event)
    return {k: v for k, v in best.items() if k not in last_own or v[0] > last_own[k]}


def field_edits(
    conn: AmoCrmConnector, contact_ids: Sequence[str], fields: Sequence[str], since: datetime
) -> pd.DataFrame:
    """See `connectors.base.CrmConnector.field_edits`."""
    unknown = [f for f in fields if f not in CODES]
    if unknown:
        raise ValueError(f"not heatsync fields: {unknown}")
    ids = [str(i) for i in dict.fromkeys(contact_ids)]
    wanted = list(dict.fromkeys(fields))
    if not ids or not wanted:
        return empty_edits()
    since = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    defined = by_code(conn.fields())
    definitions = {f: defined[CODES[f]] for f in wanted if CODES[f] in defined}
    if not definitions:
        return empty_edits()
    ours = {d.id: f for f, d in definitions.items()}
    s = conn.settings
    token_user = conn.account().current_user_id
    own = set(s.own_user_ids)
    if token_user is not None and not s.token_user_edits_by_hand:
        own.add(int(token_user))
    events: list[dict[str, Any]] = []
    for part in chunks(ids, ENTITY_IDS_MAX):
        params: list[tuple[str, Any]] = [
            ("filter[entity]", "contact"),
            *[("filter[entity_id][]", i) for i in part],
            ("filter[type][]", EVENT_TYPE),
            ("filter[created_at][from]", int(since.timestamp())),
        ]
        events.extend(conn.client.pages("/events", "events", params, limit=s.events_page_size))
    tz = ZoneInfo(conn.portal_info().time_zone)
    rows = []
    for (contact_id, field), (when, event) in latest_edits(events, ours, own, since).items():
        user = _user(event)
        if not user:
            source, by = "integration", ""
        elif user in s.integration_user_ids:
            source, by = "integration", str(user)
        elif user == token_user:
            source, by = "unknown", str(user)  # token_user_edits_by_hand
        else:
            source, by = "person", str(user)
        value = shown_value(field, definitions[field], _field_values(event, "value_after"), tz)
        rows.append(
            {
                "contact_id": contact_id,
                "field": field,
                "value": value,
                "changed_at": when,
                "source": source,
                "by": by,
            }
        )
    return edits_frame(rows)
