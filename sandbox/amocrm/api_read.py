"""GET handlers of the amoCRM sandbox: account, users, contacts, leads, pipelines, events, notes,
tasks and custom fields, in API v4's HAL shapes (an empty list is 204 with no body).

Handlers run under the state lock and their answers are encoded before it is released
(`AmoSandboxServer.handle`), so a rendered record may share the state's nested values instead of
copying them. A list's filtered, ordered records are kept between its pages (`ListCache`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.amocrm.common import (
    ApiError,
    Context,
    Request,
    Response,
    first_page,
    in_range,
    paginate,
    query_key,
    self_link,
)

LIST_MAX = 250
EVENTS_MAX = 100
_ACCOUNT_KEYS = (
    "id",
    "name",
    "subdomain",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "current_user_id",
    "country",
    "currency",
    "currency_symbol",
    "customers_mode",
    "is_unsorted_on",
    "mobile_feature_version",
    "is_loss_reason_enabled",
    "is_helpbot_enabled",
    "is_technical_account",
    "contact_name_display_order",
)


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError(400, f"{what} must be an integer") from exc


def _offset(tz: str) -> str:
    offset = datetime.now(UTC).astimezone(ZoneInfo(tz)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---------------------------------------------------------------------------- account, users


def account(ctx: Context, req: Request) -> Response:
    state = ctx.state
    body: dict[str, Any] = {k: state.account[k] for k in _ACCOUNT_KEYS if k in state.account}
    with_ = req.with_()
    embedded: dict[str, Any] = {}
    if "amojo_id" in with_:
        body["amojo_id"] = f"00000000-0000-4000-8000-{state.account_id:012d}"
    if "version" in with_:
        body["version"] = 11
    if "is_api_filter_enabled" in with_:
        body["is_api_filter_enabled"] = True
    if "task_types" in with_:
        embedded["task_types"] = state.task_types
    if "users_groups" in with_:
        embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
    if "datetime_settings" in with_:
        embedded["datetime_settings"] = {
            "date_pattern": "d.m.Y H:i",
            "short_date_pattern": "d.m.Y",
            "short_time_pattern": "H:i",
            "date_format": "d.m.Y",
            "time_format": "H:i:s",
            "timezone": state.timezone,
            "timezone_offset": _offset(state.timezone),
        }
    body["_links"] = self_link(req, "/api/v4/account")
    if embedded:
        body["_embedded"] = embedded
    return Response(200, body)


def _user(req: Request, user: dict[str, Any]) -> dict[str, Any]:
    out = dict(user)
    out["_links"] = self_link(req, f"/api/v4/users/{user['id']}")
    return out


def users(ctx: Context, req: Request) -> Response:
    items = sorted(ctx.state.users, key=lambda u: u["id"])
    return paginate(req, items, "users", limit_max=LIST_MAX, render=lambda u: _user(req, u))


def user(ctx: Context, req: Request, user_id: str) -> Response:
    uid = _int(user_id, "id")
    for found in ctx.state.users:
        if found["id"] == uid:
            return Response(200, _user(req, found))
    return Response(204)


# ---------------------------------------------------------------------------- contacts, leads


def _leads_by_contact(ctx: Context) -> dict[int, list[int]]:
    def build() -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for lead in ctx.state.leads.values():
            for link in lead["contacts"]:
                out.setdefault(link["id"], []).append(lead["id"])
        return out

    found: dict[int, list[int]] = ctx.lists.get(ctx.state, ("leads_by_contact",), build)
    return found


def _contact(req: Request, contact: dict[str, Any], leads: list[int] | None) -> dict[str, Any]:
    out = dict(contact)
    out["_links"] = self_link(req, f"/api/v4/contacts/{contact['id']}")
    embedded: dict[str, Any] = {"tags": [], "companies": []}
    if leads is not None:
        embedded["leads"] = [
            {"id": lid, "_links": self_link(req, f"/api/v4/leads/{lid}")} for lid in sorted(leads)
        ]
    out["_embedded"] = embedded
    return out


def _matches_query(contact: dict[str, Any], query: str) -> bool:
    needle = query.lower()
    if needle in (contact.get("name") or "").lower():
        return True
    digits = "".join(ch for ch in query if ch.isdigit())
    for field in contact.get("custom_fields_values") or []:
        for value in field["values"]:
            text = str(value.get("value", ""))
            if needle in text.lower():
                return True
            if len(digits) >= 5 and digits in "".join(ch for ch in text if ch.isdigit()):
                return True
    return False


def _order(items: list[dict[str, Any]], req: Request, allowed: tuple[str, ...]) -> None:
    order = req.order(allowed)
    if order is None:
        items.sort(key=lambda x: x["id"])
    else:
        name, desc = order
        items.sort(key=lambda x: (x.get(name) or 0, x["id"]), reverse=desc)


def contacts(ctx: Context, req: Request) -> Response:
    ids = set(req.ints("filter[id]"))
    owners = set(req.ints("filter[responsible_user_id]"))
    # a scalar filter[updated_at] finds nothing on contacts and leads (see README)
    updated = req.range("filter[updated_at]", scalar="none")
    created = req.range("filter[created_at]", scalar="none")
    query = req.one("query")

    def build() -> list[dict[str, Any]]:
        found = [
            c
            for c in ctx.state.contacts.values()
            if not c["is_deleted"]
            and (not ids or c["id"] in ids)
            and (not owners or c["responsible_user_id"] in owners)
            and in_range(c["updated_at"], updated)
            and in_range(c["created_at"], created)
            and (not query or _matches_query(c, query))
        ]
        _order(found, req, ("updated_at", "id"))
        return found

    items = ctx.lists.get(ctx.state, query_key(req, "contacts"), build, fresh=first_page(req))
    want_leads = "leads" in req.with_()
    by_contact = _leads_by_contact(ctx) if want_leads else {}

    def render(c: dict[str, Any]) -> dict[str, Any]:
        return _contact(req, c, by_contact.get(c["id"], []) if want_leads else None)

    return paginate(req, items, "contacts", limit_max=LIST_MAX, render=render)


def contact(ctx: Context, req: Request, contact_id: str) -> Response:
    found = ctx.state.contacts.get(_int(contact_id, "id"))
    if found is None or found["is_deleted"]:
        return Response(204)
    leads = _leads_by_contact(ctx).get(found["id"], []) if "leads" in req.with_() else None
    return Response(200, _contact(req, found, leads))


def _lead(req: Request, lead: dict[str, Any], with_contacts: bool) -> dict[str, Any]:
    out = {k: v for k, v in lead.items() if k != "contacts"}
    out["_links"] = self_link(req, f"/api/v4/leads/{lead['id']}")
    embedded: dict[str, Any] = {"tags": [], "companies": []}
    if with_contacts:
        embedded["contacts"] = [
            {
                "id": c["id"],
                "is_main": c["is_main"],
                "_links": self_link(req, f"/api/v4/contacts/{c['id']}"),
            }
            for c in lead["contacts"]
        ]
    out["_embedded"] = embedded
    return out


def leads(ctx: Context, req: Request) -> Response:
    ids = set(req.ints("filter[id]"))
    owners = set(req.ints("filter[responsible_user_id]"))
    pipelines = set(req.ints("filter[pipeline_id]"))
    statuses: set[tuple[int, int]] = set()
    for key, value in req.pairs:
        if key.startswith("filter[statuses][") and key.endswith("[status_id]"):
            index = key[len("filter[statuses][") : -len("][status_id]")]
            pipeline = req.one(f"filter[statuses][{index}][pipeline_id]") or "0"
            statuses.add((_int(pipeline, "pipeline_id"), _int(value, "status_id")))
    updated = req.range("filter[updated_at]", scalar="none")
    created = req.range("filter[created_at]", scalar="none")
    closed = req.range("filter[closed_at]", scalar="none")

    def build() -> list[dict[str, Any]]:
        found = [
            lead
            for lead in ctx.state.leads.values()
            if not lead["is_deleted"]
            and (not ids or lead["id"] in ids)
            and (not owners or lead["responsible_user_id"] in owners)
            and (not pipelines or lead["pipeline_id"] in pipelines)
            and (not statuses or (lead["pipeline_id"], lead["status_id"]) in statuses)
            and in_range(lead["updated_at"], updated)
            and in_range(lead["created_at"], created)
            and in_range(lead["closed_at"], closed)
        ]
        _order(found, req, ("created_at", "updated_at", "id"))
        return found

    items = ctx.lists.get(ctx.state, query_key(req, "leads"), build, fresh=first_page(req))
    with_contacts = "contacts" in req.with_()
    return paginate(
        req, items, "leads", limit_max=LIST_MAX, render=lambda x: _lead(req, x, with_contacts)
    )


def lead(ctx: Context, req: Request, lead_id: str) -> Response:
    found = ctx.state.leads.get(_int(lead_id, "id"))
    if found is None or found["is_deleted"]:
        return Response(204)
    return Response(200, _lead(req, found, "contacts" in req.with_()))


def _pipeline(req: Request, pipeline: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in pipeline.items() if k != "statuses"}
    path = f"/api/v4/leads/pipelines/{pipeline['id']}"
    out["_links"] = self_link(req, path)
    out["_embedded"] = {
        "statuses": [
            {**s, "_links": self_link(req, f"{path}/statuses/{s['id']}")}
            for s in pipeline["statuses"]
        ]
    }
    return out


def pipelines(ctx: Context, req: Request) -> Response:
    items = [_pipeline(req, p) for p in ctx.state.pipelines]
    if not items:
        return Response(204)
    return Response(
        200,
        {
            "_total_items": len(items),
            "_links": self_link(req, "/api/v4/leads/pipelines"),
            "_embedded": {"pipelines": items},
        },
    )


def pipeline(ctx: Context, req: Request, pipeline_id: str) -> Response:
    pid = _int(pipeline_id, "id")
    for found in ctx.state.pipelines:
        if found["id"] == pid:
            return Response(200, _pipeline(req, found))
    return Response(204)


# ---------------------------------------------------------------------------- events


def _event(req: Request, event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in event.items() if not k.startswith("_")}
    out["_links"] = self_link(req, f"/api/v4/events/{event['id']}")
    plural = {"contact": "contacts", "lead": "leads", "task": "tasks"}.get(event["entity_type"])
    entity_path = f"/api/v4/{plural}/{event['entity_id']}" if plural else "/api/v4/events"
    out["_embedded"] = {"entity": {"id": event["entity_id"], "_links": self_link(req, entity_path)}}
    return out


def events(ctx: Context, req: Request) -> Response:
    ids = set(req.values("filter[id]"))
    created = req.range("filter[created_at]")
    by = set(req.ints("filter[created_by]"))
    entities = set(req.values("filter[entity]"))
    entity_ids = set(req.ints("filter[entity_id]"))
    types = req.values("filter[type]")
    if entity_ids and len(entities) != 1:
        raise ApiError(400, "filter[entity_id] needs exactly one filter[entity]")
    if len(entity_ids) > 10 or len(by) > 10:
        raise ApiError(400, "at most 10 ids per filter")
    field_types = [t for t in types if t.startswith("custom_field_") and t[13:-14].isdigit()]
    if field_types and len(types) > 1:
        raise ApiError(400, "custom_field_{ID}_value_changed must be the only type")
    field_id = int(field_types[0][13:-14]) if field_types else None
    wanted = {"custom_field_value_changed"} if field_types else set(types)

    def build() -> list[dict[str, Any]]:
        return [
            e
            for e in reversed(ctx.state.events)
            if (not ids or e["id"] in ids)
            and in_range(e["created_at"], created)
            and (not by or e["created_by"] in by)
            and (not entities or e["entity_type"] in entities)
            and (not entity_ids or e["entity_id"] in entity_ids)
            and (not wanted or e["type"] in wanted)
            and (field_id is None or e.get("_field_id") == field_id)
        ]

    items = ctx.lists.get(ctx.state, query_key(req, "events"), build, fresh=first_page(req))
    return paginate(req, items, "events", limit_max=EVENTS_MAX, render=lambda e: _event(req, e))


# ---------------------------------------------------------------------------- notes, tasks


def _note(req: Request, entity: str, note: dict[str, Any]) -> dict[str, Any]:
    out = dict(note)
    out["_links"] = self_link(req, f"/api/v4/{entity}/{note['entity_id']}/notes/{note['id']}")
    return out


def notes(ctx: Context, req: Request, entity: str, entity_id: str | None = None) -> Response:
    ids = set(req.ints("filter[id]"))
    owners = set(req.ints("filter[entity_id]"))
    if entity_id is not None:
        owners = {_int(entity_id, "entity_id")}
    types = set(req.values("filter[note_type]"))
    updated = req.range("filter[updated_at]")

    def build() -> list[dict[str, Any]]:
        found = [
            n
            for n in ctx.state.notes[entity].values()
            if (not ids or n["id"] in ids)
            and (not owners or n["entity_id"] in owners)
            and (not types or n["note_type"] in types)
            and in_range(n["updated_at"], updated)
        ]
        _order(found, req, ("updated_at", "id"))
        return found

    items = ctx.lists.get(
        ctx.state, query_key(req, "notes", entity, entity_id), build, fresh=first_page(req)
    )
    return paginate(req, items, "notes", limit_max=LIST_MAX, render=lambda n: _note(req, entity, n))


def _task(req: Request, task: dict[str, Any]) -> dict[str, Any]:
    out = dict(task)
    out["_links"] = self_link(req, f"/api/v4/tasks/{task['id']}")
    return out


def tasks(ctx: Context, req: Request) -> Response:
    ids = set(req.ints("filter[id]"))
    owners = set(req.ints("filter[responsible_user_id]"))
    types = set(req.ints("filter[task_type]"))
    entity_type = req.values("filter[entity_type]")
    entity_ids = set(req.ints("filter[entity_id]"))
    if entity_ids and not entity_type:
        raise ApiError(400, "filter[entity_id] needs filter[entity_type]")
    done = req.one("filter[is_completed]")
    if done not in (None, "", "0", "1"):
        raise ApiError(400, "filter[is_completed] must be 0 or 1")
    updated = req.range("filter[updated_at]")

    def build() -> list[dict[str, Any]]:
        found = [
            t
            for t in ctx.state.tasks.values()
            if (not ids or t["id"] in ids)
            and (not owners or t["responsible_user_id"] in owners)
            and (not types or t["task_type_id"] in types)
            and (not entity_type or t["entity_type"] in entity_type)
            and (not entity_ids or t["entity_id"] in entity_ids)
            and (done in (None, "") or t["is_completed"] == (done == "1"))
            and in_range(t["updated_at"], updated)
        ]
        _order(found, req, ("created_at", "complete_till", "id"))
        return found

    items = ctx.lists.get(ctx.state, query_key(req, "tasks"), build, fresh=first_page(req))
    return paginate(req, items, "tasks", limit_max=LIST_MAX, render=lambda t: _task(req, t))


def task(ctx: Context, req: Request, task_id: str) -> Response:
    found = ctx.state.tasks.get(_int(task_id, "id"))
    return Response(204) if found is None else Response(200, _task(req, found))


# ---------------------------------------------------------------------------- custom fields


def render_field(req: Request, entity: str, definition: dict[str, Any]) -> dict[str, Any]:
    out = dict(definition)
    out["_links"] = self_link(req, f"/api/v4/{entity}/custom_fields/{definition['id']}")
    return out


def custom_fields(ctx: Context, req: Request, entity: str) -> Response:
    return paginate(
        req,
        ctx.state.custom_fields[entity],
        "custom_fields",
        limit_max=LIST_MAX,
        totals=True,
        render=lambda f: render_field(req, entity, f),
    )


def custom_field(ctx: Context, req: Request, entity: str, field_id: str) -> Response:
    found = ctx.state.field(entity, field_id=_int(field_id, "id"))
    return Response(204) if found is None else Response(200, render_field(req, entity, found))
