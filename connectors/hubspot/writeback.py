"""Write heatsync's results back to HubSpot: property schema, contact fields, follow-up tasks.

- `ensure_schema`: idempotent. GET each group/property first; create on 404 (a 409 means it
  exists) with the locale's label and description; PATCH only the labels, descriptions and
  options that differ from the locale's (one request per property). A second run sends no write.
- `write_fields`: only changed fields, rendered in HubSpot formats, batch/update ≤ 100; a 207's
  transient per-row errors are retried (bounded rounds; a round after a LOCKED row waits out the
  2 s lock), the rest reported in WriteReport.failed.
- `find_tasks`: a consistent lookup (v4 associations contact→tasks + batch read of
  heatsync_task_key), not search, which lags behind writes.
- `create_tasks`: skip keys that already exist; batch/create ≤ 100 with inline association to the
  contact (type 204) and objectWriteTraceId = task key. An ambiguous failure (5xx, dropped
  connection, timeout) is never retried blindly: reconcile with `find_tasks`, then create only the
  missing ones (bounded attempts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from connectors.base import WRITABLE_FIELDS, CheckItem, TaskReport, WriteReport
from connectors.http import ConflictError, ConnectorError, TransientError, log, redact
from connectors.hubspot.client import HubSpotClient, chunks
from connectors.hubspot.labels import description, label
from connectors.hubspot.models import PropertyDefinition, StandardError
from connectors.hubspot.settings import (
    ASSOC_TASK_TO_CONTACT,
    BATCH_SIZE,
    CONTACTS,
    DEFAULT_VIP_PROPERTY,
    FIELD_PROPERTIES,
    GROUP_NAME,
    REASONS_MAX_CHARS,
    TASK_KEY_PROPERTY,
    TASKS,
    UPDATED_AT_PROPERTY,
)
from scoring import contract

# Per-row error categories worth another round (the row itself is fine).
TRANSIENT_CATEGORIES = frozenset(
    {
        "RATE_LIMITS",
        "RATE_LIMIT",
        "LOCKED",
        "INTERNAL_ERROR",
        "SERVER_ERROR",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "GATEWAY_TIMEOUT",
        "BAD_GATEWAY",
        "TEMPORARILY_UNAVAILABLE",
    }
)
TRANSIENT_ROW_STATUSES = frozenset({"423", "429", "500", "502", "503", "504"})
# HubSpot: "Locks will last for 2 seconds"; a round retrying locked rows waits at least this.
LOCK_WAIT_S = 2.0

# --------------------------------------------------------------------------------------------
# Schema


def property_specs(locale: str, vip_property: str) -> list[tuple[str, dict[str, Any]]]:
    """(object type, property create body) for every property heatsync owns."""

    def options(kind: str, codes: Iterable[str]) -> list[dict[str, Any]]:
        return [
            {
                "label": label(locale, f"{kind}.{code}"),
                "value": code,
                "displayOrder": i,
                "hidden": False,
            }
            for i, code in enumerate(codes)
        ]

    def prop(name: str, type_: str, field_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "label": label(locale, name),
            "description": description(locale, name),
            "type": type_,
            "fieldType": field_type,
            "groupName": GROUP_NAME,
            **extra,
        }

    f = FIELD_PROPERTIES
    specs: list[tuple[str, dict[str, Any]]] = [
        (
            CONTACTS,
            prop(
                f["temperature"],
                "enumeration",
                "select",
                options=options("temperature", contract.TEMPERATURES),
            ),
        ),
        (CONTACTS, prop(f["score"], "number", "number")),
        (
            CONTACTS,
            prop(
                f["segment"], "enumeration", "select", options=options("segment", contract.SEGMENTS)
            ),
        ),
        (CONTACTS, prop(f["reasons"], "string", "textarea")),
        (
            CONTACTS,
            prop(f["trend"], "enumeration", "select", options=options("trend", contract.TRENDS)),
        ),
        (CONTACTS, prop(UPDATED_AT_PROPERTY, "date", "date")),
        (CONTACTS, prop(f["next_touch_due"], "date", "date")),
        (CONTACTS, prop(f["touches_30d"], "number", "number")),
    ]
    if vip_property == DEFAULT_VIP_PROPERTY:
        # A portal that keeps its own VIP flag (settings.vip_property) owns that property.
        vip = prop(vip_property, "bool", "booleancheckbox")
        vip["label"] = label(locale, "heatsync_vip")
        vip["options"] = [
            {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
            {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
        ]
        specs.append((CONTACTS, vip))
    specs.append((TASKS, prop(TASK_KEY_PROPERTY, "string", "text")))
    return specs


def _drift(current: PropertyDefinition, wanted: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body needed to bring `current` to `wanted` (empty when nothing drifted)."""
    patch: dict[str, Any] = {}
    if current.label != wanted["label"]:
        patch["label"] = wanted["label"]
    if (current.description or "") != wanted.get("description", ""):
        patch["description"] = wanted.get("description", "")
    if wanted["type"] == "enumeration":
        have = {o.value: o.label for o in current.options if not o.hidden}
        want = {o["value"]: o["label"] for o in wanted.get("options", [])}
        if have != want:
            patch["options"] = wanted["options"]
    return patch


