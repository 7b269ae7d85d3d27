"""Values in amoCRM API v4 payloads -> Python: timestamps, numbers, date fields, text.

amoCRM sends times as Unix seconds and stores date and birthday fields as 00:00 of the day in the
account's time zone. A value that cannot be read raises `Bad`, whose message becomes the
quarantine reason of its record (`connectors.amocrm.extract`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TEXT_MAX = 500
# how far from local midnight a date value may be and still be read as that day (a time zone
# shift of the writer); further off, the day is ambiguous
MIDNIGHT_TOLERANCE_S = 3 * 3600
# the moments the canonical tables can hold (datetime64[ns] spans 1677-09-21 to 2262-04-11)
EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)


NOT_AN_OBJECT = "record: not a JSON object"


class Bad(ValueError):
    """A record that cannot be mapped; the message is the quarantine reason."""


def ts(value: Any, what: str) -> datetime:
    """Unix seconds (or an ISO 8601 string) -> aware UTC datetime, within EARLIEST..LATEST."""
    if value is None or value == "" or isinstance(value, bool):
        raise Bad(f"{what}: missing")
    if isinstance(value, int | float):
        return _epoch(value, what)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _epoch(float(text), what)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise Bad(f"{what}: not a timestamp: {text[:40]!r}") from None
    return in_range(moment, what)


def _epoch(seconds: float, what: str) -> datetime:
    try:
        moment = datetime.fromtimestamp(float(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise Bad(f"{what}: not a timestamp: {str(seconds)[:40]!r}") from None
    return in_range(moment, what)


def in_range(moment: datetime, what: str) -> datetime:
    """`moment` unless it is outside the years the canonical tables hold (pandas' ns range)."""
    if not EARLIEST <= moment < LATEST:
        raise Bad(f"{what}: {moment.isoformat()} is out of range (years 1678 to 2261)")
    return moment


def opt_ts(value: Any, what: str) -> datetime | None:
    return None if value in (None, "", 0) else ts(value, what)


def number(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Bad(f"{what}: not a number: {value!r}")
    try:
        out = float(str(value).strip())
    except ValueError:
        raise Bad(f"{what}: not a number: {str(value)[:40]!r}") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise Bad(f"{what}: not a finite number: {value!r}")
    return out


def calendar_date(value: Any, tz: ZoneInfo, what: str) -> date:
    """A date field's value -> the calendar day it stands for in the account's time zone.

    amoCRM stores date and birthday fields as 00:00 of the day in the account's time zone. A value
    within MIDNIGHT_TOLERANCE_S of a local midnight is read as that midnight's day (a writer in
    another time zone); anything else is ambiguous and raises Bad.
    """
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}", value.strip()):
        text = value.strip()
        if len(text) == 10:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise Bad(f"{what}: not a calendar date: {text!r}") from None
            in_range(datetime(day.year, day.month, day.day, tzinfo=UTC), what)
            return day
    moment = ts(value, what).astimezone(tz)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    after = (moment - midnight).total_seconds()
    if after <= MIDNIGHT_TOLERANCE_S:
        return midnight.date()
    if 86_400 - after <= MIDNIGHT_TOLERANCE_S:
        return (midnight + timedelta(days=1)).date()
    raise Bad(
        f"{what}: {moment.isoformat()} is not midnight in {tz.key}, so its calendar day is "
        "ambiguous"
    )


def clip(text: Any, limit: int = TEXT_MAX) -> str | None:
    if text is None:
        return None
    out = " ".join(str(text).split())
    if not out:
        return None
    return out if len(out) <= limit else out[: limit - 1] + "…"
