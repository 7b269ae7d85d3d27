"""Write heatsync's results back to amoCRM: contact fields, their values, follow-up tasks.

- `ensure_schema`: heatsync's contact fields, found by `code`, created once (one POST of every
  missing field, ≤ 50) with `is_api_only` (reps see them, only the API writes them), select enums
  with codes (temperature cold/warm/hot, the segments, the trend), names in the locale (ru, en,
  lv). A field whose name, enums or flag drifted from the locale's gets one PATCH (enums sent as
  the complete list, existing ones with their ids). A second run sends no write. amoCRM fields
  carry no description, so the descriptions live in the README (and in `check`).
- `write_fields`: only the changed heatsync fields of each contact (never its other fields, never
  PHONE/EMAIL), `PATCH /api/v4/contacts` in batches ≤ 50 with `request_id` = contact id. amoCRM
  rejects a whole batch for one invalid element (400 `validation-errors`): the elements it names
  are reported failed and the rest sent again; an error naming none is bisected, so one bad
  record never loses the others.
- Tasks: amoCRM has no idempotency key, so each task's text ends with heatsync's marker
  (`connectors.amocrm.markers`, `[hs:<rule>:<period>:<hash>]`). `create_tasks` first looks for
  the markers among the contact's tasks (open and recent, `find_tasks`) and creates only what is
  missing. A create whose outcome is unknown (5xx, dropped connection, timeout) is never sent
  again blindly: after a pause, the contacts' tasks are read again and only the still missing
  ones are created (bounded attempts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from connectors.amocrm.labels import label
from connectors.amocrm.markers import markers_in, task_marker
from connectors.amocrm.models import CustomField, TaskType
from connectors.amocrm.settings import (
    FIELD_CODES,
    FOLLOW_UP_TASK_TYPE_ID,
    REASONS_MAX_CHARS,
    UPDATED_AT_CODE,
)
from connectors.base import (
    CheckItem,
    TaskReport,
    WriteReport,
    changed_fields_of,
)
from connectors.base import is_missing as _missing
from connectors.http import ConnectorError, RequestError, TransientError, log, redact
from scoring import contract

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector

VIP_CODE = "HEATSYNC_VIP"
SELECT_OPTIONS = {
    "temperature": contract.TEMPERATURES,
    "segment": contract.SEGMENTS,
    "trend": contract.TRENDS,
}
FIELD_TYPES = {
    "temperature": "select",
    "score": "numeric",
    "segment": "select",
    "reasons": "textarea",
    "trend": "select",
    "next_touch_due": "date",
    "touches_30d": "numeric",
}


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------
# Schema


def field_specs(locale: str, *, with_vip: bool) -> list[dict[str, Any]]:
    """The POST body of every contact field heatsync owns, in `locale`."""
    specs: list[dict[str, Any]] = []
    for sort, (name, code) in enumerate(FIELD_CODES.items()):
        spec: dict[str, Any] = {
            "name": label(locale, code.lower()),
            "type": FIELD_TYPES[name],
            "code": code,
            "sort": 900 + sort,
            "is_api_only": True,
        }
        if name in SELECT_OPTIONS:
            spec["enums"] = [
                {"value": label(locale, f"{name}.{value}"), "sort": (i + 1) * 10, "code": value}
                for i, value in enumerate(SELECT_OPTIONS[name])
            ]
        specs.append(spec)
    specs.append(
        {
            "name": label(locale, UPDATED_AT_CODE.lower()),
            "type": "date",
            "code": UPDATED_AT_CODE,
            "sort": 900 + len(specs),
            "is_api_only": True,
        }
    )
    if with_vip:  # the team sets it: not API-only
        specs.append(
            {
                "name": label(locale, VIP_CODE.lower()),
                "type": "checkbox",
                "code": VIP_CODE,
                "sort": 900 + len(specs),
                "is_api_only": False,
            }
        )
    return specs


def _by_code(fields: Iterable[CustomField]) -> dict[str, CustomField]:
    return {f.code.upper(): f for f in fields if f.code}


def _has_vip(conn: AmoCrmConnector, fields: list[CustomField]) -> bool:
    wanted = [str(n).strip().lower() for n in conn.settings.vip_fields]
    for f in fields:
        if (f.code or "").lower() == VIP_CODE.lower():
            return False  # heatsync's own: managed below like the others
        if str(f.id) in wanted or (f.code or "").lower() in wanted or f.name.lower() in wanted:
            return True
    return False


def _drift(current: CustomField, spec: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body bringing `current` to `spec` (empty when nothing drifted)."""
    patch: dict[str, Any] = {}
    if current.name != spec["name"]:
        patch["name"] = spec["name"]
    if bool(current.is_api_only) != spec["is_api_only"]:
        patch["is_api_only"] = spec["is_api_only"]
    if "enums" in spec:
        have = {(e.code or "").lower(): e for e in current.enums or []}
        want = {e["code"]: e for e in spec["enums"]}
        same = set(have) == set(want) and all(
            have[c].value == want[c]["value"] and have[c].sort == want[c]["sort"] for c in want
        )
        if not same:
            enums = []
            for code, enum in want.items():
                entry = dict(enum)
                if code in have:
                    entry["id"] = have[code].id
                enums.append(entry)
            # an enum heatsync does not know (added by hand) is kept, at the end
            extra = [e for c, e in have.items() if c not in want]
            enums.extend({"id": e.id, "value": e.value, "sort": e.sort} for e in extra)
            patch["enums"] = enums
    return patch