def _check_property(
    object_type: str, current: PropertyDefinition | None, wanted: dict[str, Any], locale: str
) -> CheckItem:
    name = f"field {wanted['name']}" + ("" if object_type == CONTACTS else f" ({object_type})")
    want = f"{wanted['type']}/{wanted['fieldType']}"
    if current is None:
        return CheckItem(
            name, True, f"missing: heatsync creates it ({want}) on its first run", warning=True
        )
    have = f"{current.type}/{current.fieldType}"
    if have != want:
        return CheckItem(
            name,
            False,
            f"is {have} but heatsync writes {want}: change its field type in HubSpot, or delete "
            "it so that heatsync creates it",
        )
    drift = [key for key in ("label", "description", "options") if key in _drift(current, wanted)]
    if drift:
        what = " and ".join([", ".join(drift[:-1]), drift[-1]] if len(drift) > 1 else drift)
        return CheckItem(
            name,
            True,
            f"present ({have}); its {what} will be updated to the {locale!r} texts on the next run",
            warning=True,
        )
    return CheckItem(name, True, f"present ({have})")


def check_schema(client: HubSpotClient, locale: str, vip_property: str) -> list[CheckItem]:
    """One item per property group and property heatsync owns, read only (nothing is written).

    Missing ones are ok with a warning (ensure_schema creates them), a wrong type is not ok, a
    label/description/options drift is ok with a warning (ensure_schema updates it). Raises
    ConnectorError when the definitions cannot be read.
    """
    items: list[CheckItem] = []
    specs = property_specs(locale, vip_property)
    group_label = label(locale, "group")
    for object_type in dict.fromkeys(t for t, _ in specs):
        name = f"group {GROUP_NAME} ({object_type})"
        group = client.get_group(object_type, GROUP_NAME)
        if group is None:
            items.append(
                CheckItem(name, True, "missing: heatsync creates it on its first run", warning=True)
            )
        elif group.label != group_label:
            items.append(CheckItem(name, True, "present; its label will be updated", warning=True))
        else:
            items.append(CheckItem(name, True, "present"))
    for object_type, body in specs:
        current = client.get_property(object_type, body["name"])
        items.append(_check_property(object_type, current, body, locale))
    if vip_property != DEFAULT_VIP_PROPERTY:
        # the portal's own VIP flag: heatsync only reads it
        name = f"field {vip_property}"
        if client.get_property(CONTACTS, vip_property) is None:
            items.append(
                CheckItem(
                    name,
                    True,
                    "missing: heatsync reads VIPs from it, so no contact counts as a VIP",
                    warning=True,
                )
            )
        else:
            items.append(CheckItem(name, True, "present (heatsync reads VIPs from it)"))
    return items


