"""Write handlers of the amoCRM sandbox: custom field values and PATCH contacts (tasks are in
`api_tasks`, custom field creation in `api_fields`).

Every batch is validated whole first: one invalid element rejects the batch with 400 and a
`validation-errors` entry per failing element (`request_id` = the element's own `request_id`, else
its index), and nothing is applied. Writes have no idempotency: the same POST twice creates twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.amocrm.common import (
    ApiError,
    Context,
    Request,
    Response,
    self_link,
    validation_error,
)
from sandbox.amocrm.state import AmoState, local_date, local_midnight, now_s

ENUM_TYPES = ("select", "multiselect", "radiobutton", "category")
# field type -> the numeric type events report (the v2 numbering)
TYPE_NUMBERS = {
    "text": 1, "numeric": 2, "checkbox": 3, "select": 4, "multiselect": 5, "date": 6, "url": 7,
    "multitext": 8, "textarea": 9, "radiobutton": 10, "streetaddress": 11, "smart_address": 13,
    "birthday": 14, "legal_entity": 15, "date_time": 19, "price": 20, "monetary": 21,
}  # fmt: skip
Errors = list[tuple[str, str, str, str]]


class Invalid(Exception):
    def __init__(self, code: str, path: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.path, self.detail = code, path, detail


def batch(req: Request, limit: int, *, single_id: str | None = None) -> list[Any]:
    body = req.json()
    if single_id is not None:
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be an object")
        try:
            return [{**body, "id": int(single_id)}]
        except ValueError as exc:
            raise ApiError(400, "id must be an integer") from exc
    if not isinstance(body, list) or not body:
        raise ApiError(400, "The body must be a non-empty array")
    if len(body) > limit:
        raise ApiError(400, f"At most {limit} elements per request")
    return body


def request_id(item: Any, index: int) -> str:
    if isinstance(item, dict) and item.get("request_id") is not None:
        return str(item["request_id"])
    return str(index)


# ---------------------------------------------------------------------------- field values


def _timestamp(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.strip().lstrip("-").isdigit():
            return int(value)
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    raise ValueError(value)


def _enum_item(definition: dict[str, Any], value: dict[str, Any]) -> dict[str, Any] | None:
    for item in definition.get("enums") or []:
        if "enum_id" in value and value["enum_id"] == item["id"]:
            return item
        if (
            "enum_id" not in value
            and "enum_code" in value
            and value["enum_code"] == item.get("code")
        ):
            return item
        if (
            "enum_id" not in value
            and "enum_code" not in value
            and value.get("value") == item["value"]
        ):
            return item
    return None


def normalize_values(
    state: AmoState, definition: dict[str, Any], values: Any, path: str
) -> list[dict[str, Any]]:
    """Validate a field's `values` as sent; the stored (response) form. Raises Invalid."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise Invalid("InvalidType", f"{path}.values", "This value should be of type array.")
    type_ = definition["type"]
    out: list[dict[str, Any]] = []
    for k, value in enumerate(values):
        where = f"{path}.values.{k}"
        if not isinstance(value, dict):
            raise Invalid("InvalidType", where, "This value should be of type object.")
        raw = value.get("value")
        if type_ in ENUM_TYPES:
            item = _enum_item(definition, value)
            if item is None:
                raise Invalid(
                    "NotSupportedChoice",
                    f"{where}.value",
                    "The value you selected is not a valid choice.",
                )
            stored = {"value": item["value"], "enum_id": item["id"]}
            if item.get("code"):
                stored["enum_code"] = item["code"]
            out.append(stored)
        elif type_ == "multitext":
            if not isinstance(raw, str) or not raw.strip():
                raise Invalid("NotBlank", f"{where}.value", "This value should not be blank.")
            probe = {key: value[key] for key in ("enum_id", "enum_code") if key in value}
            item = _enum_item(definition, probe) if probe else (definition["enums"] or [None])[0]
            if item is None:
                raise Invalid(
                    "NotSupportedChoice",
                    f"{where}.enum_code",
                    "The value you selected is not a valid choice.",
                )
            out.append(
                {"value": raw, "enum_id": item["id"], "enum": item.get("code") or item["value"]}
            )
        elif type_ == "checkbox":
            if not isinstance(raw, bool):
                raise Invalid("InvalidType", f"{where}.value", "This value should be of type bool.")
            out.append({"value": raw})
        elif type_ in ("date", "birthday", "date_time"):
            try:
                ts = _timestamp(raw)
            except (ValueError, TypeError, OverflowError):
                raise Invalid(
                    "InvalidType", f"{where}.value", "This value is not a valid date."
                ) from None
            if type_ != "date_time":
                ts = local_midnight(local_date(ts, state.timezone), state.timezone)
            out.append({"value": ts})
        elif type_ in ("numeric", "price", "monetary"):
            try:
                float(str(raw))
            except ValueError:
                raise Invalid(
                    "InvalidType", f"{where}.value", "This value should be numeric."
                ) from None
            out.append({"value": str(raw)})
        else:
            if isinstance(raw, bool) or not isinstance(raw, str | int | float):
                raise Invalid(
                    "InvalidType", f"{where}.value", "This value should be of type string."
                )
            out.append({"value": str(raw)})
    if (
        type_ in ("select", "radiobutton", "checkbox", "date", "birthday", "date_time")
        and len(out) > 1
    ):
        raise Invalid("TooManyValues", f"{path}.values", "This field takes one value.")
    return out


