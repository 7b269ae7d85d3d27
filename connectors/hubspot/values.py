"""Values parsed from HubSpot's property strings: timestamps, numbers, free-text birthdays.

Each parser returns None for a blank value and raises ValueError with a short reason for one it
cannot read; `Ts` and `Num` are the same parsers as pydantic field types.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

from scoring import contract

TEXT_MAX = 500
# the moments the canonical tables can hold (datetime64[ns] spans 1677-09-21 to 2262-04-11)
EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_ts(value: Any) -> datetime | None:
    """ISO 8601 (with or without zone; date-only) or epoch milliseconds -> aware UTC datetime."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        if re.fullmatch(r"-?\d{9,}(\.\d+)?", text):
            moment = datetime.fromtimestamp(float(text) / 1000.0, tz=UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"not a timestamp: {text[:40]!r}") from None
    return in_range(moment)


def in_range(moment: datetime) -> datetime:
    """`moment` unless it is outside the years the canonical tables hold (pandas' ns range)."""
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{moment.isoformat()} is out of range (years 1678 to 2261)")
    return moment


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
        moment = parse_ts(text)
        assert moment is not None  # the text is not blank
        return moment.date()
    for pattern, order in _BIRTHDAY_FORMATS:
        match = pattern.match(text)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
            day = date(parts.get("y", contract.BIRTHDAY_UNKNOWN_YEAR), parts["m"], parts["d"])
            in_range(datetime(day.year, day.month, day.day, tzinfo=UTC))
            return day
    raise ValueError(f"unparseable birthday {text[:40]!r}")


def _ts_validator(value: Any) -> datetime | None:
    return parse_ts(value)


def _num_validator(value: Any) -> float | None:
    return parse_num(value)


Ts = Annotated[datetime | None, BeforeValidator(_ts_validator)]
Num = Annotated[float | None, BeforeValidator(_num_validator)]


def clip(text: str | None, limit: int = TEXT_MAX) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def strip_html(text: str | None) -> str | None:
    if text is None:
        return None
    if "<" in text:
        text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()
