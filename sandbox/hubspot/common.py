"""What the HubSpot emulator's modules share: limits of the API, `SandboxOptions`, validation
errors, query parameters and `ApiBase` (state, options and the object helpers).
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sandbox.hubspot import history, schema
from sandbox.hubspot.state import HubSpotState, Record, iso_ms, now_ms, parse_ms
from sandbox.hubspot.transport import ApiError, Response

LIST_LIMIT_MAX = 100
# Engagements whose association with a contact moves the contact's activity roll-ups.
ROLLED_UP_ENGAGEMENTS = ("calls", "meetings", "emails", "notes", "communications")
CALCULATED = {"sourceType": "CALCULATED", "sourceId": "RollupProperties"}
BATCH_MAX = 100
SEARCH_LIMIT_MAX = 200
SEARCH_RESULT_CAP = 10_000
ASSOC_LIST_MAX = 500
ASSOC_BATCH_MAX = 1000
OWNERS_LIMIT_MAX = 500

OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}


@dataclass
class SandboxOptions:
    """Behaviour of a sandbox server; faults and limits can change at runtime (`set_faults`)."""

    token: str = "sandbox-token"
    burst_limit: int = 190
    burst_window_s: float = 10.0
    search_per_second: int = 5
    search_lag_s: float = 0.0
    fail_rate_5xx: float = 0.0
    latency_ms: int = 0
    # plus a seeded uniform 0..latency_jitter_ms per request, before it is counted for the limits
    latency_jitter_ms: int = 0
    # a faster clock: rate windows and latency divided by it (time_scale=10: 190 requests per
    # second and 5 searches per 0.1 s, 300 ms latency served in 30 ms), so their ratios hold
    time_scale: float = 1.0
    drop_rate: float = 0.0
    # a state-changing request is applied, then the connection closes without an answer
    drop_after_apply_rate: float = 0.0
    # each existing input of a batch update fails alone, transiently, in a 207 (see README)
    row_error_rate: float = 0.0
    # a batch create or update is answered 423 LOCKED and not applied (transport.Handler)
    lock_rate: float = 0.0
    # an answer is cut off: its headers and half its body are sent, then the connection closes
    # (a write was applied); transport.Handler
    cut_rate: float = 0.0
    seed: int = 1
    daily_limit: int = 625_000
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    oauth_code: str = "sandbox-auth-code"
    oauth_token_ttl_s: float = 1800.0
    # scopes granted to every token (None: all); other calls answer 403 MISSING_SCOPES
    scopes: tuple[str, ...] | None = None
    log_requests: bool = False

    def __repr__(self) -> str:  # secrets stay out of reprs
        shown = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("token", "client_secret", "refresh_token", "oauth_code")
        }
        return f"SandboxOptions({shown})"


def validation_message(errors: list[dict[str, Any]]) -> str:
    return "Property values were not valid: " + json.dumps(errors, ensure_ascii=False)


def validation_error(errors: list[dict[str, Any]], status: int = 400, **extra: Any) -> ApiError:
    return ApiError(
        status,
        "VALIDATION_ERROR",
        validation_message(errors),
        errors=[
            {"message": e["message"], "code": e["error"], "context": {"propertyName": [e["name"]]}}
            for e in errors
        ],
        **extra,
    )


def int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError as exc:
        raise ApiError(
            400, "VALIDATION_ERROR", f"Invalid value for {name}: {values[-1]!r}"
        ) from exc


def bool_param(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[-1].lower() == "true"


def list_param(query: dict[str, list[str]], name: str) -> list[str] | None:
    values = query.get(name)
    if values is None:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


class ApiBase:
    """What the handler modules share: the server's state and options, and the object helpers.

    `SandboxServer` is made of this and the mixins of auth, limits and each API family; the
    attributes below are set by `SandboxServer.__init__`.
    """

    state: HubSpotState
    options: SandboxOptions
    _meta: threading.Lock
    _oauth: dict[str, float]
    _stats: dict[str, Any]
    _row_rng: random.Random

    if TYPE_CHECKING:

        @property
        def base_url(self) -> str: ...

    @staticmethod
    def _error(exc: ApiError) -> Response:
        return Response(exc.status, exc.body)

    def _type(self, name: str) -> str:
        obj_type = schema.resolve_type(name)
        if obj_type is None:
            raise ApiError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
        return obj_type

    def _lag_ms(self) -> int:
        return int(self.options.search_lag_s * 1000)

    def _after_write(self, rec: Record, now: int, created: bool = False) -> None:
        """Make a write visible to search after the configured lag."""
        lag = self._lag_ms()
        if lag <= 0:
            self.state.reindex(rec, now)
            return
        if created:
            rec.indexed = None
            rec.pending = []
        rec.pending.append((now + lag, dict(rec.props)))

    def _names(self, obj_type: str, requested: list[str] | None) -> list[str]:
        if not requested:
            return list(schema.DEFAULT_PROPERTIES[obj_type])
        names = list(dict.fromkeys(requested))
        for extra in schema.ALWAYS_PROPERTIES[obj_type]:
            if extra not in names:
                names.append(extra)
        return names

    def _render(
        self,
        obj_type: str,
        rec: Record,
        names: list[str] | None,
        associations: list[str] | None = None,
        with_history: list[str] | None = None,
    ) -> dict[str, Any]:
        out = rec.to_api(names if names is not None else sorted(rec.props))
        if with_history:
            out["propertiesWithHistory"] = history.render(self.state, obj_type, rec, with_history)
        if associations:
            assoc_out: dict[str, Any] = {}
            for name in associations:
                to_type = schema.resolve_type(name)
                if to_type is None:
                    continue
                links = self.state.associations(obj_type, rec.id, to_type)
                if links:
                    assoc_out[to_type] = {
                        "results": [
                            {"id": str(tid), "type": schema.association_label(t)}
                            for tid, types in links.items()
                            for _, t in types
                            if t in schema.ASSOCIATION_TYPES
                        ]
                    }
            if assoc_out:
                out["associations"] = assoc_out
        return out

    def _find(self, obj_type: str, obj_id: str, *, archived: bool = False) -> Record | None:
        rec = self.state.get(obj_type, obj_id)
        if rec is None or rec.archived != archived:
            if rec is not None and rec.archived and not archived and obj_type == "contacts":
                survivor = self.state.merged_into.get(rec.id)
                if survivor is not None:
                    return self._find(obj_type, str(survivor))
            return None
        return rec

    @staticmethod
    def _not_found(obj_id: str) -> ApiError:
        return ApiError(
            404,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
            context={"id": [obj_id]},
        )

    def _link(self, base: str, after: str) -> dict[str, Any]:
        return {"next": {"after": after, "link": f"{self.base_url}{base}?after={after}"}}

    @staticmethod
    def _batch(results: list[Any], errors: list[dict[str, Any]], started: str) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return Response(207, body)
        return Response(200, body)

    @staticmethod
    def _item_error(
        category: str, message: str, context: dict[str, list[str]], **extra: Any
    ) -> dict:
        return {
            "status": "error",
            "category": category,
            "message": message,
            "context": context,
            **extra,
        }

    def _validate_associations(self, obj_type: str, raw: Any) -> list[tuple[str, int, int, str]]:
        """Inline `associations` of a create -> [(to type, to id, type id, category)]."""
        out = []
        for item in raw or []:
            try:
                to_id = str(item["to"]["id"])
                types = item["types"]
            except (KeyError, TypeError) as exc:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"Invalid association input: {item}"
                ) from exc
            for spec in types:
                category = spec.get("associationCategory", "HUBSPOT_DEFINED")
                type_id = spec.get("associationTypeId")
                pair = schema.ASSOCIATION_TYPES.get(type_id) if isinstance(type_id, int) else None
                if category != "HUBSPOT_DEFINED" or pair is None or pair[0] != obj_type:
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"Association type {category}/{type_id} is not valid from {obj_type}.",
                    )
                target = self.state.get(pair[1], to_id)
                if target is None or target.archived:
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"One or more associations are invalid: {pair[1]} {to_id} does not exist.",
                    )
                out.append((pair[1], target.id, type_id, category))
        return out

    def _prepare_create(
        self, obj_type: str, item: Any
    ) -> tuple[dict[str, str | None], list[tuple[str, int, int, str]]]:
        if not isinstance(item, dict) or not isinstance(item.get("properties", {}), dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input: properties must be an object")
        values, errors = self.state.validate(obj_type, item.get("properties") or {})
        for name in schema.REQUIRED_ON_CREATE.get(obj_type, ()):
            if not values.get(name) and not any(e["name"] == name for e in errors):
                errors.append(
                    {
                        "isValid": False,
                        "message": f'Missing required property "{name}"',
                        "error": "REQUIRED_PROPERTY",
                        "name": name,
                    }
                )
        if errors:
            raise validation_error(errors)
        email = values.get("email")
        if obj_type == "contacts" and email:
            existing = self.state.email_index.get(email.lower())
            if existing is not None:
                raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
        assoc = self._validate_associations(obj_type, item.get("associations"))
        return values, assoc

    def _do_create(
        self,
        obj_type: str,
        values: dict[str, str | None],
        assoc: list[tuple[str, int, int, str]],
        now: int,
    ) -> Record:
        create_prop = schema.CREATE_DATE_PROPERTY[obj_type]
        stamp = values.get(create_prop)
        created = parse_ms(stamp) if stamp else None
        rec = self.state.add(obj_type, dict(values), created or now, now)
        history.record(
            self.state,
            obj_type,
            rec,
            {n: v for n, v in values.items() if v is not None},
            now,
            history.api_source(),
            created=True,
        )
        for to_type, to_id, type_id, category in assoc:
            self.state.associate(obj_type, rec.id, to_type, to_id, type_id, category)
        self._after_write(rec, now, created=True)
        for to_type, to_id, _, _ in assoc:
            self.roll_up(obj_type, rec, to_type, to_id, now)
        return rec

    def roll_up(self, eng_type: str, eng: Record, to_type: str, to_id: int | str, now: int) -> None:
        """A call, meeting, e-mail or note associated with a contact moves the contact's activity
        roll-ups, as HubSpot's own calculation does: the last activity date, the last meeting
        booked, the last sales e-mail reply."""
        if to_type != "contacts" or eng_type not in ROLLED_UP_ENGAGEMENTS:
            return
        contact = self.state.get("contacts", to_id)
        if contact is None:
            return
        when = iso_ms(parse_ms(eng.props.get("hs_timestamp") or "") or now)
        values: dict[str, str | None] = {}
        if (contact.props.get("notes_last_updated") or "") < when:
            values["notes_last_updated"] = when
        if eng_type == "meetings":
            values["engagements_last_meeting_booked"] = iso_ms(now)
        if eng_type == "emails" and eng.props.get("hs_email_direction") == "INCOMING_EMAIL":
            values["hs_sales_email_last_replied"] = when
        changes = {k: v for k, v in values.items() if contact.props.get(k) != v}
        if changes:
            history.record(self.state, "contacts", contact, changes, now, CALCULATED)
            self.state.set_props("contacts", contact, changes)
            self.state.touch("contacts", contact, now, self._lag_ms())

    def _apply_update(
        self, obj_type: str, rec: Record, values: dict[str, str | None], now: int
    ) -> None:
        changes = {n: v for n, v in values.items() if rec.props.get(n) != v}
        history.record(self.state, obj_type, rec, changes, now, history.api_source())
        if self.state.set_props(obj_type, rec, values):
            self.state.touch(obj_type, rec, now, self._lag_ms())

    def _inputs(self, body: Any, limit: int = BATCH_MAX) -> list[Any]:
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input: inputs must be a list")
        if len(inputs) > limit:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Batch input of size {len(inputs)} exceeds the limit of {limit} inputs.",
            )
        return inputs
