"""Field write-back to amoCRM contacts (`PATCH /api/v4/contacts`): values in amoCRM's formats.

`write_fields` sends only the changed heatsync fields of each contact (never its other fields,
never PHONE/EMAIL) in batches ≤ 50 with `request_id` = contact id (`connectors.amocrm.batches`),
and stamps HEATSYNC_UPDATED_AT. Dates are written as 00:00 of the day in the account's time zone,
as amoCRM stores them. The batches go out together on `read_workers` threads sharing the
account's pace (7 requests a second, `connectors.amocrm.arrivals`) and session
(`connectors.fanout`); their outcomes are taken in batch order, so the report is the one of
sending them one at a time. Re-exported by `connectors.amocrm.writeback`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from connectors.amocrm.batches import chunks, send_batch
from connectors.amocrm.field_schema import SELECT_OPTIONS, by_code
from connectors.amocrm.models import CustomField
from connectors.amocrm.settings import FIELD_CODES, REASONS_MAX_CHARS, UPDATED_AT_CODE
from connectors.base import WriteReport, changed_fields_of
from connectors.base import is_missing as _missing
from connectors.fanout import Fanout
from connectors.http import ConnectorError, RequestError, TransientError, log, redact

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector


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
    fields = by_code(conn.fields())
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

    def send(part: Sequence[str]) -> dict[str, str]:
        batch = [items[cid] for cid in part]
        try:
            _, failed = send_batch(conn, "PATCH", "/api/v4/contacts", batch, idempotent=True)
        except ConnectorError as exc:
            if not isinstance(exc, TransientError | RequestError):
                raise  # auth, block: stop the run
            failed = {cid: redact(str(exc))[:500] for cid in part}
        return failed

    parts = list(chunks(list(items), conn.settings.batch_size))
    with Fanout(conn.settings.read_workers, "heatsync-write") as fanout:
        outcomes = fanout.map(send, parts)
    for part, failed in zip(parts, outcomes, strict=True):
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
