"""Values in the sandbox HubSpot portal: time renderings and property validation.

Times are epoch milliseconds in and HubSpot's ISO rendering out (`iso_ms`, `parse_ms`);
`normalize_value` validates a property value against its definition like HubSpot does, and
`parse_for_search` gives the comparable form search filters use.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int | float) -> str:
    """Epoch milliseconds -> "2026-05-01T10:11:12.345Z" (HubSpot's datetime rendering)."""
    dt = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_RE = re.compile(r"^-?\d{9,}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_ms(value: str) -> int | None:
    """Epoch ms or an ISO 8601 date/datetime string -> epoch ms (UTC); None when unparseable."""
    value = value.strip()
    if _EPOCH_RE.match(value):
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


# ---------------------------------------------------------------------------- validation


def invalid(name: str, code: str, message: str) -> dict[str, Any]:
    """One error of a validation answer, as HubSpot lists it."""
    return {"isValid": False, "message": message, "error": code, "name": name}


def normalize_value(definition: dict[str, Any], raw: Any) -> tuple[str | None, dict | None]:
    """Validate one property value against its definition like HubSpot does.

    Returns (stored string or None to clear, error or None). Datetimes are stored as ISO with
    milliseconds and Z, dates as YYYY-MM-DD (they must be midnight UTC), booleans lower-case.
    """
    name = definition["name"]
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        value = "true" if raw else "false"
    elif isinstance(raw, int | float):
        value = repr(raw) if isinstance(raw, float) and not raw.is_integer() else str(int(raw))
    elif isinstance(raw, str):
        value = raw
    else:
        return None, invalid(name, "INVALID_PROPERTY_VALUE", f"{raw!r} is not a valid value")
    if value == "":
        return None, None
    type_ = definition["type"]
    if type_ == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return None, invalid(name, "INVALID_INTEGER", f"{value} was not a valid number.")
        return value.strip(), None
    if type_ == "bool":
        if value.lower() not in ("true", "false"):
            return None, invalid(name, "INVALID_BOOLEAN", f"{value} was not a valid boolean.")
        return value.lower(), None
    if type_ == "datetime":
        ms = parse_ms(value)
        if ms is None:
            return None, invalid(name, "INVALID_DATETIME", f"{value} was not a valid date-time.")
        return iso_ms(ms), None
    if type_ == "date":
        if _DATE_RE.match(value.strip()):
            ms = parse_ms(value.strip())
        else:
            ms = parse_ms(value)
        if ms is None:
            return None, invalid(name, "INVALID_DATE", f"{value} was not a valid date.")
        if ms % 86_400_000:
            at = iso_ms(ms)[11:23]
            return None, invalid(name, "INVALID_DATE", f"{value} is at {at} UTC, not midnight!")
        return iso_ms(ms)[:10], None
    if type_ == "enumeration":
        allowed = {o["value"] for o in definition.get("options", [])}
        if definition["fieldType"] == "checkbox":
            parts = [p for p in value.split(";") if p]
        else:
            parts = [value]
        bad = [p for p in parts if p not in allowed]
        if allowed and bad:
            opts = ", ".join(sorted(allowed))
            return None, invalid(
                name,
                "INVALID_OPTION",
                f"{bad[0]} was not one of the allowed options: [{opts}]",
            )
        return value, None
    if len(value) > 65536:
        return None, invalid(name, "INVALID_LENGTH", f"{name} is longer than 65536 characters")
    return value, None


def parse_for_search(type_: str, value: str) -> Any:
    """A comparable form of a stored or filter value for a property of `type_`."""
    if type_ == "number":
        try:
            return float(value)
        except ValueError:
            return None
    if type_ in ("datetime", "date"):
        ms = parse_ms(value)
        return None if ms is None else float(ms)
    if type_ == "bool":
        return value.lower()
    if type_ == "enumeration":
        return value
    return value.lower()