def _field_values(state: AmoState, entity: str, cfv: Any) -> dict[int, tuple[dict, list]]:
    """Resolve and validate `custom_fields_values` -> field id -> (definition, stored values)."""
    if not isinstance(cfv, list):
        raise Invalid("InvalidType", "custom_fields_values", "This value should be of type array.")
    out: dict[int, tuple[dict, list]] = {}
    for i, entry in enumerate(cfv):
        path = f"custom_fields_values.{i}"
        if not isinstance(entry, dict):
            raise Invalid("InvalidType", path, "This value should be of type object.")
        definition = state.field(
            entity, field_id=entry.get("field_id"), code=entry.get("field_code")
        )
        if definition is None:
            key = "field_id" if "field_id" in entry else "field_code"
            raise Invalid(
                "NotSupportedChoice",
                f"{path}.{key}",
                "The value you selected is not a valid choice.",
            )
        out[definition["id"]] = (
            definition,
            normalize_values(state, definition, entry.get("values"), path),
        )
    return out


def _shape(
    field_id: int, definition: dict[str, Any], values: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Values as a custom_field_value_changed event reports them."""
    return [
        {
            "custom_field_value": {
                "field_id": field_id,
                "field_type": TYPE_NUMBERS.get(definition["type"], 0),
                "enum_id": v.get("enum_id"),
                "text": str(v.get("value")),
            }
        }
        for v in values
    ]


def _set_values(
    state: AmoState,
    target: dict[str, Any],
    changes: dict[int, tuple[dict, list]],
    by: int,
    now: int,
) -> None:
    """Replace each sent field's values (a multitext field is replaced whole); emit events."""
    current = {v["field_id"]: v for v in target.get("custom_fields_values") or []}
    for field_id, (definition, values) in changes.items():
        before = current.get(field_id, {}).get("values", [])
        if before == values:
            continue
        if values:
            current[field_id] = {
                "field_id": field_id,
                "field_name": definition["name"],
                "field_code": definition.get("code"),
                "field_type": definition["type"],
                "values": values,
            }
        else:
            current.pop(field_id, None)

        event = state.add_event(
            "custom_field_value_changed",
            "contact",
            target["id"],
            now,
            by,
            _shape(field_id, definition, values),
            _shape(field_id, definition, before),
        )
        event["_field_id"] = field_id
    target["custom_fields_values"] = list(current.values()) or None


# ---------------------------------------------------------------------------- contacts


_CONTACT_KEYS = {
    "id", "name", "first_name", "last_name", "responsible_user_id", "custom_fields_values",
    "request_id", "updated_at", "updated_by", "created_by", "tags_to_add", "tags_to_delete",
    "_embedded",
}  # fmt: skip


def patch_contacts(ctx: Context, req: Request, contact_id: str | None = None) -> Response:
    state = ctx.state
    items = batch(req, ctx.options.batch_max, single_id=contact_id)
    errors: Errors = []
    plans: list[tuple[dict[str, Any], dict[str, Any], dict[int, tuple[dict, list]]]] = []
    users = state.user_ids()
    for i, item in enumerate(items):
        rid = request_id(item, i)
        try:
            if not isinstance(item, dict):
                raise Invalid("InvalidType", "", "This value should be of type object.")
            unknown = sorted(set(item) - _CONTACT_KEYS)
            if unknown:
                raise Invalid("FieldNotExpected", unknown[0], "This field was not expected.")
            cid = item.get("id")
            target = state.contacts.get(cid) if isinstance(cid, int) else None
            if target is None or target["is_deleted"]:
                raise Invalid("NotFound", "id", "Entity not found.")
            for key in ("name", "first_name", "last_name"):
                if key in item and not isinstance(item[key], str):
                    raise Invalid("InvalidType", key, "This value should be of type string.")
            owner = item.get("responsible_user_id")
            if owner is not None and owner not in users:
                raise Invalid(
                    "NotSupportedChoice", "responsible_user_id", "The user does not exist."
                )
            changes = (
                _field_values(state, "contacts", item["custom_fields_values"])
                if ("custom_fields_values" in item)
                else {}
            )
            plans.append((item, target, changes))
        except Invalid as bad:
            errors.append((rid, bad.code, bad.path, bad.detail))
    if errors:
        raise validation_error(errors)
    now, by = now_s(), state.api_user_id
    out = []
    for i, (item, target, changes) in enumerate(plans):
        for key in ("name", "first_name", "last_name", "responsible_user_id"):
            if key in item:
                target[key] = item[key]
        if ("first_name" in item or "last_name" in item) and "name" not in item:
            target["name"] = (
                f"{target.get('first_name') or ''} {target.get('last_name') or ''}".strip()
            )
        _set_values(state, target, changes, by, now)
        target["updated_at"], target["updated_by"] = now, by
        state.version += 1
        entry = {
            "id": target["id"],
            "name": target["name"],
            "updated_at": now,
            "request_id": request_id(item, i),
            "_links": self_link(req, f"/api/v4/contacts/{target['id']}"),
        }
        out.append(entry)
    if contact_id is not None:
        return Response(200, out[0])
    return Response(
        200, {"_links": self_link(req, "/api/v4/contacts"), "_embedded": {"contacts": out}}
    )
