"""`HubSpotConnector.field_edits`: who changed heatsync's contact properties, and when.

Reads `POST /crm/objects/2026-03/contacts/batch/read` (or `/crm/v3/objects/contacts/batch/read`)
with `propertiesWithHistory` for heatsync's properties, ≤ 50 contacts per request (HubSpot's cap
when history is asked). Each version carries `sourceType` and `sourceId`: `CRM_UI` (and the
mobile apps) with `updatedByUserId` / `userId:<id>` is a person, `INTEGRATION` / `API` with the
app id is an app.

heatsync's own versions are the app's: the app id comes from token introspection
(`POST /oauth/v2/private-apps/get/access-token-info` → `appId`, OAuth
`GET /oauth/v1/access-tokens/{token}` → `app_id`, read once per connector), plus
`HubSpotSettings.own_source_ids`. When introspection gives none, the app sources found on
`heatsync_updated_at` stand in: heatsync writes it with every field write, and nobody else does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors.base import edits_frame, empty_edits
from connectors.http import ConnectorError, log, redact
from connectors.hubspot.settings import CONTACTS, FIELD_PROPERTIES, UPDATED_AT_PROPERTY
from connectors.hubspot.values import parse_ts

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector

# canonical field -> HubSpot property, heatsync_updated_at included
PROPERTIES = {**FIELD_PROPERTIES, "updated_at": UPDATED_AT_PROPERTY}
APP_SOURCE_TYPES = frozenset({"INTEGRATION", "API"})
PERSON_SOURCE_TYPES = frozenset({"CRM_UI", "MOBILE_IOS", "MOBILE_ANDROID"})
DATE_FIELDS = frozenset({"next_touch_due", "updated_at"})


def own_source_ids(connector: HubSpotConnector) -> set[str]:
    """heatsync's app id(s) as history reports them (introspection read once, then kept)."""
    cached = connector._own_source_ids
    if cached is None:
        cached = set(connector.settings.own_source_ids)
        try:
            info = connector.client.token_info()
        except ConnectorError as exc:
            why = redact(exc)
            log.warning(
                "token introspection failed, own writes told by %s: %s", UPDATED_AT_PROPERTY, why
            )
        else:
            app = info.get("appId", info.get("app_id"))
            if app is not None:
                cached.add(str(app))
        connector._own_source_ids = cached
    return cached


def classify(version: dict[str, Any]) -> tuple[str, str]:
    """(source, by) of one history version: person / integration / unknown and who."""
    kind = str(version.get("sourceType") or "").upper()
    source_id = str(version.get("sourceId") or "")
    user = version.get("updatedByUserId")
    if kind in APP_SOURCE_TYPES and not source_id.startswith("userId:"):
        return "integration", source_id
    if user is not None:
        return "person", str(user)
    if source_id.startswith("userId:"):
        return "person", source_id.removeprefix("userId:")
    if kind in PERSON_SOURCE_TYPES:
        return "person", ""
    return "unknown", source_id


def _shown(field: str, value: Any) -> str:
    text = "" if value is None else str(value)
    if field in DATE_FIELDS and text.isdigit():  # a date property as epoch milliseconds
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date().isoformat()
    return text


def _is_own(version: dict[str, Any], own: set[str]) -> bool:
    kind = str(version.get("sourceType") or "").upper()
    return kind in APP_SOURCE_TYPES and str(version.get("sourceId") or "") in own


def latest_edit(
    versions: Iterable[dict[str, Any]], own: set[str], since: datetime
) -> tuple[datetime, dict[str, Any]] | None:
    """The newest version at or after `since` that is not heatsync's own and is newer than
    heatsync's own newest one."""
    last_own: datetime | None = None
    best: tuple[datetime, dict[str, Any]] | None = None
    for version in versions:
        try:
            when = parse_ts(version.get("timestamp"))
        except ValueError:
            when = None
        if when is None:
            continue
        if _is_own(version, own):
            last_own = when if last_own is None or when > last_own else last_own
        elif when >= since and (best is None or when > best[0]):
            best = (when, version)
    if best is None or (last_own is not None and best[0] <= last_own):
        return None
    return best


def field_edits(
    connector: HubSpotConnector,
    contact_ids: Sequence[str],
    fields: Sequence[str],
    since: datetime,
) -> pd.DataFrame:
    """See `connectors.base.CrmConnector.field_edits`."""
    unknown = [f for f in fields if f not in PROPERTIES]
    if unknown:
        raise ValueError(f"not heatsync fields: {unknown}")
    ids = [str(i) for i in dict.fromkeys(contact_ids)]
    wanted = list(dict.fromkeys(fields))
    if not ids or not wanted:
        return empty_edits()
    since = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    own = own_source_ids(connector)
    history_props = list(dict.fromkeys([*(PROPERTIES[f] for f in wanted), UPDATED_AT_PROPERTY]))
    outcome = connector.client.batch_read_history(CONTACTS, ids, history_props)
    rows: list[dict[str, Any]] = []
    for record in outcome.results:
        history = record.get("propertiesWithHistory") or {}
        mine = own or {
            str(v.get("sourceId"))
            for v in history.get(UPDATED_AT_PROPERTY) or []
            if str(v.get("sourceType") or "").upper() in APP_SOURCE_TYPES and v.get("sourceId")
        }
        for field in wanted:
            found = latest_edit(history.get(PROPERTIES[field]) or [], mine, since)
            if found is None:
                continue
            when, version = found
            source, by = classify(version)
            rows.append(
                {
                    "contact_id": str(record.get("id")),
                    "field": field,
                    "value": _shown(field, version.get("value")),
                    "changed_at": when,
                    "source": source,
                    "by": by,
                }
            )
    return edits_frame(rows)
