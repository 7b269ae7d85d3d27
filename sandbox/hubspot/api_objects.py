"""CRM objects in the HubSpot emulator: list, get, create, update, archive and their batches.

List, get and batch read also answer `propertiesWithHistory` (sandbox.hubspot.history); asking for
it caps a list page and a batch read at 50.
"""

from __future__ import annotations

import bisect
from typing import Any

from sandbox.hubspot import schema
from sandbox.hubspot.common import (
    BATCH_MAX,
    LIST_LIMIT_MAX,
    ApiBase,
    bool_param,
    int_param,
    list_param,
    validation_error,
)
from sandbox.hubspot.history import HISTORY_BATCH_MAX
from sandbox.hubspot.state import Record, iso_ms, now_ms
from sandbox.hubspot.transport import ApiError, Request, Response


class ObjectsApi(ApiBase):
    """Handlers of CRM objects and their batches."""

    def h_list(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        limit = int_param(req.query, "limit", 10)
        with_history = list_param(req.query, "propertiesWithHistory")
        most = HISTORY_BATCH_MAX if with_history else LIST_LIMIT_MAX
        if limit > most or limit < 1:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"limit must be between 1 and {most}, got {limit}",
            )
        after = int_param(req.query, "after", 0)
        archived = bool_param(req.query, "archived")
        names = self._names(obj_type, list_param(req.query, "properties"))
        assoc = list_param(req.query, "associations")
        order = self.state.order[obj_type]
        objs = self.state.objects[obj_type]
        i = bisect.bisect_left(order, after)
        results: list[dict[str, Any]] = []
        next_after: int | None = None
        while i < len(order):
            rec = objs[order[i]]
            i += 1
            if rec.archived != archived:
                continue
            if len(results) == limit:
                next_after = rec.id
                break
            results.append(self._render(obj_type, rec, names, assoc, with_history))
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            body["paging"] = self._link(req.path, str(next_after))
        return Response(200, body)

    def h_get(self, req: Request, flavor: str, type_name: str, obj_id: str) -> Response:
        obj_type = self._type(type_name)
        archived = bool_param(req.query, "archived")
        id_property_values = req.query.get("idProperty")
        id_property = id_property_values[-1] if id_property_values else None
        rec: Record | None
        if id_property and id_property != "hs_object_id":
            if obj_type != "contacts" or id_property != "email":
                raise ApiError(400, "VALIDATION_ERROR", f"{id_property} is not a unique property")
            found = self.state.email_index.get(obj_id.lower())
            rec = None if found is None else self._find(obj_type, str(found), archived=archived)
        else:
            rec = self._find(obj_type, obj_id, archived=archived)
        if rec is None:
            raise self._not_found(obj_id)
        names = self._names(obj_type, list_param(req.query, "properties"))
        assoc = list_param(req.query, "associations")
        with_history = list_param(req.query, "propertiesWithHistory")
        return Response(200, self._render(obj_type, rec, names, assoc, with_history))

    def h_create(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        values, assoc = self._prepare_create(obj_type, req.json())
        rec = self._do_create(obj_type, values, assoc, now_ms())
        return Response(201, self._render(obj_type, rec, None))

    def h_update(self, req: Request, flavor: str, type_name: str, obj_id: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json()
        rec = self._find(obj_type, obj_id)
        if rec is None:
            raise self._not_found(obj_id)
        values, errors = self.state.validate(obj_type, (body or {}).get("properties") or {})
        if errors:
            raise validation_error(errors)
        email = values.get("email")
        if obj_type == "contacts" and email:
            other = self.state.email_index.get(email.lower())
            if other is not None and other != rec.id:
                raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {other}")
        self._apply_update(obj_type, rec, values, now_ms())
        return Response(200, self._render(obj_type, rec, None))

    def h_archive(self, req: Request, flavor: str, type_name: str, obj_id: str) -> Response:
        obj_type = self._type(type_name)
        rec = self._find(obj_type, obj_id)
        if rec is not None:
            self.state.archive(obj_type, rec, now_ms())
        return Response(204)

    # ------------------------------------------------------------------ batches
    def h_batch_read(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        started = iso_ms(now_ms())
        body = req.json()
        with_history = body.get("propertiesWithHistory") if isinstance(body, dict) else None
        if with_history is not None and not isinstance(with_history, list):
            raise ApiError(400, "VALIDATION_ERROR", "propertiesWithHistory must be a list")
        inputs = self._inputs(body, HISTORY_BATCH_MAX if with_history else BATCH_MAX)
        names = self._names(obj_type, body.get("properties"))
        archived = bool(body.get("archived", False)) or bool_param(req.query, "archived")
        id_property = body.get("idProperty")
        results, errors = [], []
        for item in inputs:
            obj_id = str((item or {}).get("id", ""))
            rec: Record | None
            if id_property == "email" and obj_type == "contacts":
                found = self.state.email_index.get(obj_id.lower())
                rec = None if found is None else self.state.get(obj_type, found)
            else:
                rec = self.state.get(obj_type, obj_id)
            if rec is None or rec.archived != archived:
                errors.append(
                    self._item_error(
                        "OBJECT_NOT_FOUND",
                        f"Could not get some {schema.SINGULAR[obj_type].upper()} objects, they may "
                        "be deleted or not exist. Check that ids are valid.",
                        {"ids": [obj_id]},
                    )
                )
                continue
            results.append(self._render(obj_type, rec, names, None, with_history))
        return self._batch(results, errors, started)

    def h_batch_create(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        started = iso_ms(now_ms())
        inputs = self._inputs(req.json())
        traced = all(isinstance(i, dict) and i.get("objectWriteTraceId") for i in inputs)
        prepared: list[tuple[Any, Any, str | None]] = []
        errors: list[dict[str, Any]] = []
        seen_emails: set[str] = set()
        for item in inputs:
            trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
            try:
                values, assoc = self._prepare_create(obj_type, item)
                email = (values.get("email") or "").lower()
                if obj_type == "contacts" and email:
                    if email in seen_emails:
                        raise ApiError(409, "CONFLICT", "Contact already exists in this batch.")
                    seen_emails.add(email)
            except ApiError as exc:
                if not traced:
                    raise  # without trace ids HubSpot fails the whole batch on the first error
                context = {"objectWriteTraceId": [str(trace)]}
                extra = {"errors": exc.body["errors"]} if "errors" in exc.body else {}
                errors.append(
                    self._item_error(exc.body["category"], exc.body["message"], context, **extra)
                )
                continue
            prepared.append((values, assoc, trace))
        now = now_ms()
        results = []
        for values, assoc, trace in prepared:
            rec = self._do_create(obj_type, values, assoc, now)
            out = self._render(obj_type, rec, None)
            if trace:
                out["objectWriteTraceId"] = str(trace)
            results.append(out)
        response = self._batch(results, errors, started)
        if not errors:
            response.status = 201
        return response

    def h_batch_update(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        started = iso_ms(now_ms())
        inputs = self._inputs(req.json())
        ids = [str((i or {}).get("id", "")) for i in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ApiError(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {dupes}")
        now = now_ms()
        results, errors = [], []
        for item, obj_id in zip(inputs, ids, strict=True):
            trace = (item or {}).get("objectWriteTraceId")
            context: dict[str, list[str]] = {"ids": [obj_id]}
            if trace:
                context["objectWriteTraceId"] = [str(trace)]
            rec = self.state.get(obj_type, obj_id)  # merged-away ids are not followed here
            if rec is None or rec.archived:
                errors.append(
                    self._item_error(
                        "OBJECT_NOT_FOUND",
                        "Object not found.  objectId are usually numeric.",
                        context,
                    )
                )
                continue
            row_error = self._row_fault()
            if row_error is not None:
                errors.append(self._item_error(*row_error, context))
                continue
            values, verrors = self.state.validate(obj_type, (item or {}).get("properties") or {})
            if verrors:
                err = validation_error(verrors)
                errors.append(
                    self._item_error(
                        "VALIDATION_ERROR", err.body["message"], context, errors=err.body["errors"]
                    )
                )
                continue
            self._apply_update(obj_type, rec, values, now)
            out = self._render(obj_type, rec, None)
            if trace:
                out["objectWriteTraceId"] = str(trace)
            results.append(out)
        return self._batch(results, errors, started)

    def _row_fault(self) -> tuple[str, str] | None:
        """(category, message) of an emulated transient per-row failure, or None.

        One draw per existing input from the row-error stream; the shapes are the emulator's
        choice (HubSpot documents 423 locks of ~2 s and transient categories, not their rows).
        """
        with self._meta:
            u = self._row_rng.random()
            if u >= self.options.row_error_rate:
                return None
            self._stats["row_errors"] += 1
        if u < self.options.row_error_rate / 2:
            return (
                "LOCKED",
                "This record is locked by another write in progress. Locks will last for 2 "
                "seconds.",
            )
        return ("INTERNAL_ERROR", "An internal error occurred while updating this record.")

    def h_batch_archive(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        now = now_ms()
        for item in self._inputs(req.json()):
            rec = self.state.get(obj_type, str((item or {}).get("id", "")))
            if rec is not None and not rec.archived:
                self.state.archive(obj_type, rec, now)
        return Response(204)