def ensure_schema(conn: AmoCrmConnector, locale: str) -> list[str]:
    """Create heatsync's contact fields where missing; return the codes created.

    Existing ones whose name, enums or is_api_only differ from `locale`'s get one PATCH; nothing
    is sent for those already equal."""
    client = conn.client
    fields = client.custom_fields("contacts")
    specs = field_specs(locale, with_vip=not _has_vip(conn, fields))
    have = _by_code(fields)
    wanted = [s["code"] for s in specs if s["code"] not in have]
    for attempt in range(conn.settings.create_attempts + 1):
        missing = [s for s in specs if s["code"] not in have]
        if not missing:
            break
        if attempt == conn.settings.create_attempts:
            codes = ", ".join(s["code"] for s in missing)
            raise ConnectorError(f"could not create heatsync's amoCRM fields {codes}")
        try:
            # not retried blindly: a create whose answer was lost is looked up, not repeated
            for part in chunks(missing, conn.settings.batch_size):
                client.request(
                    "POST",
                    "/api/v4/contacts/custom_fields",
                    json_body=list(part),
                    write=True,
                    idempotent=False,
                )
        except (TransientError, RequestError) as exc:
            if isinstance(exc, RequestError) and "NotUnique" not in str(exc):
                raise
            log.warning("amoCRM field create ambiguous (%s); looking again", redact(exc))
            time.sleep(conn.settings.reconcile_wait_s)
        fields = client.custom_fields("contacts")
        have = _by_code(fields)
    created = [c for c in wanted if c in have]
    patches = []
    for spec in specs:
        current = have.get(spec["code"])
        if current is None or current.type != spec["type"]:
            continue
        patch = _drift(current, spec)
        if patch:
            log.info("amoCRM: updating field %s: %s drifted", spec["code"], sorted(patch))
            patches.append({"id": current.id, **patch})
    for part in chunks(patches, conn.settings.batch_size):
        client.request("PATCH", "/api/v4/contacts/custom_fields", json_body=list(part), write=True)
    conn.forget_fields()
    return created


def check_schema(conn: AmoCrmConnector, locale: str) -> list[CheckItem]:
    """One item per field heatsync owns, read only: missing (warning: created on the first run),
    another type (not ok), name/enums/flag drift (warning: updated on the next run)."""
    fields = conn.client.custom_fields("contacts")
    have = _by_code(fields)
    items: list[CheckItem] = []
    for spec in field_specs(locale, with_vip=not _has_vip(conn, fields)):
        name = f"field {spec['code']}"
        current = have.get(spec["code"])
        if current is None:
            detail = f"missing: heatsync creates it ({spec['type']}) on its first run"
            items.append(CheckItem(name, True, detail, warning=True))
        elif current.type != spec["type"]:
            detail = (
                f"is {current.type} but heatsync writes {spec['type']}: delete the field in "
                "amoCRM (Settings > Fields) so that heatsync creates it again"
            )
            items.append(CheckItem(name, False, detail))
        elif _drift(current, spec):
            what = ", ".join(sorted(_drift(current, spec)))
            detail = f"present ({current.type}); its {what} will be updated to the {locale!r} texts"
            items.append(CheckItem(name, True, detail, warning=True))
        else:
            items.append(CheckItem(name, True, f"present ({current.type}), {current.name!r}"))
    return items


