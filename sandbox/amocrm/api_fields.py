"""Custom fields of the amoCRM sandbox: POST /api/v4/{contacts|leads}/custom_fields with `code`,
select `enums` and `is_api_only`, and PATCH (names, flags, the enum list)."""

from __future__ import annotations

import re
from typing import Any

from sandbox.amocrm.api_read import render_field
from sandbox.amocrm.api_write import ENUM_TYPES, Errors, Invalid, batch, request_id
from sandbox.amocrm.common import Context, Request, Response, self_link, validation_error
from sandbox.amocrm.state import AmoState

FIELD_TYPES = {
    "contacts": (
        "text", "numeric", "checkbox", "select", "multiselect", "multitext", "date", "url",
        "date_time", "textarea", "radiobutton", "streetaddress", "smart_address", "birthday",
        "legal_entity", "monetary", "file",
    ),
    "leads": (
        "text", "numeric", "checkbox", "select", "multiselect", "date", "url", "date_time",
        "textarea", "radiobutton", "streetaddress", "smart_address", "birthday", "legal_entity",
        "tracking_data", "monetary", "file", "price",
    ),
}  # fmt: skip
_CODE_RE = re.compile(r"^[A-Za-z0-9_]{1,255}$")


_REMIND = (None, "never", "day", "week", "month")


def _check_field(entity: str, item: Any, codes: set[str]) -> None:
    if not isinstance(item, dict):
        raise Invalid("InvalidType", "", "This value should be of type object.")
    if item.get("type") not in FIELD_TYPES[entity]:
        raise Invalid("NotSupportedChoice", "type", "The value you selected is not a valid choice.")
    code = item.get("code")
    if code is not None:
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise Invalid("InvalidCode", "code", "The code may hold latin letters, digits and _.")
        if code.upper() in codes:
            raise Invalid("NotUnique", "code", "A field with this code already exists.")
        codes.add(code.upper())
    if item["type"] in ENUM_TYPES and not item.get("enums"):
        raise Invalid("NotBlank", "enums", "This field needs enums.")
    _check_field_shape(item)


def create_custom_fields(ctx: Context, req: Request, entity: str) -> Response:
    state = ctx.state
    items = batch(req, ctx.options.batch_max)
    codes = {str(f["code"]).upper() for f in state.custom_fields[entity] if f.get("code")}
    errors: Errors = []
    for i, item in enumerate(items):
        try:
            _check_field(entity, item, codes)
        except Invalid as bad:
            errors.append((request_id(item, i), bad.code, bad.path, bad.detail))
    if errors:
        raise validation_error(errors)
    created = []
    for item in items:
        enums = None
        if item.get("enums"):
            enums = []
            for enum in item["enums"]:
                entry: dict[str, Any] = {
                    "id": state.new_id("enum"),
                    "value": enum["value"],
                    "sort": enum["sort"],
                }
                if enum.get("code"):
                    entry["code"] = enum["code"]
                enums.append(entry)
        definition = {
            "id": state.new_id("field"),
            "name": item["name"],
            "type": item["type"],
            "account_id": state.account_id,
            "code": item.get("code"),
            "sort": item.get("sort", 500),
            "is_api_only": bool(item.get("is_api_only", False)),
            "enums": enums,
            "group_id": item.get("group_id"),
            "required_statuses": [],
            "is_deletable": True,
            "is_predefined": False,
            "entity_type": entity,
            "remind": item.get("remind") if item["type"] == "birthday" else None,
        }
        state.custom_fields[entity].append(definition)
        state.version += 1
        created.append(render_field(req, entity, definition))
    return Response(
        200,
        {
            "_total_items": len(created),
            "_links": self_link(req, f"/api/v4/{entity}/custom_fields"),
            "_embedded": {"custom_fields": created},
        },
    )


_PATCHABLE = {"id", "name", "sort", "is_api_only", "enums", "remind", "request_id", "group_id"}


def _check_patch(entity: str, item: Any, fields: dict[int, dict[str, Any]]) -> None:
    if not isinstance(item, dict) or item.get("id") not in fields:
        raise Invalid("NotFound", "id", "Field not found.")
    unknown = sorted(set(item) - _PATCHABLE)
    if unknown:
        raise Invalid("FieldNotExpected", unknown[0], "This field was not expected.")
    current = fields[item["id"]]
    probe = {"name": current["name"], "type": current["type"], **item}
    probe.pop("code", None)
    if "enums" in item and current["type"] not in (*ENUM_TYPES, "multitext"):
        raise Invalid("FieldNotExpected", "enums", "This field takes no enums.")
    _check_field_shape(probe)
    known = {e["id"] for e in current.get("enums") or []}
    for k, enum in enumerate(item.get("enums") or []):
        if "id" in enum and enum["id"] not in known:
            raise Invalid("NotFound", f"enums.{k}.id", "Enum not found.")


