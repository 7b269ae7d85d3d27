"""HubSpot -> canonical tables (scoring.contract), plus `HubSpotConnector`, the CrmConnector.

Each record is validated on its own (pydantic row models); a record that cannot be mapped (no id,
a bad date, a non-numeric number) goes to the quarantine frame with a reason and is counted, never
crashing the run and never silently dropped. Non-fatal oddities (an unparseable free-text birthday,
an activity without a contact) are counted in `ExtractResult.warnings`.

Mapping notes:
- contacts: HubSpot roll-ups (form submissions, page views, marketing email opens/clicks) become
  one `is_rollup` activity each at the last date, id `rollup:{type}:{contact_id}` (stable across
  runs), with the counter in contact columns `<type>_count`.
- activities: `activity_id` is `"{kind}:{hubspot_id}:{contact_id}"` (kind = call, email, meeting,
  note, task), unique within a portal even when one engagement is associated with several
  contacts; the raw HubSpot id is in the extra column `crm_id`, the object type in `crm_type`.
- notes whose body starts with a bracketed tag of a canonical type ("[complaint] ...",
  "[sms inbound] ...") become that type; the tag set is `HubSpotSettings.note_tags`.
- deals: one row per (deal, associated contact); status from pipeline stage metadata.
- archived contacts (listed with archived=true on every extract) and merged-away ids (from
  survivors' `hs_merged_object_ids`) are returned in `removed_contact_ids` and never emitted.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ValidationError, field_validator

from connectors.base import (
    OWN_TASK_COLUMNS,
    QUARANTINE_COLUMNS,
    CheckItem,
    CheckReport,
    ExtractResult,
    PortalInfo,
    RequestStats,
    TaskReport,
    WriteReport,
    empty_own_tasks,
)
from connectors.http import (
    AuthError,
    ConnectorError,
    NotFoundError,
    PermissionDeniedError,
    TransientError,
    UnreachableError,
    log,
    redact,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.models import HubSpotObject, Pipeline
from connectors.hubspot.settings import (
    ACTIVITY_OBJECTS,
    ACTIVITY_PROPERTIES,
    CALL_DISPOSITIONS,
    CALL_STATUS_OUTCOMES,
    CONTACT_PROPERTIES,
    CONTACTS,
    CURSOR_OBJECTS,
    DEAL_PROPERTIES,
    DEALS,
    FIELD_PROPERTIES,
    MEETING_OUTCOMES,
    OFFLINE_DRILLDOWN,
    OPTIONAL_SCOPES,
    REQUIRED_SCOPES,
    SOURCE_MAP,
    TASK_KEY_PROPERTY,
    TASKS,
    UPDATED_AT_PROPERTY,
    HubSpotSettings,
)
from scoring import contract

_T = TypeVar("_T")
TEXT_MAX = 500
ROLLUP_COUNT_COLUMNS = {
    "form_submission_count": "float",
    "page_view_count": "float",
    "web_session_count": "float",
    "email_open_count": "float",
    "email_click_count": "float",
}
ACTIVITY_EXTRA = {"crm_id": "str", "crm_type": "str"}
ACTIVITY_KIND = {
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": "task",
}

# --------------------------------------------------------------------------------------------
# Value parsers (raise ValueError with a short reason)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_ts(value: Any) -> datetime | None:
    """ISO 8601 (with or without zone; date-only) or epoch milliseconds -> aware UTC datetime."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d{9,}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text) / 1000.0, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a timestamp: {text[:40]!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_num(value: Any) -> float | None:
    if _blank(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"not a number: {str(value)[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {value!r}")
    return number


_BIRTHDAY_FORMATS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), ("d", "m", "y")),
    (re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^--(\d{1,2})-(\d{1,2})$"), ("m", "d")),
    (re.compile(r"^(\d{1,2})-(\d{1,2})$"), ("m", "d")),
)