def ensure_schema(
    client: HubSpotClient, locale: str, vip_property: str = "heatsync_vip"
) -> list[str]:
    """Create heatsync's group and properties where missing; return the names created.

    Existing ones whose label, description or options differ from `locale`'s are PATCHed (one
    request per property); nothing is sent for those already equal. Names are
    "group:<object>/<name>" for groups and "<object>/<name>" for properties.
    """
    created: list[str] = []
    specs = property_specs(locale, vip_property)
    for object_type in dict.fromkeys(t for t, _ in specs):
        group_label = label(locale, "group")
        group = client.get_group(object_type, GROUP_NAME)
        if group is None:
            try:
                client.create_group(
                    object_type, {"name": GROUP_NAME, "label": group_label, "displayOrder": -1}
                )
                created.append(f"group:{object_type}/{GROUP_NAME}")
            except ConflictError:
                pass
        elif group.label != group_label:
            client.update_group(object_type, GROUP_NAME, {"label": group_label})
    for object_type, body in specs:
        current = client.get_property(object_type, body["name"])
        if current is None:
            try:
                client.create_property(object_type, body)
                created.append(f"{object_type}/{body['name']}")
                continue
            except ConflictError:
                current = client.get_property(object_type, body["name"])
                if current is None:
                    raise
        patch = _drift(current, body)
        if patch:
            log.info("updating %s/%s: %s drifted", object_type, body["name"], sorted(patch))
            client.update_property(object_type, body["name"], patch)
    return created


# --------------------------------------------------------------------------------------------
# Field write-back


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def render_value(field_name: str, value: Any) -> str:
    """A canonical field value in HubSpot's wire format ("" clears the property)."""
    if _missing(value):
        return ""
    if field_name in ("score", "touches_30d"):
        number = float(value)
        return "" if math.isnan(number) else str(round(number))
    if field_name == "next_touch_due":
        if isinstance(value, str):
            value = pd.Timestamp(value)
        if isinstance(value, pd.Timestamp | datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC)
            value = value.date()
        if isinstance(value, date):
            return value.isoformat()
        raise ValueError(f"next_touch_due: not a date: {value!r}")
    if field_name == "reasons":
        text = str(value)
        return text if len(text) <= REASONS_MAX_CHARS else text[: REASONS_MAX_CHARS - 1] + "…"
    return str(value)


def _row_transient(error: StandardError) -> bool:
    return (error.category or "").upper() in TRANSIENT_CATEGORIES or (
        error.status or ""
    ) in TRANSIENT_ROW_STATUSES


def _row_locked(error: StandardError) -> bool:
    return (error.category or "").upper() == "LOCKED" or (error.status or "") == "423"


def _error_text(error: StandardError) -> str:
    return redact(f"{error.category or 'ERROR'}: {error.message or 'no message'}")[:500]