# --------------------------------------------------------------------------------------------
# Field values


def local_midnight(day: date, tz: ZoneInfo) -> int:
    """Unix seconds of 00:00 of `day` in the account's time zone (how amoCRM stores dates)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def _as_day(value: Any) -> date:
    if isinstance(value, str):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp | datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        day: date = value.date()
        return day
    if isinstance(value, date):
        return value
    raise ValueError(f"not a date: {value!r}")


def render_values(
    name: str, value: Any, field: CustomField, tz: ZoneInfo
) -> list[dict[str, Any]] | None:
    """A canonical value as amoCRM `values` (None clears the field)."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if name in SELECT_OPTIONS:
        code = str(value).strip().lower()
        for enum in field.enums or []:
            if (enum.code or "").lower() == code:
                return [{"enum_id": enum.id}]
        raise ValueError(f"{name}: {value!r} is not one of heatsync's options")
    if name in ("score", "touches_30d"):
        number = float(value)
        if math.isnan(number):
            return None
        return [{"value": str(round(number))}]
    if name == "next_touch_due":
        return [{"value": local_midnight(_as_day(value), tz)}]
    if name == "reasons":
        text = str(value)
        if len(text) > REASONS_MAX_CHARS:
            text = text[: REASONS_MAX_CHARS - 1] + "…"
        return [{"value": text}]
    return [{"value": str(value)}]


def _named_failures(exc: ConnectorError) -> dict[str, str]:
    """request_id -> reason for the elements a 400 `validation-errors` answer names."""
    body = exc.body if isinstance(exc.body, dict) else {}
    out: dict[str, str] = {}
    for item in body.get("validation-errors") or []:
        if not isinstance(item, dict):
            continue
        reasons = [
            f"{e.get('code')} at {e.get('path')}: {e.get('detail')}"
            for e in item.get("errors") or []
            if isinstance(e, dict)
        ]
        out[str(item.get("request_id"))] = redact("; ".join(reasons) or "rejected")[:500]
    return out