def parse_birthday(value: Any) -> date | None:
    """Parse HubSpot's free-text `date_of_birth`; unknown year -> contract.BIRTHDAY_UNKNOWN_YEAR.

    Raises ValueError when the text is present but unparseable.
    """
    if _blank(value):
        return None
    text = str(value).strip()
    if re.fullmatch(r"-?\d{9,}", text):  # some portals store epoch ms in it
        return datetime.fromtimestamp(int(text) / 1000.0, tz=UTC).date()
    for pattern, order in _BIRTHDAY_FORMATS:
        match = pattern.match(text)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
            return date(parts.get("y", contract.BIRTHDAY_UNKNOWN_YEAR), parts["m"], parts["d"])
    raise ValueError(f"unparseable birthday {text[:40]!r}")


def _ts_validator(value: Any) -> datetime | None:
    return parse_ts(value)


def _num_validator(value: Any) -> float | None:
    return parse_num(value)


Ts = Annotated[datetime | None, BeforeValidator(_ts_validator)]
Num = Annotated[float | None, BeforeValidator(_num_validator)]


def _clip(text: str | None, limit: int = TEXT_MAX) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strip_html(text: str | None) -> str | None:
    if text is None:
        return None
    if "<" in text:
        text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


# --------------------------------------------------------------------------------------------
# Row models (validation record by record)


class _Row(BaseModel):
    model_config = {"extra": "allow"}


