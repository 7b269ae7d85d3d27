"""Tasks of the amoCRM sandbox: POST /api/v4/tasks (no idempotency: the same POST twice creates
two tasks) and PATCH /api/v4/tasks (complete, reschedule, add a result)."""

from __future__ import annotations

from typing import Any

from sandbox.amocrm.api_write import Errors, Invalid, batch, request_id
from sandbox.amocrm.common import Context, Request, Response, self_link, validation_error
from sandbox.amocrm.state import AmoState, now_s


def _check_task(state: AmoState, item: Any, *, create: bool) -> None:
    if not isinstance(item, dict):
        raise Invalid("InvalidType", "", "This value should be of type object.")
    if create or "text" in item:
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            raise Invalid("NotBlank", "text", "This value should not be blank.")
    if create or "complete_till" in item:
        till = item.get("complete_till")
        if isinstance(till, bool) or not isinstance(till, int):
            raise Invalid("InvalidType", "complete_till", "This value should be of type int.")
    if "task_type_id" in item and item["task_type_id"] not in {t["id"] for t in state.task_types}:
        raise Invalid(
            "NotSupportedChoice", "task_type_id", "The value you selected is not a valid choice."
        )
    if (
        item.get("responsible_user_id") is not None
        and item["responsible_user_id"] not in state.user_ids()
    ):
        raise Invalid("NotSupportedChoice", "responsible_user_id", "The user does not exist.")
    if "entity_type" in item or "entity_id" in item:
        entity_type, entity_id = item.get("entity_type"), item.get("entity_id")
        if entity_type not in ("contacts", "leads", "companies", "customers"):
            raise Invalid(
                "NotSupportedChoice", "entity_type", "The value you selected is not a valid choice."
            )
        pool = {"contacts": state.contacts, "leads": state.leads}.get(entity_type)
        if pool is not None and entity_id not in pool:
            raise Invalid("NotFound", "entity_id", "Entity not found.")
    if "duration" in item and (not isinstance(item["duration"], int) or item["duration"] < 0):
        raise Invalid("InvalidType", "duration", "This value should be a positive int.")
    if "is_completed" in item and not isinstance(item["is_completed"], bool):
        raise Invalid("InvalidType", "is_completed", "This value should be of type bool.")
    result = item.get("result")
    if result is not None and not (
        isinstance(result, dict) and isinstance(result.get("text", ""), str)
    ):
        raise Invalid("InvalidType", "result", "This value should be an object with text.")


def _closest(state: AmoState, task: dict[str, Any]) -> None:
    if task["entity_type"] != "contacts" or task["entity_id"] not in state.contacts:
        return
    open_tills = [
        t["complete_till"]
        for t in state.tasks.values()
        if t["entity_type"] == "contacts"
        and t["entity_id"] == task["entity_id"]
        and not t["is_completed"]
    ]
    state.contacts[task["entity_id"]]["closest_task_at"] = min(open_tills) if open_tills else None


def create_tasks(ctx: Context, req: Request) -> Response:
    state = ctx.state
    items = batch(req, ctx.options.batch_max)
    errors: Errors = []
    for i, item in enumerate(items):
        try:
            _check_task(state, item, create=True)
        except Invalid as bad:
            errors.append((request_id(item, i), bad.code, bad.path, bad.detail))
    if errors:
        raise validation_error(errors)
    now, by = now_s(), state.api_user_id
    out = []
    for i, item in enumerate(items):
        tid = state.new_id("task")
        done = bool(item.get("is_completed", False))
        task = {
            "id": tid,
            "created_by": item.get("created_by") or by,
            "updated_by": by,
            "created_at": now,
            "updated_at": now,
            "responsible_user_id": item.get("responsible_user_id") or by,
            "group_id": 0,
            "entity_id": item.get("entity_id"),
            "entity_type": item.get("entity_type"),
            "is_completed": done,
            "task_type_id": item.get("task_type_id", 1),
            "text": item["text"],
            "duration": item.get("duration", 0),
            "complete_till": item["complete_till"],
            "result": dict(item["result"]) if item.get("result") else [],
            "account_id": state.account_id,
        }
        state.tasks[tid] = task
        state.add_event("task_added", "task", tid, now, by)
        _closest(state, task)
        out.append(
            {
                "id": tid,
                "request_id": request_id(item, i),
                "_links": self_link(req, f"/api/v4/tasks/{tid}"),
            }
        )
    return Response(200, {"_links": self_link(req, "/api/v4/tasks"), "_embedded": {"tasks": out}})


def patch_tasks(ctx: Context, req: Request, task_id: str | None = None) -> Response:
    state = ctx.state
    items = batch(req, ctx.options.batch_max, single_id=task_id)
    errors: Errors = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, dict) or item.get("id") not in state.tasks:
                raise Invalid("NotFound", "id", "Entity not found.")
            _check_task(state, item, create=False)
        except Invalid as bad:
            errors.append((request_id(item, i), bad.code, bad.path, bad.detail))
    if errors:
        raise validation_error(errors)
    now, by = now_s(), state.api_user_id
    out = []
    for i, item in enumerate(items):
        task = state.tasks[item["id"]]
        was_done = task["is_completed"]
        for key in (
            "text",
            "complete_till",
            "task_type_id",
            "responsible_user_id",
            "duration",
            "is_completed",
        ):
            if key in item:
                task[key] = item[key]
        if item.get("result"):
            task["result"] = dict(item["result"])
            state.add_event("task_result_added", "task", task["id"], now, by)
        if task["is_completed"] and not was_done:
            state.add_event("task_completed", "task", task["id"], now, by)
        task["updated_at"], task["updated_by"] = now, by
        state.version += 1
        _closest(state, task)
        out.append({"id": task["id"], "updated_at": now, "request_id": request_id(item, i)})
    if task_id is not None:
        return Response(200, out[0])
    return Response(200, {"_links": self_link(req, "/api/v4/tasks"), "_embedded": {"tasks": out}})
