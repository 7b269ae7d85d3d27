"""Edits as someone other than the API caller, on `SandboxServer`: a rep in HubSpot's UI
(`edit_as_user`) or another app (`edit_as_integration`). Each keeps a property-history version
with its source (sandbox.hubspot.history) and bumps the modified dates, so incremental search sees
it like any change.
"""

from __future__ import annotations

from typing import Any

from sandbox.hubspot import schema
from sandbox.hubspot.common import ApiBase
from sandbox.hubspot.history import integration_source, record, user_source
from sandbox.hubspot.state import now_ms
from sandbox.hubspot.transport import ApiError


class HistoryMixin(ApiBase):
    """Edits made as someone other than the API caller (for tests and demos)."""

    def edit_as_user(
        self,
        contact_id: int | str,
        prop: str,
        value: str | None,
        user_id: int | str,
        *,
        at_ms: int | None = None,
    ) -> None:
        """A rep sets a contact property in HubSpot's UI (`CRM_UI`, `userId:<id>`)."""
        self._edit("contacts", contact_id, {prop: value}, user_source(user_id), at_ms)

    def edit_as_integration(
        self,
        contact_id: int | str,
        prop: str,
        value: str | None,
        app_id: int | str,
        *,
        label: str | None = None,
        at_ms: int | None = None,
    ) -> None:
        """Another app sets a contact property through the API (`INTEGRATION`, its app id)."""
        self._edit("contacts", contact_id, {prop: value}, integration_source(app_id, label), at_ms)

    def _edit(
        self,
        obj_type: str,
        obj_id: int | str,
        values: dict[str, str | None],
        source: dict[str, Any],
        at_ms: int | None,
    ) -> None:
        when = now_ms() if at_ms is None else at_ms
        with self.state.lock:
            rec = self.state.get(obj_type, obj_id)
            if rec is None or rec.archived:
                raise KeyError(f"no {schema.SINGULAR[obj_type]} {obj_id}")
            checked, errors = self.state.validate(obj_type, values)
            if errors:
                raise ApiError(400, "VALIDATION_ERROR", str(errors))
            changes = {n: v for n, v in checked.items() if rec.props.get(n) != v}
            record(self.state, obj_type, rec, changes, when, source)
            if self.state.set_props(obj_type, rec, checked):
                self.state.touch(obj_type, rec, when, self._lag_ms())
