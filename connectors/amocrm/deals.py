"""amoCRM leads (`GET /api/v4/leads?with=contacts`, `GET /api/v4/leads/pipelines`) -> deals.

Status 142 is won, 143 lost, anything else open; stage = the status's name in its pipeline;
amount = price; one canonical deal row (scoring.contract) per linked contact. The lead -> contacts
links are kept on the extraction for the notes on leads (`connectors.amocrm.activities`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from connectors.amocrm.parsing import NOT_AN_OBJECT, Bad, clip, number, opt_ts, ts
from connectors.amocrm.settings import LOST_STATUS_ID, WON_STATUS_ID

if TYPE_CHECKING:
    from connectors.amocrm.extract import Extraction

DEAL_EXTRA = {"name": "str"}  # the lead's name, beyond the contract


def read_deals(ex: Extraction) -> list[dict[str, Any]]:
    return list(deal_rows(ex))


def deal_rows(ex: Extraction) -> Iterator[dict[str, Any]]:
    """The deal rows of the leads updated in the window, lead by lead as their pages come (the
    pipelines' stage names are asked for once there is a lead)."""
    stages: dict[tuple[int | None, int], str] | None = None
    for lead in ex.updated("/leads", "leads", "leads", [("with", "contacts")]):
        if stages is None:
            stages = _stages(ex)
        if not isinstance(lead, dict):
            ex.q("leads", lead, NOT_AN_OBJECT)
            continue
        try:
            if lead.get("id") in (None, ""):
                raise Bad("id: missing")
            if lead.get("is_deleted"):
                continue
            status_id = int(lead.get("status_id") or 0)
            pipeline_id = lead.get("pipeline_id")
            status = (
                "won"
                if status_id == WON_STATUS_ID
                else "lost"
                if status_id == LOST_STATUS_ID
                else "open"
            )
            stage = stages.get((pipeline_id, status_id)) or stages.get((None, status_id))
            base = {
                "deal_id": str(lead["id"]),
                "portal": ex.portal,
                "created_at": ts(lead.get("created_at"), "created_at"),
                "closed_at": (
                    opt_ts(lead.get("closed_at"), "closed_at") if status != "open" else None
                ),
                "status": status,
                "stage": stage or str(status_id),
                "stage_probability": {"won": 1.0, "lost": 0.0}.get(status),
                "amount": number(lead.get("price"), "price"),
                "currency": ex.currency,
                "name": clip(lead.get("name"), 300),
            }
        except Bad as exc:
            ex.q("leads", lead, str(exc))
            continue
        except (TypeError, ValueError, OverflowError) as exc:
            ex.q("leads", lead, f"unexpected shape: {exc}")
            continue
        linked = linked_contacts(lead)
        ex.lead_contacts[str(lead["id"])] = linked
        if not linked:
            ex.warnings["deal_without_contact"] += 1
        for contact_id in linked:
            yield {**base, "contact_id": contact_id}


def _stages(ex: Extraction) -> dict[tuple[int | None, int], str]:
    stages: dict[tuple[int | None, int], str] = {}
    for pipeline in ex.client.pipelines():
        for step in pipeline.statuses:
            stages[(pipeline.id, step.id)] = step.name
            stages.setdefault((None, step.id), step.name)
    return stages


def linked_contacts(lead: dict[str, Any]) -> list[str]:
    """The ids of the lead's contacts (`_embedded.contacts`); none when that is not a list."""
    embedded = lead.get("_embedded")
    links = embedded.get("contacts") if isinstance(embedded, dict) else None
    if not isinstance(links, list):
        return []
    ids = (x.get("id") for x in links if isinstance(x, dict))
    return list(dict.fromkeys(str(i) for i in ids if i not in (None, "")))