def write_fields(
    client: HubSpotClient,
    updates: pd.DataFrame,
    *,
    skip_ids: Iterable[str] = (),
    rounds: int = 3,
    today: date | None = None,
    pause_s: float = 0.5,
) -> WriteReport:
    """Write the changed heatsync fields of `updates` (output of connectors.base.field_changes).

    Also sets heatsync_updated_at = today (UTC) on every contact written. Ids in `skip_ids`
    (archived/merged contacts) are never written and are listed in `report.skipped`. Rows whose
    207 error is transient are sent again in up to `rounds` more rounds (`report.rounds`,
    `report.retried`); what still fails, or fails permanently, is in `report.failed`.
    """
    report = WriteReport()
    if updates is None or len(updates) == 0:
        return report
    skip = {str(i) for i in skip_ids}
    stamp = (today or datetime.now(UTC).date()).isoformat()
    inputs: dict[str, dict[str, str]] = {}
    changed_fields: dict[str, list[str]] = {}
    for record in updates.to_dict("records"):
        contact_id = str(record["contact_id"])
        fields = []
        for name in WRITABLE_FIELDS:
            flag = record.get(f"changed_{name}")
            if flag is None and name in record:
                flag = not _missing(record[name])
            if bool(flag) and not _missing(flag):
                fields.append(name)
        if not fields:
            report.unchanged += 1
            continue
        if contact_id in skip:
            report.skipped.append(contact_id)
            continue
        try:
            props = {FIELD_PROPERTIES[n]: render_value(n, record.get(n)) for n in fields}
        except (TypeError, ValueError) as exc:
            report.failed.append({"contact_id": contact_id, "reason": redact(exc)})
            continue
        props[UPDATED_AT_PROPERTY] = stamp
        inputs[contact_id] = props
        changed_fields[contact_id] = fields
    report.attempted = len(inputs) + len(report.failed)
    pending = list(inputs)
    locked = False
    for round_no in range(rounds + 1):
        if not pending:
            break
        if round_no:
            wait = pause_s * (2 ** (round_no - 1))
            client.http._sleep(max(wait, LOCK_WAIT_S) if locked else wait)
            report.retried += len(pending)
        report.rounds += 1
        locked = False
        retry: list[str] = []
        for part in chunks(pending, BATCH_SIZE):
            try:
                outcome = client.batch_update(
                    CONTACTS, [{"id": cid, "properties": inputs[cid]} for cid in part]
                )
            except ConnectorError as exc:
                for cid in part:
                    if isinstance(exc, TransientError) and round_no < rounds:
                        retry.append(cid)
                    else:
                        report.failed.append({"contact_id": cid, "reason": str(exc)})
                continue
            errored: dict[str, StandardError] = {}
            for error in outcome.errors:
                for cid in error.ids():
                    errored[cid] = error
            for cid in part:
                row_error = errored.get(cid)
                if row_error is None:
                    report.written += 1
                    for name in changed_fields[cid]:
                        report.fields_changed[name] = report.fields_changed.get(name, 0) + 1
                elif _row_transient(row_error) and round_no < rounds:
                    retry.append(cid)
                    locked = locked or _row_locked(row_error)
                else:
                    report.failed.append({"contact_id": cid, "reason": _error_text(row_error)})
            unnamed = [e for e in outcome.errors if not e.ids()]
            for error in unnamed:
                log.warning("batch update error naming no id: %s", _error_text(error))
        pending = retry
    if report.failed:
        log.warning("field write-back: %d contact(s) failed", len(report.failed))
    return report


# --------------------------------------------------------------------------------------------
# Tasks


def find_tasks(client: HubSpotClient, task_keys: dict[str, str]) -> dict[str, str]:
    """Key -> task id for heatsync tasks that exist on the given contacts (consistent reads)."""
    if not task_keys:
        return {}
    contact_ids = sorted({str(c) for c in task_keys.values() if not _missing(c)})
    links = client.associations(CONTACTS, TASKS, contact_ids)
    task_ids = sorted({t for targets in links.values() for t in targets})
    if not task_ids:
        return {}
    outcome = client.batch_read(TASKS, task_ids, [TASK_KEY_PROPERTY])
    wanted = {str(k) for k in task_keys}
    found: dict[str, str] = {}
    for record in outcome.results:
        key = (record.get("properties") or {}).get(TASK_KEY_PROPERTY)
        if key and key in wanted and not record.get("archived"):
            found.setdefault(str(key), str(record["id"]))
    return found


