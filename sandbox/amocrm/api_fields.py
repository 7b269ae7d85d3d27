"""Custom field creation of the amoCRM sandbox: POST /api/v4/{contacts|leads}/custom_fields with
`code`, select `enums` and `is_api_only`."""

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


def _check_field(state: AmoState, entity: str, item: Any, codes: set[str]) -> None:
    if not isinstance(item, dict):
        raise Invalid("InvalidType", "", "This value should be of type object.")
    if not isinstance(item.get("name"), str) or not item["name"].strip():
        raise Invalid("NotBlank", "name", "This value should not be blank.")
    if item.get("type") not in FIELD_TYPES[entity]:
        raise Invalid("NotSupportedChoice", "type", "The value you selected is not a valid choice.")
    code = item.get("code")
    if code is not None:
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise Invalid("InvalidCode", "code", "The code may hold latin letters, digits and _.")
        if code.upper() in codes:
            raise Invalid("NotUnique", "code", "A field with this code already exists.")
        codes.add(code.upper())
    if "is_api_only" in item and not isinstance(item["is_api_only"], bool):
        raise Invalid("InvalidType", "is_api_only", "This value should be of type bool.")
    if "sort" in item and (isinstance(item["sort"], bool) or not isinstance(item["sort"], int)):
        raise Invalid("InvalidType", "sort", "This value should be of type int.")
    if item.get("type") == "birthday" and item.get("remind") not in (
        None,
        "never",
        "day",
        "week",
        "month",
    ):
        raise Invalid(
            "NotSupportedChoice", "remind", "The value you selected is not a valid choice."
        )
    enums = item.get("enums")
    if item["type"] in ENUM_TYPES or item["type"] == "multitext":
        if item["type"] != "multitext" and (not isinstance(enums, list) or not enums):
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


def create_custom_fields(ctx: Context, req: Request, entity: str) -> Response:
    state = ctx.state
    items = batch(req, ctx.options.batch_max)
    codes = {str(f["code"]).upper() for f in state.custom_fields[entity] if f.get("code")}
    errors: Errors = []
    for i, item in enumerate(items):
        try:
            _check_field(state, entity, item, codes)
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
