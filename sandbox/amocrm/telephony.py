"""What a telephony integration leaves in amoCRM when a customer calls: a `call_in` note on the
contact (duration, status, result, as amoCRM's calls API records them) and an `incoming_call`
event. Used by the fast lane's tests and benchmark to make a call arrive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.amocrm.state import now_s

if TYPE_CHECKING:
    from sandbox.amocrm.server import AmoSandboxServer

TALKED = 4  # amoCRM call_status: the call was answered and the parties talked


def log_inbound_call(
    server: AmoSandboxServer,
    contact_id: int,
    duration_s: int,
    result: str = "",
    *,
    user_id: int | None = None,
    at: int | None = None,
) -> dict[str, Any]:
    """Add an answered inbound call of `duration_s` seconds to the contact; returns the note."""
    with server.lock:
        state = server.state
        contact = state.contacts[contact_id]
        owner = int(user_id or contact.get("responsible_user_id") or state.api_user_id)
        when = at or now_s()
        note_id = state.new_id("note")
        note = {
            "id": note_id,
            "entity_id": contact_id,
            "created_by": owner,
            "updated_by": owner,
            "created_at": when,
            "updated_at": when,
            "responsible_user_id": owner,
            "group_id": 0,
            "note_type": "call_in",
            "params": {
                "uniq": f"sandbox-call-{note_id}",
                "duration": duration_s,
                "source": "sandbox telephony",
                "phone": "+37120000000",
                "call_status": TALKED,
                "call_result": result,
            },
            "account_id": state.account_id,
        }
        state.notes["contacts"][note_id] = note
        state.add_event(
            "incoming_call", "contact", contact_id, when, owner, [{"note": {"id": note_id}}]
        )
        return note
