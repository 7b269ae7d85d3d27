"""Property history in the HubSpot emulator: who changed which value, when, from where.

Read as HubSpot serves it: `propertiesWithHistory` on `GET /crm/v3/objects/{type}/{id}`, on the
list endpoint and on `POST /crm/v3/objects/{type}/batch/read` (and the date-versioned
`/crm/objects/2026-03/...` paths). Each property maps to its versions, newest first, each
`{value, timestamp, sourceType, sourceId?, sourceLabel?, updatedByUserId?}` (HubSpot's
`ValueWithTimestamp`; keys without a value are left out).

Sources, as HubSpot reports them: a write through the API with the sandbox's token (private app
or OAuth) is `sourceType: INTEGRATION` with `sourceId` the app id token introspection reports
(`auth.PRIVATE_APP_ID`); a rep's edit in the UI is `CRM_UI` with `sourceId: "userId:<id>"` and
`updatedByUserId`. Values set before any recorded change (the generated portal) show one version
at the record's creation, `sourceType: IMPORT`. Asking for history caps a batch read at 50 inputs
and a list page at 50 records (HubSpot's limit when history is requested).

`sandbox.hubspot.api_history.HistoryMixin` gives `SandboxServer` the helpers that change values
as someone else: `edit_as_user` (a rep in the UI) and `edit_as_integration` (another app).
"""

from __future__ import annotations

from typing import Any

from sandbox.hubspot.store import HubSpotState, Record
from sandbox.hubspot.values import iso_ms

HISTORY_BATCH_MAX = 50  # batch read inputs / list page size when propertiesWithHistory is asked
MAX_VERSIONS = 50  # versions kept per property (emulator's choice)
APP_LABEL = "heatsync sandbox app"

History = dict[str, list[dict[str, Any]]]


def api_source() -> dict[str, Any]:
    """The source of a write made through the API with the sandbox's token."""
    from sandbox.hubspot.auth import PRIVATE_APP_ID

    return {"sourceType": "INTEGRATION", "sourceId": str(PRIVATE_APP_ID), "sourceLabel": APP_LABEL}


def user_source(user_id: int | str) -> dict[str, Any]:
    return {
        "sourceType": "CRM_UI",
        "sourceId": f"userId:{user_id}",
        "updatedByUserId": int(user_id),
    }


def integration_source(app_id: int | str, label: str | None = None) -> dict[str, Any]:
    return {"sourceType": "INTEGRATION", "sourceId": str(app_id), "sourceLabel": label}


def _seed(rec: Record, name: str) -> list[dict[str, Any]]:
    value = rec.props.get(name)
    if value is None or name == "hs_object_id":
        return []
    return [{"value": value, "timestamp": rec.created_at, "sourceType": "IMPORT"}]


def record(
    state: HubSpotState,
    obj_type: str,
    rec: Record,
    changes: dict[str, str | None],
    at_ms: int,
    source: dict[str, Any],
    *,
    created: bool = False,
) -> None:
    """Keep one version per changed property; call before the values are applied to `rec`
    (`created`: the record was just made with these values, there is nothing older)."""
    if not changes:
        return
    by_prop = state.history.setdefault(obj_type, {}).setdefault(rec.id, {})
    stamp = iso_ms(at_ms)
    for name, value in changes.items():
        versions = by_prop.get(name)
        if versions is None:
            versions = by_prop[name] = [] if created else _seed(rec, name)
        entry = {"value": "" if value is None else value, "timestamp": stamp}
        entry.update({k: v for k, v in source.items() if v is not None})
        versions.insert(0, entry)
        del versions[MAX_VERSIONS:]
    state.version += 1


def render(state: HubSpotState, obj_type: str, rec: Record, names: list[str]) -> History:
    """`propertiesWithHistory` of one record for the asked property names."""
    kept = state.history.get(obj_type, {}).get(rec.id, {})
    out: History = {}
    for name in names:
        versions = kept.get(name)
        out[name] = [dict(v) for v in versions] if versions is not None else _seed(rec, name)
    return out
