"""The canonical tables between connectors and scoring (docs/contract.md).

Connectors build these DataFrames from a CRM's payloads; scoring reads only these. Column names
here are the contract: add columns freely, rename or drop only with a changelog migration note.
All timestamps are timezone-aware UTC (`datetime64[ns, UTC]`); ids are strings.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

TEMPERATURES = ("cold", "warm", "hot")
SEGMENTS = ("key", "fan", "loyal", "difficult", "burning", "at_risk", "new")
TRENDS = ("warming", "cooling", "steady")
DEAL_STATUSES = ("open", "won", "lost")
DIRECTIONS = ("inbound", "outbound")
SOURCES = (
    "organic_search",
    "paid_search",
    "social",
    "referral",
    "direct",
    "email",
    "chat",
    "offline",
    "import",
    "api",
    "other",
)
ACTIVITY_TYPES = (
    "page_view",
    "web_session",
    "form_submission",
    "email_sent",
    "email_open",
    "email_click",
    "email_reply",
    "email_bounce",
    "unsubscribe",
    "call",
    "sms",
    "chat_message",
    "meeting",
    "note",
    "event_attended",
    "social_engagement",
    "referral",
    "complaint",
    "payment_late",
    "refund",
    "task_completed",
)
CALL_OUTCOMES = ("connected", "no_answer", "busy", "voicemail", "wrong_number")
MEETING_OUTCOMES = ("scheduled", "completed", "no_show", "cancelled", "rescheduled")

# Column -> dtype. "ts" = tz-aware UTC timestamp, "date" = naive midnight timestamp.
# Birthdays keep month and day; an unknown year is stored as 1904 (a leap year, so 29 Feb fits).
BIRTHDAY_UNKNOWN_YEAR = 1904

CONTACTS: dict[str, str] = {
    "contact_id": "str",
    "portal": "str",
    "created_at": "ts",
    "owner_id": "str",
    "name": "str",
    "email": "str",
    "phone": "str",
    "source": "str",
    "lifecycle_stage": "str",
    "birthday": "date",
    "do_not_contact": "bool",
    "is_vip": "bool",
    # heatsync's own fields as the CRM holds them now (for diffing and override protection)
    "current_temperature": "str",
    "current_score": "float",
    "current_segment": "str",
    "current_reasons": "str",
    "current_trend": "str",
    "current_next_touch_due": "date",
    "current_touches_30d": "float",
    "current_updated_at": "date",
}

ACTIVITIES: dict[str, str] = {
    "activity_id": "str",
    "contact_id": "str",
    "portal": "str",
    "occurred_at": "ts",
    "type": "str",
    "direction": "str",
    "outcome": "str",
    "duration_s": "float",
    "text": "str",
    "is_rollup": "bool",
}

DEALS: dict[str, str] = {
    "deal_id": "str",
    "contact_id": "str",
    "portal": "str",
    "created_at": "ts",
    "closed_at": "ts",
    "status": "str",
    "stage": "str",
    "stage_probability": "float",
    "amount": "float",
    "currency": "str",
}

SCORES: dict[str, str] = {
    "contact_id": "str",
    "portal": "str",
    "as_of": "ts",
    "temperature": "str",
    "score": "float",
    "segment": "str",
    "is_vip": "bool",
    "reason_codes": "str",  # comma-separated codes, strongest first
    "reasons": "str",  # rendered texts in the portal's locale, joined by "; "
    "trend": "str",
    "previous_score": "float",
    "previous_temperature": "str",
    "hot_since": "ts",  # start of the current hot episode (for "call now once per episode")
    "segment_since": "ts",  # start of the current segment episode (e.g. "at_risk" once per episode)
    "last_touch_at": "ts",
    "next_touch_due": "date",
    "touches_30d": "int",
}

TABLES: dict[str, dict[str, str]] = {
    "contacts": CONTACTS,
    "activities": ACTIVITIES,
    "deals": DEALS,
    "scores": SCORES,
}
KEYS: dict[str, tuple[str, ...]] = {
    "contacts": ("portal", "contact_id"),
    "activities": ("portal", "activity_id"),
    "deals": ("portal", "deal_id", "contact_id"),
    "scores": ("portal", "contact_id"),
}


UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def _series(values: pd.Series, kind: str) -> pd.Series:
    if kind == "str":
        if values.dtype == object:
            missing = values.isna()
            out = values.where(~missing, None) if missing.any() else values
        else:
            out = values.astype("object").where(values.notna(), None)
        if pd.api.types.infer_dtype(out, skipna=True) in ("string", "empty"):
            return out  # already strings: skip the per-value str() (a hot path at 1M rows)
        return out.map(lambda v: v if v is None else str(v))
    if kind == "ts":
        if UTC_NS == values.dtype:
            return values
        return pd.to_datetime(values, utc=True, errors="raise").astype("datetime64[ns, UTC]")
    if kind == "date":
        parsed = pd.to_datetime(values, errors="raise")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        return parsed.dt.normalize().astype("datetime64[ns]")
    if kind == "bool":
        if values.dtype == bool:
            return values
        return values.astype("object").where(values.notna(), False).astype(bool)
    if kind == "float":
        return pd.to_numeric(values, errors="raise").astype("float64")
    if kind == "int":
        return pd.to_numeric(values, errors="raise").fillna(0).astype("int64")
    raise ValueError(f"unknown column kind {kind!r}")


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes."""
    return conform(pd.DataFrame(), table)


def conform(
    frame: pd.DataFrame, table: str, extra: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Return `frame` with every contract column present (missing ones null) and typed.

    Columns beyond the contract are kept as they are. Raises ValueError on values that cannot be
    converted, naming the column.
    """
    spec = dict(TABLES[table])
    if extra:
        spec.update(extra)
    index = pd.RangeIndex(len(frame))
    out: dict[str, pd.Series] = {}
    for column, kind in spec.items():
        if column in frame.columns:
            values = frame[column].set_axis(index, copy=False)
        else:
            values = pd.Series([None] * len(frame), index=index, dtype="object")
        try:
            out[column] = _series(values, kind)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{table}.{column}: {exc}") from exc
    for column in frame.columns:
        if column not in spec:
            out[column] = frame[column].set_axis(index, copy=False)
    # one copy of every column (the input is never shared), left unconsolidated: stacking the
    # columns into 2-D blocks would copy each once more
    return pd.DataFrame({k: v.copy() for k, v in out.items()}, index=index, copy=False)
