"""Search in the HubSpot emulator: filters, sorts, paging, the result cap and the search lag."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from sandbox.hubspot.common import OPERATORS, SEARCH_LIMIT_MAX, SEARCH_RESULT_CAP, ApiBase
from sandbox.hubspot.state import Record, now_ms, parse_for_search
from sandbox.hubspot.transport import ApiError, Request, Response


class SearchApi(ApiBase):
    """The search handler and its filter evaluation."""

    def h_search(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json() or {}
        defs = self.state.properties[obj_type]
        groups = body.get("filterGroups") or []
        if not groups and body.get("filters"):
            groups = [{"filters": body["filters"]}]
        if len(groups) > 5:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Too many filter groups ({len(groups)}); the maximum is 5.",
            )
        total_filters = 0
        compiled: list[list[tuple[str, str, str, Any]]] = []
        for group in groups:
            filters = group.get("filters") or []
            if len(filters) > 6:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Too many filters in a group ({len(filters)}); the maximum is 6.",
                )
            total_filters += len(filters)
            compiled.append([self._compile_filter(defs, f) for f in filters])
        if total_filters > 18:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Too many filters ({total_filters}); the maximum is 18 in total.",
            )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise ApiError(400, "VALIDATION_ERROR", "Only one sort is supported.")
        sort_prop, descending = None, False
        if sorts:
            sort = sorts[0]
            if isinstance(sort, str):
                descending = sort.startswith("-")
                sort_prop = sort.lstrip("-+")
            else:
                sort_prop = sort.get("propertyName")
                descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
            if sort_prop not in defs:
                raise ApiError(400, "VALIDATION_ERROR", f"Unknown sort property {sort_prop!r}.")
        limit = body.get("limit", 10)
        try:
            limit = int(limit)
            after = int(body.get("after") or 0)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "VALIDATION_ERROR", "limit and after must be integers") from exc
        if limit < 0 or limit > SEARCH_LIMIT_MAX:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"limit must be between 0 and {SEARCH_LIMIT_MAX}, got {limit}",
            )
        if after + limit > SEARCH_RESULT_CAP:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Search results are limited to {SEARCH_RESULT_CAP} records: after ({after}) + "
                f"limit ({limit}) is beyond that; narrow the search with filters instead.",
            )
        query = str(body.get("query") or "").strip().lower()
        now = now_ms()
        matched: list[tuple[Record, dict[str, str]]] = []
        for rec in self.state.iter_live(obj_type):
            snap = rec.search_view(now)
            if snap is None:
                continue
            if compiled and not any(all(self._test(rec, snap, f) for f in g) for g in compiled):
                continue
            if query and not any(query in v.lower() for v in snap.values()):
                continue
            matched.append((rec, snap))
        if sort_prop:
            type_ = defs[sort_prop]["type"]
            present = [
                (self._value(rec, snap, sort_prop, type_), rec, snap) for rec, snap in matched
            ]
            missing = [(rec, snap) for v, rec, snap in present if v is None]
            ordered = sorted(
                ((v, rec, snap) for v, rec, snap in present if v is not None),
                key=lambda t: t[0],
                reverse=descending,
            )
            matched = [(rec, snap) for _, rec, snap in ordered] + missing
        names = self._names(obj_type, body.get("properties"))
        page = matched[after : after + limit]
        results = []
        for rec, snap in page:
            out = rec.to_api(names)
            out["properties"] = {n: snap.get(n) for n in names}
            out["updatedAt"] = snap.get("hs_lastmodifieddate", rec.updated_at)
            results.append(out)
        response: dict[str, Any] = {"total": len(matched), "results": results}
        if after + limit < len(matched):
            response["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, response)

    def _compile_filter(self, defs: dict[str, Any], spec: Any) -> tuple[str, str, str, Any]:
        if not isinstance(spec, dict):
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid filter: {spec!r}")
        prop = spec.get("propertyName")
        op = str(spec.get("operator", "")).upper()
        if op not in OPERATORS:
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown filter operator {op!r}.")
        if prop not in defs:
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown filter property {prop!r}.")
        type_ = defs[prop]["type"]

        def parse(raw: Any) -> Any:
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
            value = parse_for_search(type_, text)
            if value is None:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"{raw!r} is not a valid {type_} value for {prop}."
                )
            return value

        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            arg: Any = None
        elif op == "BETWEEN":
            arg = (parse(spec.get("value")), parse(spec.get("highValue")))
        elif op in ("IN", "NOT_IN"):
            values = spec.get("values") or []
            # string IN matches lower-cased stored values against the values as given
            if type_ in ("string", "phone_number"):
                arg = {str(v) for v in values}
            else:
                arg = {parse(v) for v in values}
        elif op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            arg = str(spec.get("value", "")).lower()
        else:
            arg = parse(spec.get("value"))
        return prop, op, type_, arg

    @staticmethod
    def _value(rec: Record, snap: dict[str, str], prop: str, type_: str) -> Any:
        raw = snap.get(prop)
        if raw is None or raw == "":
            return None
        cached = rec.parsed.get(prop)
        if cached is not None and cached[0] is raw:
            return cached[1]
        value = parse_for_search(type_, raw)
        rec.parsed[prop] = (raw, value)
        return value

    def _test(self, rec: Record, snap: dict[str, str], flt: tuple[str, str, str, Any]) -> bool:
        prop, op, type_, arg = flt
        value = self._value(rec, snap, prop, type_)
        if op == "HAS_PROPERTY":
            return value is not None
        if op == "NOT_HAS_PROPERTY":
            return value is None
        if op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN") and value is None:
            return True
        if value is None:
            return False
        if op == "EQ":
            return value == arg
        if op == "NEQ":
            return value != arg
        try:
            if op == "LT":
                return value < arg
            if op == "LTE":
                return value <= arg
            if op == "GT":
                return value > arg
            if op == "GTE":
                return value >= arg
            if op == "BETWEEN":
                return arg[0] <= value <= arg[1]
        except TypeError:
            return False
        if op == "IN":
            return value in arg
        if op == "NOT_IN":
            return value not in arg
        text = str(value).lower()
        if "*" in arg:
            hit = fnmatch.fnmatchcase(text, arg) or any(
                fnmatch.fnmatchcase(tok, arg) for tok in re.split(r"[\s,;]+", text)
            )
        else:
            hit = arg in re.findall(r"[\w.@+-]+|\w+", text) or arg in re.findall(r"\w+", text)
        return hit if op == "CONTAINS_TOKEN" else not hit
