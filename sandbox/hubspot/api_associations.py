"""v4 associations in the HubSpot emulator: per object, default, labelled, and in batches."""

from __future__ import annotations

from typing import Any

from sandbox.hubspot import schema
from sandbox.hubspot.common import (
    ASSOC_BATCH_MAX,
    ASSOC_LIST_MAX,
    LIST_LIMIT_MAX,
    ApiBase,
    int_param,
)
from sandbox.hubspot.state import Record, iso_ms, now_ms
from sandbox.hubspot.transport import ApiError, Request, Response


class AssociationsApi(ApiBase):
    """Handlers of v4 associations."""

    def _assoc_results(self, links: dict[int, list[tuple[str, int]]], flavor: str) -> list[dict]:
        return [
            {
                "toObjectId": tid if flavor == "v4" else str(tid),
                "associationTypes": [
                    {"category": cat, "typeId": type_id, "label": None} for cat, type_id in types
                ],
            }
            for tid, types in links.items()
        ]

    def h_object_associations(
        self, req: Request, flavor: str, type_name: str, obj_id: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        rec = self._find(obj_type, obj_id)
        if rec is None:
            raise self._not_found(obj_id)
        links = self.state.associations(obj_type, rec.id, to_type)
        max_limit = LIST_LIMIT_MAX if flavor == "v3" else ASSOC_LIST_MAX
        limit = int_param(req.query, "limit", max_limit)
        if limit < 1 or limit > max_limit:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {max_limit}")
        after = int_param(req.query, "after", 0)
        ids = [tid for tid in links if tid >= after]
        page, rest = ids[:limit], ids[limit:]
        if flavor == "v3":
            results: list[dict[str, Any]] = [
                {"id": str(tid), "type": schema.association_label(t)}
                for tid in page
                for _, t in links[tid]
                if t in schema.ASSOCIATION_TYPES
            ]
        else:
            results = self._assoc_results({tid: links[tid] for tid in page}, flavor)
        body: dict[str, Any] = {"results": results}
        if rest:
            body["paging"] = self._link(req.path, str(rest[0]))
        return Response(200, body)

    def _associate_pair(
        self, obj_type: str, obj_id: str, to_type: str, to_id: str, specs: list[tuple[str, int]]
    ) -> tuple[Record, Record]:
        rec = self._find(obj_type, obj_id)
        target = self._find(to_type, to_id)
        if rec is None or target is None:
            raise self._not_found(obj_id if rec is None else to_id)
        for category, type_id in specs:
            pair = schema.ASSOCIATION_TYPES.get(type_id)
            if category == "HUBSPOT_DEFINED" and pair != (obj_type, to_type):
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Association type {type_id} is not valid between {obj_type} and {to_type}.",
                )
            self.state.associate(obj_type, rec.id, to_type, target.id, type_id, category)
        now = now_ms()
        self.roll_up(obj_type, rec, to_type, target.id, now)
        self.roll_up(to_type, target, obj_type, rec.id, now)
        return rec, target

    def h_associate(
        self,
        req: Request,
        flavor: str,
        type_name: str,
        obj_id: str,
        to_name: str,
        to_id: str,
        assoc_type: str | None = None,
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        if assoc_type is not None:  # v3 form: .../{toId}/{associationType}
            type_id = schema.LABEL_TO_TYPE.get(assoc_type)
            if type_id is None and assoc_type.isdigit():
                type_id = int(assoc_type)
            if type_id is None:
                raise ApiError(400, "VALIDATION_ERROR", f"Unknown association type {assoc_type!r}")
            rec, _ = self._associate_pair(
                obj_type, obj_id, to_type, to_id, [("HUBSPOT_DEFINED", type_id)]
            )
            return Response(200, self._render(obj_type, rec, None, [to_type]))
        body = req.json()
        if not isinstance(body, list):
            raise ApiError(400, "VALIDATION_ERROR", "Expected a list of association types")
        specs = [
            (
                str(s.get("associationCategory", "HUBSPOT_DEFINED")),
                int(s.get("associationTypeId", 0)),
            )
            for s in body
        ]
        rec, target = self._associate_pair(obj_type, obj_id, to_type, to_id, specs)
        return Response(
            200,
            {
                "fromObjectTypeId": schema.OBJECT_TYPE_IDS[obj_type],
                "fromObjectId": rec.id,
                "toObjectTypeId": schema.OBJECT_TYPE_IDS[to_type],
                "toObjectId": target.id,
                "labels": [],
            },
        )

    def h_associate_default(
        self, req: Request, flavor: str, type_name: str, obj_id: str, to_name: str, to_id: str
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        type_id = schema.DEFAULT_TYPE.get((obj_type, to_type))
        if type_id is None:
            raise ApiError(
                400, "VALIDATION_ERROR", f"No default association {obj_type} -> {to_type}"
            )
        rec, target = self._associate_pair(
            obj_type, obj_id, to_type, to_id, [("HUBSPOT_DEFINED", type_id)]
        )
        result = {
            "from": {"id": str(rec.id)},
            "to": {"id": str(target.id)},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": type_id,
            },
        }
        return Response(200, {"status": "COMPLETE", "results": [result]})

    def h_unassociate(
        self,
        req: Request,
        flavor: str,
        type_name: str,
        obj_id: str,
        to_name: str,
        to_id: str,
        assoc_type: str | None = None,
    ) -> Response:
        obj_type, to_type = self._type(type_name), self._type(to_name)
        rec, target = self.state.get(obj_type, obj_id), self.state.get(to_type, to_id)
        if rec is not None and target is not None:
            self.state.unassociate(obj_type, rec.id, to_type, target.id)
        return Response(204)

    def h_assoc_batch_read(
        self, req: Request, flavor: str, from_name: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(from_name), self._type(to_name)
        started = iso_ms(now_ms())
        inputs = self._inputs(req.json(), ASSOC_BATCH_MAX)
        results, errors = [], []
        for item in inputs:
            obj_id = str((item or {}).get("id", ""))
            rec = self.state.get(obj_type, obj_id)
            links = (
                {}
                if rec is None or rec.archived
                else self.state.associations(obj_type, rec.id, to_type)
            )
            if not links:
                errors.append(
                    self._item_error(
                        "OBJECT_NOT_FOUND",
                        f"No {to_type} is associated with {schema.SINGULAR[obj_type]} {obj_id}.",
                        {"fromObjectId": [obj_id]},
                        subCategory="crm.associations.NO_ASSOCIATIONS_FOUND",
                    )
                )
                continue
            after = int(item.get("after") or 0) if str(item.get("after") or "0").isdigit() else 0
            ids = [tid for tid in links if tid >= after]
            page, rest = ids[:ASSOC_LIST_MAX], ids[ASSOC_LIST_MAX:]
            entry: dict[str, Any] = {
                "from": {"id": str(rec.id)},  # type: ignore[union-attr]
                "to": self._assoc_results({tid: links[tid] for tid in page}, flavor),
            }
            if rest:
                entry["paging"] = {"next": {"after": str(rest[0])}}
            results.append(entry)
        return self._batch(results, errors, started)

    def h_assoc_batch_create(
        self, req: Request, flavor: str, from_name: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(from_name), self._type(to_name)
        started = iso_ms(now_ms())
        results, errors = [], []
        for item in self._inputs(req.json(), 2000):
            try:
                from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
                specs = [
                    (
                        str(t.get("associationCategory", "HUBSPOT_DEFINED")),
                        int(t["associationTypeId"]),
                    )
                    for t in item.get("types", [])
                ]
                rec, target = self._associate_pair(obj_type, from_id, to_type, to_id, specs)
            except (KeyError, TypeError, ValueError):
                errors.append(self._item_error("VALIDATION_ERROR", f"Invalid input {item}", {}))
                continue
            except ApiError as exc:
                errors.append(self._item_error(exc.body["category"], exc.body["message"], {}))
                continue
            results.append(
                {
                    "fromObjectTypeId": schema.OBJECT_TYPE_IDS[obj_type],
                    "fromObjectId": rec.id,
                    "toObjectTypeId": schema.OBJECT_TYPE_IDS[to_type],
                    "toObjectId": target.id,
                    "labels": [],
                }
            )
        response = self._batch(results, errors, started)
        if not errors:
            response.status = 201
        return response

    def h_assoc_batch_default(
        self, req: Request, flavor: str, from_name: str, to_name: str
    ) -> Response:
        obj_type, to_type = self._type(from_name), self._type(to_name)
        type_id = schema.DEFAULT_TYPE.get((obj_type, to_type))
        if type_id is None:
            raise ApiError(
                400, "VALIDATION_ERROR", f"No default association {obj_type} -> {to_type}"
            )
        started = iso_ms(now_ms())
        results, errors = [], []
        for item in self._inputs(req.json(), 2000):
            try:
                from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
                rec, target = self._associate_pair(
                    obj_type, from_id, to_type, to_id, [("HUBSPOT_DEFINED", type_id)]
                )
            except (KeyError, TypeError):
                errors.append(self._item_error("VALIDATION_ERROR", f"Invalid input {item}", {}))
                continue
            except ApiError as exc:
                errors.append(self._item_error(exc.body["category"], exc.body["message"], {}))
                continue
            results.append(
                {
                    "from": {"id": str(rec.id)},
                    "to": {"id": str(target.id)},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": type_id,
                    },
                }
            )
        return self._batch(results, errors, started)
