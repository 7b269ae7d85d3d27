"""Contacts with fresh hot evidence, for the fast lane: one contacts search.

HubSpot keeps the date of a contact's latest form submission (`recent_conversion_date`), latest
logged activity (`notes_last_updated`: a call, meeting, note, e-mail or message logged),
latest meeting booked (`engagements_last_meeting_booked`) and latest sales e-mail reply
(`hs_sales_email_last_replied`) on the contact itself, so one
`POST /crm/v3/objects/contacts/search` with a filter group per property (OR) finds every contact
with any of them since a moment, without reading the activities. heatsync's own writes (its
fields, its tasks) move none of these dates. Whether the signal is hot is for the scoring to say.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors.hubspot.client import to_ms
from connectors.hubspot.models import SearchPage
from connectors.hubspot.settings import CONTACTS, SEARCH_PAGE_SIZE
from connectors.hubspot.values import parse_ts

if TYPE_CHECKING:
    from connectors.hubspot.client import HubSpotClient

SIGNAL_PROPERTIES = (
    "recent_conversion_date",
    "notes_last_updated",
    "engagements_last_meeting_booked",
    "hs_sales_email_last_replied",
)
MAX_PAGES = 10  # 2,000 contacts with signals in one tick is a bulk import, not a hot lead


def signals_since(client: HubSpotClient, since: datetime) -> pd.Series:
    """contact id -> the newest of its signal dates after `since` (UTC), newest contacts first
    when HubSpot has more than MAX_PAGES pages of them."""
    since_ms = str(to_ms(since))
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": prop, "operator": "GT", "value": since_ms}]}
            for prop in SIGNAL_PROPERTIES
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": list(SIGNAL_PROPERTIES),
        "limit": SEARCH_PAGE_SIZE,
    }
    path = f"{client.settings.objects_path(CONTACTS)}/search"
    found: dict[str, pd.Timestamp] = {}
    for _ in range(MAX_PAGES):
        page = SearchPage.model_validate(
            client.http.request("POST", path, json_body=body, search=True)
        )
        for record in page.results:
            props = record.get("properties") or {}
            stamps = [_stamp(props.get(p)) for p in SIGNAL_PROPERTIES]
            newest = max((s for s in stamps if s is not None), default=None)
            if newest is not None and newest > pd.Timestamp(since):
                found[str(record.get("id"))] = newest
        if page.paging is None or page.paging.next is None:
            break
        body["after"] = page.paging.next.after
    return pd.Series(found, dtype="datetime64[ns, UTC]", name="signal_at")


def _stamp(value: Any) -> pd.Timestamp | None:
    try:
        parsed = parse_ts(value)
    except ValueError:
        return None
    return None if parsed is None else pd.Timestamp(parsed)
