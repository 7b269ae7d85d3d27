"""The sandbox portal's state in HubSpot's shapes, its validation rules and its JSON persistence.

Objects (contacts, deals, calls, emails, meetings, notes, tasks, companies) carry string-valued
`properties` as HubSpot's CRM v3 objects API returns them, typed associations are kept in both
directions (v4 style), and property definitions follow the properties API. `render_truth` renders
a neutral `sandbox.portal.Portal` into this state; see sandbox/README.md for the mapping.

This module names it all in one place; the parts live beside it, one job a module:
`sandbox.hubspot.values` (time renderings, property validation), `sandbox.hubspot.store`
(records, the state, persistence) and `sandbox.hubspot.render` (the neutral portal rendered).
"""

from __future__ import annotations

from sandbox.hubspot.render import (
    NOTE_TAGGED_TYPES,
    ROLLUPS,
    generate_state,
    render_truth,
)
from sandbox.hubspot.store import FORMAT, HubSpotState, Record
from sandbox.hubspot.values import iso_ms, normalize_value, now_ms, parse_for_search, parse_ms
from sandbox.persist import StatePersister

__all__ = [
    "FORMAT",
    "NOTE_TAGGED_TYPES",
    "ROLLUPS",
    "HubSpotState",
    "Record",
    "StatePersister",
    "generate_state",
    "iso_ms",
    "normalize_value",
    "now_ms",
    "parse_for_search",
    "parse_ms",
    "render_truth",
]