class ContactRow(_Row):
    contact_id: str
    created_at: Ts
    owner_id: str | None = None
    current_score: Num = None
    current_touches_30d: Num = None
    current_next_touch_due: Ts = None
    current_updated_at: Ts = None
    form_submission_count: Num = None
    page_view_count: Num = None
    web_session_count: Num = None
    email_open_count: Num = None
    email_click_count: Num = None

    @field_validator("contact_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("missing id")
        return value

    @field_validator("created_at")
    @classmethod
    def _created(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("missing createdate")
        return value


class ActivityRow(_Row):
    crm_id: str
    occurred_at: Ts
    type: str
    duration_s: Num = None

    @field_validator("occurred_at")
    @classmethod
    def _when(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("missing timestamp")
        return value


class DealRow(_Row):
    deal_id: str
    created_at: Ts
    closed_at: Ts = None
    amount: Num = None
    stage_probability: Num = None

    @field_validator("created_at")
    @classmethod
    def _created(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("missing createdate")
        return value


def _field(name: str, parser: Callable[[Any], _T], value: Any) -> _T:
    """Run a parser, naming the property in the error."""
    try:
        return parser(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())) or "record"
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        return redact("; ".join(parts))[:500]
    return redact(str(exc))[:500]


# --------------------------------------------------------------------------------------------
# The connector


class HubSpotConnector:
    """connectors.base.CrmConnector for one HubSpot portal."""

    crm = "hubspot"

    def __init__(self, settings: HubSpotSettings, *, client: HubSpotClient | None = None) -> None:
        self.settings = settings
        self.client = client or HubSpotClient(settings)
        self.stats: RequestStats = self.client.stats
        self._portal: PortalInfo | None = None
        self._note_tag = re.compile(
            r"^\s*\[\s*([A-Za-z_]+)(?:\s+(inbound|outbound))?\s*\]\s*(.*)$", re.S | re.I
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"HubSpotConnector(portal={s.portal!r}, base_url={s.base_url!r})"

    # -- portal ------------------------------------------------------------------------------
    def portal_info(self) -> PortalInfo:
        """Portal id, IANA time zone and company currency (cached per connector)."""
        if self._portal is None:
            details = self.client.account_details()
            self._portal = PortalInfo(
                portal_id=str(details.portalId),
                time_zone=details.timeZone or "UTC",
                currency=details.companyCurrency,
            )
        return self._portal

    # -- check -------------------------------------------------------------------------------
    def check(self, locale: str) -> CheckReport:
        """Check base URL, credentials, account, scopes and heatsync's properties; write nothing.

        Items, in order: "base URL", "credentials" (the portal id is the report's account id),
        "time zone", "currency", "scope <name>" for each REQUIRED_SCOPES entry (read scopes by a
        read of one record, write scopes by HubSpot's token introspection) and OPTIONAL_SCOPES
        entry (missing: a warning), then "group heatsync (<object>)" and "field <name>" for each
        property heatsync owns (writeback.check_schema). Refused credentials end the report after
        their item. Never raises for an unreachable server, a 401 or a 403: they become failed
        items with the error's one-line message.
        """
        from connectors.hubspot import writeback

        items: list[CheckItem] = []
        base_url = self.settings.base_url.rstrip("/")
        credential = (
            "OAuth app" if self.settings.oauth is not None else "private app token or service key"
        )

        def report(account_id: str | None) -> CheckReport:
            return CheckReport(crm=self.crm, account_id=account_id, items=tuple(items))

        account_id: str | None = None
        try:
            details = self.client.account_details()
        except UnreachableError as exc:
            items.append(CheckItem("base URL", False, redact(exc)))
            return report(None)
        except PermissionDeniedError as exc:  # accepted, but not allowed to read the account
            items.append(CheckItem("base URL", True, f"HubSpot answers at {base_url}"))
            items.append(CheckItem("credentials", True, f"accepted ({credential})"))
            items.append(CheckItem("time zone", False, redact(exc)))
        except AuthError as exc:
            items.append(CheckItem("base URL", True, f"HubSpot answers at {base_url}"))
            items.append(CheckItem("credentials", False, redact(exc)))
            return report(None)
        except TransientError as exc:
            items.append(
                CheckItem("base URL", False, redact(f"HubSpot at {base_url} fails: {exc}"))
            )
            return report(None)
        except (ConnectorError, ValidationError) as exc:
            text = exc if isinstance(exc, ConnectorError) else "unexpected account details"
            detail = (
                f"{base_url} does not answer like HubSpot's API ({text}) — check "
                "HUBSPOT_BASE_URL (HubSpot's is https://api.hubapi.com)"
            )
            items.append(CheckItem("base URL", False, redact(detail)))
            return report(None)
        else:
            account_id = str(details.portalId)
            if self._portal is None:
                self._portal = PortalInfo(
                    portal_id=account_id,
                    time_zone=details.timeZone or "UTC",
                    currency=details.companyCurrency,
                )
            items.append(CheckItem("base URL", True, f"HubSpot answers at {base_url}"))
            detail = f"accepted ({credential}) for HubSpot account {account_id}"
            items.append(CheckItem("credentials", True, detail))
            items.extend(self._check_account(details.timeZone, details.companyCurrency))

        granted, hub_id, unknown = self._granted_scopes()
        if account_id is None and hub_id is not None:
            account_id = hub_id
        items.extend(self._check_scopes(granted, unknown))
        try:
            items.extend(
                writeback.check_schema(self.client, locale, vip_property=self.settings.vip_property)
            )
        except ConnectorError as exc:
            detail = redact(f"cannot read heatsync's fields: {exc}")
            items.append(CheckItem("fields", False, detail))
        return report(account_id)

    @staticmethod
    def _check_account(time_zone: str | None, currency: str | None) -> list[CheckItem]:
        items: list[CheckItem] = []
        if not time_zone:
            detail = "HubSpot gives no time zone: heatsync counts days in UTC"
            items.append(CheckItem("time zone", True, detail, warning=True))
        else:
            try:
                ZoneInfo(time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                detail = (
                    f"unknown time zone {time_zone!r}: set the account's time zone in HubSpot "
                    "(Settings > Account defaults)"
                )
                items.append(CheckItem("time zone", False, detail))
            else:
                detail = f"{time_zone}: heatsync counts days and due dates in it"
                items.append(CheckItem("time zone", True, detail))
        if currency:
            detail = f"{currency}: deal amounts without a currency of their own are in it"
            items.append(CheckItem("currency", True, detail))
        else:
            detail = "HubSpot gives no company currency: deal amounts without one stay unlabelled"
            items.append(CheckItem("currency", True, detail, warning=True))
        return items

    def _granted_scopes(self) -> tuple[set[str] | None, str | None, str]:
        """(granted scopes, hub id, why unknown) from HubSpot's token introspection (a read).

        Private app tokens (and service keys): `POST /oauth/v2/private-apps/get/access-token-info`
        with the token as `tokenKey`; OAuth: `GET /oauth/v1/access-tokens/{token}`.
        """
        try:
            if self.settings.access_token is not None:
                token = self.settings.access_token.get_secret_value()
                payload = self.client.http.request(
                    "POST",
                    "/oauth/v2/private-apps/get/access-token-info",
                    json_body={"tokenKey": token},
                )
                hub_key = "hubId"
            else:
                token = self.client._current_oauth_token()
                payload = self.client.http.request(
                    "GET", f"/oauth/v1/access-tokens/{token}", authenticated=False
                )
                hub_key = "hub_id"
        except ConnectorError as exc:
            code = f"{exc.status} {exc.category}" if exc.category else str(exc.status or "")
            why = f"HubSpot did not list this credential's scopes ({code or exc})"
            return None, None, redact(why)
        scopes = payload.get("scopes") if isinstance(payload, dict) else None
        if not isinstance(scopes, list):
            return None, None, "HubSpot's token information lists no scopes"
        hub = payload.get(hub_key)
        return {str(x) for x in scopes}, (None if hub is None else str(hub)), ""

    def _check_scopes(self, granted: set[str] | None, unknown: str) -> list[CheckItem]:
        s = self.settings
        app = "the OAuth app (then reinstall it)" if s.oauth else "the private app (or service key)"
        # Read scopes are proven by reading one record where heatsync needs them.
        probes: dict[str, tuple[str, dict[str, Any] | None]] = {
            "crm.objects.contacts.read": (s.objects_path(CONTACTS), {"limit": 1}),
            "crm.objects.deals.read": (s.objects_path(DEALS), {"limit": 1}),
            "crm.objects.owners.read": (s.owners_path, {"limit": 1}),
            "crm.schemas.contacts.read": (f"{s.properties_path(CONTACTS)}/email", None),
        }
        items: list[CheckItem] = []
        for scope, purpose in REQUIRED_SCOPES.items():
            name = f"scope {scope}"
            probe = probes.get(scope)
            if probe is not None:
                try:
                    self.client.http.request("GET", probe[0], params=probe[1])
                except NotFoundError:
                    pass  # the read was allowed; what it asked for is not there
                except ConnectorError as exc:
                    items.append(CheckItem(name, False, redact(exc)))
                    continue
                items.append(CheckItem(name, True, f"granted (a read passed), for {purpose}"))
            elif granted is None:
                detail = f"not verified: {unknown}; without it heatsync cannot write {purpose}"
                items.append(CheckItem(name, True, detail, warning=True))
            elif scope in granted:
                items.append(CheckItem(name, True, f"granted, for {purpose}"))
            else:
                detail = f"not granted: heatsync needs it for {purpose} — give {app} this scope"
                items.append(CheckItem(name, False, detail))
        for scope, purpose in OPTIONAL_SCOPES.items():
            name = f"scope {scope}"
            if granted is None:
                detail = f"optional, not verified: {unknown}; it gives heatsync {purpose}"
                items.append(CheckItem(name, True, detail, warning=True))
            elif scope in granted:
                items.append(CheckItem(name, True, f"granted (optional), for {purpose}"))
            else:
                detail = f"optional, not granted: heatsync goes without {purpose}"
                items.append(CheckItem(name, True, detail, warning=True))
        return items

    # -- extract -----------------------------------------------------------------------------
    def extract(self, cursors: dict[str, str] | None, until: datetime) -> ExtractResult:
        """Read what changed since `cursors` (None: everything) up to `until`.

        Per object type: no cursor -> list endpoint (complete, no 10k cap); a cursor -> search
        windows [cursor - overlap_s, until - search_lag_s]. Returns the new cursors.
        """
        until = parse_ts(until) or datetime.now(UTC)
        close = until - timedelta(seconds=self.settings.search_lag_s)
        cursors = dict(cursors or {})
        full = not cursors
        portal = self.settings.portal
        warnings: Counter[str] = Counter()
        quarantine: list[dict[str, Any]] = []

        def fetch(object_type: str, properties: Iterable[str]) -> tuple[list[dict[str, Any]], bool]:
            props = list(properties)
            since = parse_ts(cursors.get(object_type))
            if since is None:
                return list(self.client.list_objects(object_type, props)), True
            start = since - timedelta(seconds=self.settings.overlap_s)
            return list(self.client.search_modified(object_type, start, close, props)), False

        def objects(object_type: str, raws: list[dict[str, Any]]) -> list[HubSpotObject]:
            out = []
            for raw in raws:
                try:
                    obj = HubSpotObject.model_validate(raw)
                    if not obj.id.strip():
                        raise ValueError("missing id")
                    out.append(obj)
                except (ValidationError, ValueError) as exc:
                    quarantine.append(self._q(object_type, raw, exc))
            return out

        # contacts
        contact_raws, contacts_full = fetch(CONTACTS, self._contact_properties())
        contact_objs = objects(CONTACTS, contact_raws)
        archived_ids = [
            str(r.get("id")) for r in self.client.list_objects(CONTACTS, [], archived=True)
        ]
        merged_ids: set[str] = set()
        for obj in contact_objs:
            for mid in (obj.prop("hs_merged_object_ids") or "").split(";"):
                if mid.strip() and mid.strip() != obj.id:
                    merged_ids.add(mid.strip())
        removed = set(archived_ids) | merged_ids
        contact_rows: list[dict[str, Any]] = []
        rollups: list[dict[str, Any]] = []
        for obj in contact_objs:
            if obj.id in removed or obj.archived:
                continue
            try:
                row, acts = self._contact(obj, warnings)
            except (ValidationError, ValueError) as exc:
                quarantine.append(self._q(CONTACTS, obj, exc))
                continue
            contact_rows.append(row)
            rollups.extend(acts)
        live_contact_ids = [r["contact_id"] for r in contact_rows]

        # activities
        activity_rows: list[dict[str, Any]] = list(rollups)
        own_tasks: list[dict[str, Any]] = []
        for object_type in ACTIVITY_OBJECTS:
            raws, type_full = fetch(object_type, ACTIVITY_PROPERTIES[object_type])
            objs = objects(object_type, raws)
            if object_type == TASKS:
                own_tasks.extend(self._own_task(obj) for obj in objs if obj.prop(TASK_KEY_PROPERTY))
            mapped: list[tuple[HubSpotObject, dict[str, Any]]] = []
            for obj in objs:
                try:
                    act = self._activity(object_type, obj)
                except (ValidationError, ValueError) as exc:
                    quarantine.append(self._q(object_type, obj, exc))
                    continue
                if act is not None:
                    mapped.append((obj, act))
            links = self._links(
                object_type, [o.id for o, _ in mapped], live_contact_ids, contacts_full, type_full
            )
            kind = ACTIVITY_KIND[object_type]
            for obj, row in mapped:
                targets = [c for c in links.get(obj.id, []) if c not in removed]
                if not links.get(obj.id):
                    warnings["activity_without_contact"] += 1
                for contact_id in targets:
                    activity_rows.append(
                        {
                            **row,
                            "activity_id": f"{kind}:{obj.id}:{contact_id}",
                            "contact_id": contact_id,
                            "portal": portal,
                        }
                    )

        # deals
        deal_rows: list[dict[str, Any]] = []
        deal_raws, deals_full = fetch(DEALS, DEAL_PROPERTIES)
        deal_objs = objects(DEALS, deal_raws)
        if deal_objs:
            stages = self._stages()
            currency = self.portal_info().currency
            mapped_deals = []
            for obj in deal_objs:
                try:
                    mapped_deals.append((obj, self._deal(obj, stages, currency)))
                except (ValidationError, ValueError) as exc:
                    quarantine.append(self._q(DEALS, obj, exc))
            links = self._links(
                DEALS, [o.id for o, _ in mapped_deals], live_contact_ids, contacts_full, deals_full
            )
            for obj, row in mapped_deals:
                targets = [c for c in links.get(obj.id, []) if c not in removed]
                if not links.get(obj.id):
                    warnings["deal_without_contact"] += 1
                for contact_id in targets:
                    deal_rows.append({**row, "contact_id": contact_id, "portal": portal})

        new_cursor = close.isoformat()
        new_cursors = {t: new_cursor for t in CURSOR_OBJECTS}
        if quarantine:
            warnings["quarantined"] += len(quarantine)
            log.warning("%s: quarantined %d record(s)", portal, len(quarantine))
        return ExtractResult(
            contacts=contract.conform(pd.DataFrame(contact_rows), "contacts", ROLLUP_COUNT_COLUMNS),
            activities=self._activities_frame(activity_rows),
            deals=contract.conform(pd.DataFrame(deal_rows), "deals"),
            quarantine=pd.DataFrame(quarantine, columns=list(QUARANTINE_COLUMNS)),
            removed_contact_ids=sorted(removed, key=lambda v: (len(v), v)),
            cursors=new_cursors,
            full=full,
            warnings=dict(warnings),
            own_tasks=self._own_tasks_frame(own_tasks),
        )

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _own_task(obj: HubSpotObject) -> dict[str, Any]:
        created = parse_ts(obj.prop("hs_createdate") or obj.createdAt)
        return {"task_key": obj.prop(TASK_KEY_PROPERTY), "task_id": obj.id, "created_at": created}

    @staticmethod
    def _own_tasks_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        if not rows:
            return empty_own_tasks()
        frame = pd.DataFrame(rows, columns=list(OWN_TASK_COLUMNS))
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame.drop_duplicates("task_key", keep="first").reset_index(drop=True)

    def _contact_properties(self) -> list[str]:
        return list(dict.fromkeys([*CONTACT_PROPERTIES, self.settings.vip_property]))

    def _q(self, object_type: str, record: Any, exc: Exception) -> dict[str, Any]:
        raw = record.model_dump() if isinstance(record, BaseModel) else record
        object_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            payload = json.dumps(raw, default=str, sort_keys=True)
        except (TypeError, ValueError):
            payload = repr(raw)
        return {
            "portal": self.settings.portal,
            "object_type": object_type,
            "object_id": None if object_id in (None, "") else str(object_id),
            "reason": _reason(exc),
            "payload": redact(payload),
        }

    def _links(
        self,
        object_type: str,
        object_ids: list[str],
        contact_ids: list[str],
        contacts_full: bool,
        objects_full: bool,
    ) -> dict[str, list[str]]:
        """object id -> associated contact ids, read from whichever side needs fewer requests."""
        if not object_ids:
            return {}
        if contacts_full and objects_full and len(contact_ids) < len(object_ids):
            wanted = set(object_ids)
            out: dict[str, list[str]] = {}
            for contact_id, targets in self.client.associations(
                CONTACTS, object_type, contact_ids
            ).items():
                for target in targets:
                    if target in wanted:
                        out.setdefault(target, []).append(contact_id)
            return out
        return self.client.associations(object_type, CONTACTS, object_ids)

    def _stages(self) -> dict[str, tuple[str, float | None, bool]]:
        """stage id -> (label, probability, is_closed); also keyed "pipeline:stage"."""
        out: dict[str, tuple[str, float | None, bool]] = {}
        pipelines: list[Pipeline] = self.client.pipelines()
        for pipeline in pipelines:
            for stage in pipeline.stages:
                value = (stage.label, stage.metadata.prob(), stage.metadata.closed())
                out.setdefault(stage.id, value)
                out[f"{pipeline.id}:{stage.id}"] = value
        return out

    def _contact(
        self, obj: HubSpotObject, warnings: Counter[str]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        p = obj.prop
        name = " ".join(x for x in (p("firstname"), p("lastname")) if x) or None
        source_raw = p("hs_analytics_source")
        source = SOURCE_MAP.get(source_raw.upper(), "other") if source_raw else None
        if source == "offline":
            drill = (p("hs_analytics_source_data_1") or "").upper()
            source = OFFLINE_DRILLDOWN.get(drill, "offline")
        try:
            birthday = parse_birthday(p("date_of_birth"))
        except ValueError:
            birthday = None
            warnings["birthday_unparsed"] += 1
        optout = (p("hs_email_optout") or "").lower() == "true"
        raw = {
            "contact_id": obj.id,
            "portal": self.settings.portal,
            "created_at": p("createdate") or obj.createdAt,
            "owner_id": p("hubspot_owner_id"),
            "name": name,
            "email": p("email"),
            "phone": p("phone"),
            "source": source,
            "lifecycle_stage": p("lifecyclestage"),
            "birthday": birthday,
            "do_not_contact": optout,
            "is_vip": (p(self.settings.vip_property) or "").lower() == "true",
            "current_temperature": p(FIELD_PROPERTIES["temperature"]),
            "current_score": p(FIELD_PROPERTIES["score"]),
            "current_segment": p(FIELD_PROPERTIES["segment"]),
            "current_reasons": p(FIELD_PROPERTIES["reasons"]),
            "current_trend": p(FIELD_PROPERTIES["trend"]),
            "current_next_touch_due": p(FIELD_PROPERTIES["next_touch_due"]),
            "current_touches_30d": p(FIELD_PROPERTIES["touches_30d"]),
            "current_updated_at": p(UPDATED_AT_PROPERTY),
            "form_submission_count": p("num_conversion_events"),
            "page_view_count": p("hs_analytics_num_page_views"),
            "web_session_count": p("hs_analytics_num_visits"),
            "email_open_count": p("hs_email_open"),
            "email_click_count": p("hs_email_click"),
        }
        row = ContactRow.model_validate(raw).model_dump()
        for day_col in ("current_next_touch_due", "current_updated_at"):
            if row[day_col] is not None:
                row[day_col] = row[day_col].replace(tzinfo=None)
        # roll-ups -> one activity each at the last date
        specs: list[tuple[str, str, str | None]] = [
            (
                "form_submission",
                "recent_conversion_date",
                p("message") or p("recent_conversion_event_name"),
            ),
            ("page_view", "hs_analytics_last_timestamp", None),
            ("web_session", "hs_analytics_last_visit_timestamp", None),
            ("email_open", "hs_email_last_open_date", None),
            ("email_click", "hs_email_last_click_date", None),
        ]
        if optout:
            specs.append(("unsubscribe", "hs_email_optout_date", None))
        acts: list[dict[str, Any]] = []
        for kind, date_prop, text in specs:
            when = _field(date_prop, parse_ts, p(date_prop))
            if when is None:
                continue
            acts.append(
                {
                    "activity_id": f"rollup:{kind}:{obj.id}",
                    "contact_id": obj.id,
                    "portal": self.settings.portal,
                    "occurred_at": when,
                    "type": kind,
                    "direction": "inbound",
                    "text": _clip(text),
                    "is_rollup": True,
                    "crm_id": obj.id,
                    "crm_type": CONTACTS,
                }
            )
        return row, acts

    def _activity(self, object_type: str, obj: HubSpotObject) -> dict[str, Any] | None:
        p = obj.prop
        row: dict[str, Any] = {
            "crm_id": obj.id,
            "crm_type": object_type,
            "occurred_at": p("hs_timestamp") or obj.createdAt,
            "direction": None,
            "outcome": None,
            "duration_s": None,
            "text": None,
            "is_rollup": False,
        }
        if object_type == "calls":
            row["type"] = "call"
            direction = (p("hs_call_direction") or "").upper()
            row["direction"] = {"INBOUND": "inbound", "OUTBOUND": "outbound"}.get(direction)
            outcome = CALL_DISPOSITIONS.get((p("hs_call_disposition") or "").lower())
            if outcome is None:
                outcome = CALL_STATUS_OUTCOMES.get((p("hs_call_status") or "").upper())
            row["outcome"] = outcome
            duration_ms = _field("hs_call_duration (duration_s)", parse_num, p("hs_call_duration"))
            row["duration_s"] = None if duration_ms is None else duration_ms / 1000.0
            row["text"] = _clip(_strip_html(p("hs_call_body") or p("hs_call_title")))
        elif object_type == "emails":
            direction = (p("hs_email_direction") or "").upper()
            if (p("hs_email_status") or "").upper() == "BOUNCED":
                row["type"], row["direction"] = "email_bounce", "outbound"
            elif direction == "INCOMING_EMAIL":
                row["type"], row["direction"] = "email_reply", "inbound"
            else:
                row["type"], row["direction"] = "email_sent", "outbound"
            subject, body = p("hs_email_subject"), _strip_html(p("hs_email_text"))
            row["text"] = _clip(" — ".join(x for x in (subject, body) if x) or None)
        elif object_type == "meetings":
            row["type"] = "meeting"
            row["occurred_at"] = p("hs_meeting_start_time") or row["occurred_at"]
            row["outcome"] = MEETING_OUTCOMES.get((p("hs_meeting_outcome") or "").upper())
            start = _field("hs_meeting_start_time", parse_ts, p("hs_meeting_start_time"))
            end = _field("hs_meeting_end_time", parse_ts, p("hs_meeting_end_time"))
            if start and end and end >= start:
                row["duration_s"] = (end - start).total_seconds()
            title, body = p("hs_meeting_title"), _strip_html(p("hs_meeting_body"))
            row["text"] = _clip(" — ".join(x for x in (title, body) if x) or None)
        elif object_type == "notes":
            body = _strip_html(p("hs_note_body"))
            row["type"], row["text"] = "note", _clip(body)
            match = self._note_tag.match(body or "")
            if match and match.group(1).lower() in self.settings.note_tags:
                row["type"] = match.group(1).lower()
                row["direction"] = match.group(2).lower() if match.group(2) else None
                row["text"] = _clip(match.group(3)) or None
        elif object_type == "tasks":
            if p(TASK_KEY_PROPERTY) or (p("hs_task_status") or "").upper() != "COMPLETED":
                return None  # heatsync's own tasks and open tasks are not contact activity
            row["type"] = "task_completed"
            row["occurred_at"] = p("hs_task_completion_date") or row["occurred_at"]
            row["text"] = _clip(p("hs_task_subject"))
        else:  # pragma: no cover - guarded by ACTIVITY_OBJECTS
            raise ValueError(f"unknown activity object {object_type}")
        return ActivityRow.model_validate(row).model_dump()

    def _deal(
        self,
        obj: HubSpotObject,
        stages: dict[str, tuple[str, float | None, bool]],
        currency: str | None,
    ) -> dict[str, Any]:
        p = obj.prop
        stage_id = p("dealstage")
        meta = stages.get(f"{p('pipeline')}:{stage_id}") or stages.get(stage_id or "")
        label, prob, closed = meta if meta else (stage_id, None, False)
        if closed and prob is not None and prob >= 1.0:
            status = "won"
        elif closed and (prob is None or prob <= 0.0):
            status = "lost"
        else:
            status = "open"
        raw = {
            "deal_id": obj.id,
            "created_at": p("createdate") or obj.createdAt,
            "closed_at": p("closedate") if status != "open" else None,
            "status": status,
            "stage": label,
            "stage_probability": prob,
            "amount": p("amount"),
            "currency": p("deal_currency_code") or currency,
        }
        return DealRow.model_validate(raw).model_dump()

    @staticmethod
    def _activities_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        frame = contract.conform(pd.DataFrame(rows), "activities", ACTIVITY_EXTRA)
        if len(frame):
            frame = frame.drop_duplicates(subset=["portal", "activity_id"], keep="last")
        return frame.reset_index(drop=True)

    # -- write-back (connectors.hubspot.writeback) ---------------------------------------------
    def ensure_schema(self, locale: str) -> list[str]:
        from connectors.hubspot import writeback

        return writeback.ensure_schema(self.client, locale, vip_property=self.settings.vip_property)

    def write_fields(self, updates: pd.DataFrame, skip_ids: Iterable[str] = ()) -> WriteReport:
        from connectors.hubspot import writeback

        return writeback.write_fields(
            self.client, updates, skip_ids=skip_ids, rounds=self.settings.write_retry_rounds
        )

    def find_tasks(self, task_keys: dict[str, str]) -> dict[str, str]:
        from connectors.hubspot import writeback

        return writeback.find_tasks(self.client, task_keys)

    def create_tasks(self, tasks: pd.DataFrame) -> TaskReport:
        from connectors.hubspot import writeback

        return writeback.create_tasks(
            self.client,
            tasks,
            attempts=self.settings.create_attempts,
            reconcile_wait_s=self.settings.reconcile_wait_s,
        )
