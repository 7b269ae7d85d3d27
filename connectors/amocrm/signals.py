"""Contacts with fresh hot evidence, for the fast lane: two requests.

`GET /api/v4/contacts/notes?filter[note_type][]=call_in,sms_in&filter[updated_at][from]=…` finds
the inbound calls and SMS logged on contacts since a moment (telephony integrations log calls as
notes), and `GET /api/v4/events?filter[type][]=incoming_chat_message&filter[created_at][from]=…`
the inbound chat messages (a chat linked to a lead names its contact in
`linked_talk_contact_id`). heatsync's own writes (its fields, its tasks) are neither. Web forms
create leads in amoCRM's incoming queue and are seen by the daily run, not here. Whether a
signal is hot is for the scoring to say.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors.amocrm.parsing import Bad, ts

if TYPE_CHECKING:
    from connectors.amocrm.client import AmoClient

INBOUND_NOTE_TYPES = ("call_in", "sms_in")
INBOUND_EVENT_TYPES = ("incoming_chat_message",)
MAX_PAGES = 8  # 2,000 inbound signals in one tick is an import, not a hot lead


def signals_since(client: AmoClient, since: datetime) -> pd.Series:
    """contact id -> its newest inbound call, SMS or chat message after `since` (UTC)."""
    start = int(since.timestamp())
    found: dict[str, pd.Timestamp] = {}

    def seen(contact: Any, when: Any) -> None:
        if contact in (None, "", 0):
            return
        try:
            moment = pd.Timestamp(ts(when, "created_at"))
        except Bad:
            return
        key = str(contact)
        if moment > pd.Timestamp(since) and (key not in found or moment > found[key]):
            found[key] = moment

    notes = client.pages(
        "/contacts/notes",
        "notes",
        [
            *[("filter[note_type][]", t) for t in INBOUND_NOTE_TYPES],
            ("filter[updated_at][from]", start),
        ],
    )
    for i, note in enumerate(notes):
        if i >= MAX_PAGES * client.settings.page_size:
            break
        seen(note.get("entity_id"), note.get("created_at") or note.get("updated_at"))
    events = client.pages(
        "/events",
        "events",
        [
            *[("filter[type][]", t) for t in INBOUND_EVENT_TYPES],
            ("filter[created_at][from]", start),
        ],
        limit=client.settings.events_page_size,
    )
    for i, event in enumerate(events):
        if i >= MAX_PAGES * client.settings.events_page_size:
            break
        entity = event.get("entity_type")
        contact = (
            event.get("entity_id") if entity == "contact" else event.get("linked_talk_contact_id")
        )
        seen(contact, event.get("created_at"))
    return pd.Series(found, dtype="datetime64[ns, UTC]", name="signal_at")