def _iso_ms(value: Any) -> str:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def task_input(row: dict[str, Any]) -> dict[str, Any]:
    """One batch/create input for a TASK_COLUMNS row."""
    key = str(row["task_key"])
    props: dict[str, str] = {
        "hs_timestamp": _iso_ms(row["due_at"]),
        "hs_task_subject": "" if _missing(row.get("subject")) else str(row["subject"]),
        "hs_task_body": "" if _missing(row.get("body")) else str(row["body"]),
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": str(row.get("priority") or "MEDIUM").upper(),
        "hs_task_type": str(row.get("task_type") or "TODO").upper(),
        TASK_KEY_PROPERTY: key,
    }
    if not _missing(row.get("owner_id")):
        props["hubspot_owner_id"] = str(row["owner_id"])
    return {
        "properties": props,
        "associations": [
            {
                "to": {"id": str(row["contact_id"])},
                "types": [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": ASSOC_TASK_TO_CONTACT,
                    }
                ],
            }
        ],
        "objectWriteTraceId": key,
    }


def create_tasks(
    client: HubSpotClient,
    tasks: pd.DataFrame,
    *,
    attempts: int = 3,
    pause_s: float = 0.5,
    reconcile_wait_s: float = 2.0,
) -> TaskReport:
    """Create the tasks that do not exist yet; never duplicates after an ambiguous failure."""
    report = TaskReport()
    if tasks is None or len(tasks) == 0:
        return report
    rows: dict[str, dict[str, Any]] = {
        str(r["task_key"]): {str(k): v for k, v in r.items()} for r in tasks.to_dict("records")
    }
    contact_of = {k: str(r["contact_id"]) for k, r in rows.items()}
    report.already_existed.update(find_tasks(client, contact_of))
    todo: list[str] = []
    for key, row in rows.items():
        if key in report.already_existed:
            continue
        try:
            task_input(row)
        except (TypeError, ValueError, KeyError) as exc:
            report.failed.append({"task_key": key, "reason": redact(f"invalid task: {exc}")})
            continue
        todo.append(key)
    for part in chunks(todo, BATCH_SIZE):
        pending = list(part)
        last_reason = "not attempted"
        for attempt in range(attempts):
            if not pending:
                break
            if attempt:
                client.http._sleep(pause_s * (2 ** (attempt - 1)))
            try:
                outcome = client.batch_create(TASKS, [task_input(rows[k]) for k in pending])
            except TransientError as exc:
                # The request may have been applied (possibly late): wait, then look before
                # creating again.
                last_reason = str(exc)
                log.warning("task create ambiguous (%s); reconciling", redact(exc))
                client.http._sleep(reconcile_wait_s)
                try:
                    found = find_tasks(client, {k: contact_of[k] for k in pending})
                except ConnectorError as lookup_exc:
                    last_reason = f"{last_reason}; reconcile failed: {lookup_exc}"
                    break
                report.created.update(found)
                pending = [k for k in pending if k not in found]
                continue
            except ConnectorError as exc:
                for key in pending:
                    report.failed.append({"task_key": key, "reason": str(exc)})
                pending = []
                break
            by_key: dict[str, str] = {}
            for record in outcome.results:
                made = (record.get("properties") or {}).get(TASK_KEY_PROPERTY)
                if made:
                    by_key[str(made)] = str(record["id"])
            retry: list[str] = []
            errored: set[str] = set()
            for error in outcome.errors:
                for key in error.trace_ids():
                    if key not in pending:
                        continue
                    errored.add(key)
                    if _row_transient(error):
                        retry.append(key)
                        last_reason = _error_text(error)
                    else:
                        report.failed.append({"task_key": key, "reason": _error_text(error)})
            report.created.update({k: v for k, v in by_key.items() if k in pending})
            unresolved = [k for k in pending if k not in by_key and k not in errored]
            if unresolved:
                # Neither a result nor an error names them: reconcile rather than guess.
                found = find_tasks(client, {k: contact_of[k] for k in unresolved})
                report.created.update(found)
                retry.extend(k for k in unresolved if k not in found)
                last_reason = "no result returned for this input"
            pending = retry
        for key in pending:
            if key not in report.created:
                report.failed.append(
                    {
                        "task_key": key,
                        "reason": f"gave up after {attempts} attempt(s): {last_reason}",
                    }
                )
    return report