def send_batch(
    conn: AmoCrmConnector,
    method: str,
    path: str,
    items: list[dict[str, Any]],
    *,
    idempotent: bool,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Send one batch (each item with a `request_id`); returns (answers, failed request ids).

    A 400 rejecting the whole batch: the named elements fail, the others are sent again; an
    answer naming none is bisected down to single elements."""
    try:
        payload = conn.client.request(
            method, path, json_body=items, write=True, idempotent=idempotent
        )
    except RequestError as exc:
        if exc.status not in (400, 422):
            raise
        named = _named_failures(exc)
        ours = {str(i["request_id"]) for i in items}
        failed = {rid: why for rid, why in named.items() if rid in ours}
        rest = [i for i in items if str(i["request_id"]) not in failed]
        if failed and rest:
            answers, more = send_batch(conn, method, path, rest, idempotent=idempotent)
            return answers, {**failed, **more}
        if failed:
            return [], failed
        if len(items) == 1:
            return [], {str(items[0]["request_id"]): redact(str(exc))[:500]}
        half = len(items) // 2
        left, lf = send_batch(conn, method, path, items[:half], idempotent=idempotent)
        right, rf = send_batch(conn, method, path, items[half:], idempotent=idempotent)
        return left + right, {**lf, **rf}
    embedded = (payload or {}).get("_embedded") or {}
    answers = next((v for v in embedded.values() if isinstance(v, list)), [])
    return answers, {}


def write_fields(
    conn: AmoCrmConnector,
    updates: pd.DataFrame,
    *,
    skip_ids: Iterable[str] = (),
    today: date | None = None,
) -> WriteReport:
    """Write the changed heatsync fields of `updates` (output of connectors.base.field_changes).

    Sets HEATSYNC_UPDATED_AT (the account's local today) on every contact written. Ids in
    `skip_ids` are never written (`report.skipped`)."""
    report = WriteReport()
    if updates is None or len(updates) == 0:
        return report
    tz = ZoneInfo(conn.portal_info().time_zone)
    fields = _by_code(conn.fields())
    missing = [c for c in (*FIELD_CODES.values(), UPDATED_AT_CODE) if c not in fields]
    if missing:
        raise ConnectorError(
            f"heatsync's amoCRM fields are missing: {', '.join(missing)}",
            hint="run ensure_schema first (heatsync run does)",
        )
    skip = {str(i) for i in skip_ids}
    stamp_day = today or datetime.now(tz).date()
    stamp = [{"value": local_midnight(stamp_day, tz)}]
    items: dict[str, dict[str, Any]] = {}
    changed: dict[str, list[str]] = {}
    for record in updates.to_dict("records"):
        contact_id = str(record["contact_id"])
        names = changed_fields_of(record)
        if not names:
            report.unchanged += 1
            continue
        if contact_id in skip:
            report.skipped.append(contact_id)
            continue
        try:
            if not contact_id.isdigit():
                raise ValueError(f"not an amoCRM contact id: {contact_id!r}")
            values = []
            for name in names:
                field = fields[FIELD_CODES[name]]
                rendered = render_values(name, record.get(name), field, tz)
                values.append({"field_id": field.id, "values": rendered})
        except (TypeError, ValueError, KeyError) as exc:
            report.failed.append({"contact_id": contact_id, "reason": redact(exc)})
            continue
        values.append({"field_id": fields[UPDATED_AT_CODE].id, "values": stamp})
        items[contact_id] = {
            "id": int(contact_id),
            "custom_fields_values": values,
            "request_id": contact_id,
        }
        changed[contact_id] = names
    report.attempted = len(items) + len(report.failed)
    report.rounds = 1 if items else 0
    for part in chunks(list(items), conn.settings.batch_size):
        batch = [items[cid] for cid in part]
        try:
            _, failed = send_batch(conn, "PATCH", "/api/v4/contacts", batch, idempotent=True)
        except ConnectorError as exc:
            if not isinstance(exc, TransientError | RequestError):
                raise  # auth, block: stop the run
            failed = {cid: redact(str(exc))[:500] for cid in part}
        for cid in part:
            if cid in failed:
                report.failed.append({"contact_id": cid, "reason": failed[cid]})
            else:
                report.written += 1
                for name in changed[cid]:
                    report.fields_changed[name] = report.fields_changed.get(name, 0) + 1
    if report.failed:
        log.warning("amoCRM field write-back: %d contact(s) failed", len(report.failed))
    return report


# --------------------------------------------------------------------------------------------
# Tasks


def find_tasks(conn: AmoCrmConnector, task_keys: dict[str, str]) -> dict[str, str]:
    """Key -> task id for heatsync tasks (open or recent) on the given contacts."""
    if not task_keys:
        return {}
    wanted: dict[tuple[str, str], str] = {}
    for key, contact in task_keys.items():
        if not _missing(contact):
            wanted[(str(contact), task_marker(str(key)))] = str(key)
    contacts = sorted({c for c, _ in wanted if c.isdigit()}, key=int)
    since = int((datetime.now(UTC) - timedelta(days=conn.settings.task_lookback_days)).timestamp())
    found: dict[str, str] = {}
    for part in chunks(contacts, conn.settings.batch_size):
        params: list[tuple[str, Any]] = [
            ("filter[entity_type]", "contacts"),
            *[("filter[entity_id][]", c) for c in part],
            ("filter[updated_at][from]", since),
        ]
        for task in conn.client.pages("/tasks", "tasks", params):
            contact = str(task.get("entity_id"))
            for mark in markers_in(str(task.get("text") or "")):
                hit = wanted.get((contact, mark))
                if hit is not None:
                    found.setdefault(hit, str(task["id"]))
    return found


def task_type_id(conn: AmoCrmConnector, kind: Any) -> int:
    """heatsync's task type (CALL, EMAIL, TODO, MEETING) -> the account's task type id."""
    types: list[TaskType] = conn.account().task_types
    names = conn.settings.task_types.get(str(kind or "TODO").upper(), ())
    for name in names:
        wanted = name.strip().lower()
        for t in types:
            if (t.code or "").lower() == wanted or t.name.strip().lower() == wanted:
                return t.id
    return FOLLOW_UP_TASK_TYPE_ID


def task_text(row: dict[str, Any]) -> str:
    subject = "" if _missing(row.get("subject")) else str(row["subject"]).strip()
    body = "" if _missing(row.get("body")) else str(row["body"]).strip()
    text = "\n\n".join(x for x in (subject, body) if x)
    return f"{text}\n{task_marker(str(row['task_key']))}".strip()


def task_body(conn: AmoCrmConnector, row: dict[str, Any]) -> dict[str, Any]:
    due = pd.Timestamp(row["due_at"])
    due = due.tz_localize("UTC") if due.tzinfo is None else due.tz_convert("UTC")
    contact = str(row["contact_id"])
    if not contact.isdigit():
        raise ValueError(f"not an amoCRM contact id: {contact!r}")
    body: dict[str, Any] = {
        "text": task_text(row),
        "complete_till": int(due.timestamp()),
        "entity_type": "contacts",
        "entity_id": int(contact),
        "task_type_id": task_type_id(conn, row.get("task_type")),
        "request_id": str(row["task_key"]),
    }
    if not _missing(row.get("owner_id")):
        body["responsible_user_id"] = int(str(row["owner_id"]))
    return body


def create_tasks(conn: AmoCrmConnector, tasks: pd.DataFrame) -> TaskReport:
    """Create the tasks that do not exist yet; never duplicates after an ambiguous failure."""
    report = TaskReport()
    if tasks is None or len(tasks) == 0:
        return report
    rows = {str(r["task_key"]): {str(k): v for k, v in r.items()} for r in tasks.to_dict("records")}
    contact_of = {k: str(r["contact_id"]) for k, r in rows.items()}
    report.already_existed.update(find_tasks(conn, contact_of))
    bodies: dict[str, dict[str, Any]] = {}
    for key, row in rows.items():
        if key in report.already_existed:
            continue
        try:
            bodies[key] = task_body(conn, row)
        except (TypeError, ValueError, KeyError) as exc:
            report.failed.append({"task_key": key, "reason": redact(f"invalid task: {exc}")})
    attempts = conn.settings.create_attempts
    for part in chunks(list(bodies), conn.settings.batch_size):
        pending = list(part)
        last_reason = "not attempted"
        for _attempt in range(attempts):
            if not pending:
                break
            try:
                answers, failed = send_batch(
                    conn, "POST", "/api/v4/tasks", [bodies[k] for k in pending], idempotent=False
                )
            except TransientError as exc:
                # The create may have been applied, its answer lost: look before creating again.
                last_reason = str(exc)
                log.warning("amoCRM task create ambiguous (%s); looking again", redact(exc))
                time.sleep(conn.settings.reconcile_wait_s)
                try:
                    found = find_tasks(conn, {k: contact_of[k] for k in pending})
                except ConnectorError as lookup:
                    last_reason = f"{last_reason}; the lookup failed too: {lookup}"
                    break
                report.created.update(found)
                pending = [k for k in pending if k not in found]
                continue
            for key, why in failed.items():
                report.failed.append({"task_key": key, "reason": why})
            by_key = {
                str(a.get("request_id")): str(a["id"]) for a in answers if a.get("id") is not None
            }
            report.created.update({k: v for k, v in by_key.items() if k in pending})
            unresolved = [k for k in pending if k not in by_key and k not in failed]
            if unresolved:  # answered, but not naming them: look rather than guess
                found = find_tasks(conn, {k: contact_of[k] for k in unresolved})
                report.created.update(found)
                last_reason = "no result returned for this task"
                pending = [k for k in unresolved if k not in found]
            else:
                pending = []
        for key in pending:
            if key not in report.created:
                report.failed.append(
                    {
                        "task_key": key,
                        "reason": f"gave up after {attempts} attempt(s): {last_reason}",
                    }
                )
    return report
