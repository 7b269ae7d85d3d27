"""Field write-back to HubSpot contacts: values in its formats, batch updates, per-row retries.

`write_fields` writes only changed fields, batch/update ≤ 100; a 207's transient per-row errors
are retried (bounded rounds; a round after a LOCKED row waits out the 2 s lock), the rest reported
in WriteReport.failed. The parts of a round go out together on `read_workers` threads sharing the
portal's rate limiter and session (`connectors.fanout`); their outcomes are taken in part order,
so the report is the one of sending them one at a time. Rounds follow one another. Re-exported by
`connectors.hubspot.writeback`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from connectors.base import WriteReport, changed_fields_of
from connectors.base import is_missing as _missing
from connectors.fanout import Fanout
from connectors.http import ConnectorError, TransientError, log, redact
from connectors.hubspot.client import BatchOutcome, HubSpotClient, chunks
from connectors.hubspot.models import StandardError
from connectors.hubspot.settings import (
    BATCH_SIZE,
    CONTACTS,
    FIELD_PROPERTIES,
    REASONS_MAX_CHARS,
    UPDATED_AT_PROPERTY,
)

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
# Field write-back


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
        fields = changed_fields_of(record)
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

    def send(part: Sequence[str]) -> BatchOutcome:
        return client.batch_update(
            CONTACTS, [{"id": cid, "properties": inputs[cid]} for cid in part]
        )

    with Fanout(client.settings.read_workers, "heatsync-write") as fanout:
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
            parts = list(chunks(pending, BATCH_SIZE))
            for part, future in [(part, fanout.submit(send, part)) for part in parts]:
                try:
                    outcome = future.result()
                except ConnectorError as exc:
                    for cid in part:
                        if isinstance(exc, TransientError) and round_no < rounds:
                            retry.append(cid)
                        else:
                            report.failed.append({"contact_id": cid, "reason": str(exc)})
                    continue
                last = round_no == rounds
                took = _take_outcome(report, outcome, part, changed_fields, None if last else retry)
                locked = took or locked
            pending = retry
    if report.failed:
        log.warning("field write-back: %d contact(s) failed", len(report.failed))
    return report


def _take_outcome(
    report: WriteReport,
    outcome: BatchOutcome,
    part: Sequence[str],
    changed_fields: dict[str, list[str]],
    retry: list[str] | None,
) -> bool:
    """Count one part's 207 into `report`; transient rows go to `retry` (None: no round left).
    Returns whether a retried row was LOCKED."""
    locked = False
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
        elif _row_transient(row_error) and retry is not None:
            retry.append(cid)
            locked = locked or _row_locked(row_error)
        else:
            report.failed.append({"contact_id": cid, "reason": _error_text(row_error)})
    for error in outcome.errors:
        if not error.ids():
            log.warning("batch update error naming no id: %s", _error_text(error))
    return locked