def _check_field_shape(item: dict[str, Any]) -> None:
    if not isinstance(item.get("name"), str) or not item["name"].strip():
        raise Invalid("NotBlank", "name", "This value should not be blank.")
    if item["type"] == "birthday" and item.get("remind") not in _REMIND:
        raise Invalid(
            "NotSupportedChoice", "remind", "The value you selected is not a valid choice."
        )
    if "is_api_only" in item and not isinstance(item["is_api_only"], bool):
        raise Invalid("InvalidType", "is_api_only", "This value should be of type bool.")
    if "sort" in item and (isinstance(item["sort"], bool) or not isinstance(item["sort"], int)):
        raise Invalid("InvalidType", "sort", "This value should be of type int.")
    enums = item.get("enums")
    if (
        item["type"] in ENUM_TYPES
        and "enums" in item
        and (not isinstance(enums, list) or not enums)
    ):
        raise Invalid("NotBlank", "enums", "This field needs enums.")
    if enums is not None:
        if not isinstance(enums, list):
            raise Invalid("InvalidType", "enums", "This value should be of type array.")
        for k, enum in enumerate(enums):
            if (
                not isinstance(enum, dict)
                or not isinstance(enum.get("value"), str)
                or not enum["value"]
            ):
                raise Invalid("NotBlank", f"enums.{k}.value", "This value should not be blank.")
            if isinstance(enum.get("sort"), bool) or not isinstance(enum.get("sort"), int):
                raise Invalid("NotBlank", f"enums.{k}.sort", "This value should be of type int.")
            if enum.get("code") is not None and not isinstance(enum["code"], str):
                raise Invalid(
                    "InvalidType", f"enums.{k}.code", "This value should be of type string."
                )


def patch_custom_fields(
    ctx: Context, req: Request, entity: str, field_id: str | None = None
) -> Response:
    """PATCH fields: name, sort, is_api_only, remind, and `enums` as the complete new list (an
    enum sent with its id keeps it, one without gets a new id, one left out is deleted along
    with the values that chose it)."""
    state = ctx.state
    items = batch(req, ctx.options.batch_max, single_id=field_id)
    fields = {f["id"]: f for f in state.custom_fields[entity]}
    errors: Errors = []
    for i, item in enumerate(items):
        try:
            _check_patch(entity, item, fields)
        except Invalid as bad:
            errors.append((request_id(item, i), bad.code, bad.path, bad.detail))
    if errors:
        raise validation_error(errors)
    out = []
    for item in items:
        definition = fields[item["id"]]
        for key in ("name", "sort", "is_api_only", "group_id"):
            if key in item:
                definition[key] = item[key]
        if "remind" in item and definition["type"] == "birthday":
            definition["remind"] = item["remind"]
        if "enums" in item:
            old = {e["id"]: e for e in definition.get("enums") or []}
            new = []
            for enum in item["enums"]:
                entry = dict(old[enum["id"]]) if "id" in enum else {"id": state.new_id("enum")}
                entry.update({"value": enum["value"], "sort": enum["sort"]})
                if enum.get("code"):
                    entry["code"] = enum["code"]
                new.append(entry)
            definition["enums"] = new
            _drop_values(state, entity, definition)
        state.version += 1
        out.append(render_field(req, entity, definition))
    if field_id is not None:
        return Response(200, out[0])
    return Response(
        200,
        {
            "_total_items": len(out),
            "_links": self_link(req, f"/api/v4/{entity}/custom_fields"),
            "_embedded": {"custom_fields": out},
        },
    )


def _drop_values(state: AmoState, entity: str, definition: dict[str, Any]) -> None:
    """Remove values that chose a deleted enum; refresh the text of renamed ones."""
    if definition["type"] not in ENUM_TYPES:
        return
    enums = {e["id"]: e for e in definition["enums"] or []}
    pool = state.contacts if entity == "contacts" else state.leads
    for record in pool.values():
        cfv = record.get("custom_fields_values") or []
        for field in cfv:
            if field["field_id"] != definition["id"]:
                continue
            kept = []
            for value in field["values"]:
                enum = enums.get(value.get("enum_id"))
                if enum is not None:
                    kept.append({**value, "value": enum["value"]})
            field["values"] = kept
        record["custom_fields_values"] = [f for f in cfv if f["values"]] or None
