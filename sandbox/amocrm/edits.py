"""Contact field edits as someone other than the API caller, for tests and demos.

`AmoSandboxServer.edit_as_user` (a rep in amoCRM's interface) and `edit_as_integration` (another
integration through the API) change one contact field the way `PATCH /api/v4/contacts` does and
leave the same trace: a `custom_field_value_changed` event (`GET /api/v4/events`) with
`created_by`, `created_at`, `value_before` and `value_after`
(`[{"custom_field_value": {field_id, field_type, enum_id, text}}]`), and the contact's
`updated_at` / `updated_by`. API writes with the sandbox's tokens are the account's
`current_user_id` (the admin who made the integration).

UNCONFIRMED, the emulator's choices: another integration acts as the user who installed it, and
a change nobody is named for (robots, some integrations) carries `created_by: 0`, the default of
`edit_as_integration`; amoCRM's interface refuses to edit an `is_api_only` field, and so does
`edit_as_user`.
"""

from __future__ import annotations

from typing import Any

from sandbox.amocrm.api_write import ENUM_TYPES, Invalid, _set_values, normalize_values
from sandbox.amocrm.state import AmoState, now_s


def _value_items(definition: dict[str, Any], value: Any) -> list[dict[str, Any]] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return [value]
    if definition["type"] in ENUM_TYPES:
        wanted = str(value).lower()
        for enum in definition.get("enums") or []:
            if enum.get("code") and str(enum["code"]).lower() == wanted:
                return [{"enum_code": enum["code"]}]
    return [{"value": value}]


def edit_contact_field(
    state: AmoState,
    contact_id: int | str,
    field: int | str,
    value: Any,
    by: int,
    *,
    at_s: int | None = None,
    in_interface: bool = False,
) -> None:
    """Set one contact field (by id or code) as user `by`; None or "" clears it.

    A select takes its enum code, its text or an API value dict (`{"enum_id": …}`)."""
    with state.lock:
        contact = state.contacts.get(int(contact_id))
        if contact is None or contact.get("is_deleted"):
            raise KeyError(f"no contact {contact_id}")
        is_id = isinstance(field, int) or str(field).isdigit()
        definition = (
            state.field("contacts", field_id=int(field))
            if is_id
            else state.field("contacts", code=str(field))
        )
        if definition is None:
            raise KeyError(f"no contact field {field}")
        if in_interface and definition.get("is_api_only"):
            raise PermissionError(f"field {field} is API-only: the interface cannot edit it")
        try:
            values = normalize_values(state, definition, _value_items(definition, value), "0")
        except Invalid as bad:
            raise ValueError(f"{bad.code} {bad.path}: {bad.detail}") from None
        when = now_s() if at_s is None else int(at_s)
        _set_values(state, contact, {definition["id"]: (definition, values)}, by, when)
        contact["updated_at"], contact["updated_by"] = when, by
        state.version += 1


class EditsMixin:
    """`edit_as_user` / `edit_as_integration` on `AmoSandboxServer`."""

    state: AmoState

    def edit_as_user(
        self,
        contact_id: int | str,
        field: int | str,
        value: Any,
        user_id: int,
        *,
        at_s: int | None = None,
    ) -> None:
        """A rep changes a contact field in amoCRM's interface (refused for API-only fields)."""
        edit_contact_field(
            self.state, contact_id, field, value, int(user_id), at_s=at_s, in_interface=True
        )

    def edit_as_integration(
        self,
        contact_id: int | str,
        field: int | str,
        value: Any,
        user_id: int = 0,
        *,
        at_s: int | None = None,
    ) -> None:
        """Another integration changes a contact field through the API, acting as `user_id`
        (0: amoCRM names no user)."""
        edit_contact_field(self.state, contact_id, field, value, int(user_id), at_s=at_s)
