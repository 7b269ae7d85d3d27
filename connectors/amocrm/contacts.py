"""amoCRM contacts (`GET /api/v4/contacts`) -> canonical contact rows (scoring.contract).

`FieldMap` resolves, once per extract, which of the account's contact fields
(`GET /api/v4/contacts/custom_fields`) heatsync reads: the first PHONE and EMAIL, a `birthday`
field, source / VIP / do-not-contact found by id, code or name, heatsync's own fields by code.
`contact_row` maps one contact: owner = `responsible_user_id` (ids in `settings.unowned_user_ids`
mean nobody), birthday as a calendar date in the account's time zone, heatsync's own fields as
`current_*`. A contact that cannot be mapped is quarantined; one whose birthday cannot be read is
kept without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from connectors.amocrm.labels import LABELS
from connectors.amocrm.models import CustomField
from connectors.amocrm.parsing import NOT_AN_OBJECT, Bad, calendar_date, clip, number, ts
from connectors.amocrm.settings import FIELD_CODES, UPDATED_AT_CODE

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector
    from connectors.amocrm.extract import Extraction


class FieldMap:
    """The account's contact fields heatsync reads, resolved once per extract."""

    def __init__(self, fields: list[CustomField], conn: AmoCrmConnector) -> None:
        s = conn.settings
        self.by_id = {f.id: f for f in fields}
        self.phone = self._find(fields, ("PHONE",), None)
        self.email = self._find(fields, ("EMAIL",), None)
        self.birthday = self._find(fields, s.birthday_fields, "birthday")
        self.source = self._find(fields, s.source_fields, None)
        self.vip = self._find(fields, s.vip_fields, None)
        self.do_not_contact = self._find(fields, s.do_not_contact_fields, None)
        self.ours = {name: self._find(fields, (code,), None) for name, code in FIELD_CODES.items()}
        self.updated_at = self._find(fields, (UPDATED_AT_CODE,), None)

    @staticmethod
    def _find(fields: list[CustomField], names: Iterable[str], type_: str | None) -> int | None:
        for name in names:
            wanted = str(name).strip().lower()
            for f in fields:
                if str(f.id) == wanted or (f.code or "").lower() == wanted:
                    return f.id
            for f in fields:
                if f.name.strip().lower() == wanted:
                    return f.id
        if type_ is not None:
            for f in fields:
                if f.type == type_:
                    return f.id
        return None

    def enum_code(self, field_id: int, value: dict[str, Any]) -> str | None:
        """The enum's code of a select value (from the value or the field's definition)."""
        if value.get("enum_code"):
            return str(value["enum_code"])
        definition = self.by_id.get(field_id)
        if definition is not None and value.get("enum_id") is not None:
            enum = definition.enum_by_id().get(int(value["enum_id"]))
            if enum is not None and enum.code:
                return enum.code
        return None


def _values(contact: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for entry in contact.get("custom_fields_values") or []:
        if isinstance(entry, dict) and entry.get("field_id") is not None:
            values = entry.get("values") or []
            out[int(entry["field_id"])] = [v for v in values if isinstance(v, dict)]
    return out


def _first(values: dict[int, list[dict[str, Any]]], field_id: int | None) -> Any:
    if field_id is None:
        return None
    found = values.get(field_id) or []
    return found[0].get("value") if found else None


_OPTION_TEXTS: dict[str, dict[str, str]] = {}


def option_code(kind: str, code: str | None, text: Any) -> str | None:
    """A select value of heatsync's field -> canonical value (by enum code, else by label)."""
    if code:
        return code.lower()
    if text is None:
        return None
    if kind not in _OPTION_TEXTS:
        table: dict[str, str] = {}
        for labels in LABELS.values():
            for key, label in labels.items():
                if key.startswith(kind + "."):
                    table[label.strip().lower()] = key.split(".", 1)[1]
        _OPTION_TEXTS[kind] = table
    lowered = str(text).strip().lower()
    return _OPTION_TEXTS[kind].get(lowered, lowered or None)


def contact_row(ex: Extraction, raw: dict[str, Any], fields: FieldMap) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        ex.q("contacts", raw, NOT_AN_OBJECT)
        return None
    try:
        if raw.get("id") in (None, ""):
            raise Bad("id: missing")
        if raw.get("is_deleted"):
            ex.removed.add(str(raw["id"]))
            return None
        cid = str(raw["id"])
        values = _values(raw)
        created = ts(raw.get("created_at"), "created_at")
        owner = raw.get("responsible_user_id")
        if owner in (None, 0) or int(owner) in ex.settings.unowned_user_ids:
            owner = None
        name = clip(raw.get("name"), 300) or clip(
            " ".join(str(raw.get(k) or "") for k in ("first_name", "last_name")), 300
        )
        row: dict[str, Any] = {
            "contact_id": cid,
            "portal": ex.portal,
            "created_at": created,
            "owner_id": None if owner is None else str(owner),
            "name": name,
            "email": clip(_first(values, fields.email), 300),
            "phone": clip(_first(values, fields.phone), 100),
            "source": _source(ex, values, fields),
            "lifecycle_stage": None,
            "birthday": None,
            "do_not_contact": _first(values, fields.do_not_contact) is True,
            "is_vip": _first(values, fields.vip) is True,
        }
        row.update(_current(ex, values, fields))
    except Bad as exc:
        ex.q("contacts", raw, str(exc))
        return None
    except (TypeError, ValueError, OverflowError) as exc:
        ex.q("contacts", raw, f"unexpected shape: {exc}")
        return None
    birthday = _first(values, fields.birthday)
    if birthday not in (None, ""):
        try:
            row["birthday"] = calendar_date(birthday, ex.tz, "birthday")
        except Bad as exc:
            # the contact is kept (scored without a birthday); the value is quarantined
            ex.warnings["birthday_unreadable"] += 1
            ex.q("contacts", raw, f"{exc}; the contact is kept without a birthday")
    return row


def _source(
    ex: Extraction, values: dict[int, list[dict[str, Any]]], fields: FieldMap
) -> str | None:
    if fields.source is None:
        return None
    found = values.get(fields.source) or []
    if not found:
        return None
    mapping = {k.strip().lower(): v for k, v in ex.settings.source_map.items()}
    code = fields.enum_code(fields.source, found[0])
    for key in (code, found[0].get("value")):
        if key is not None and str(key).strip().lower() in mapping:
            return mapping[str(key).strip().lower()]
    return "other"


def _current(
    ex: Extraction, values: dict[int, list[dict[str, Any]]], fields: FieldMap
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field_id in fields.ours.items():
        key = f"current_{name}"
        found = values.get(field_id) if field_id is not None else None
        if not found:
            out[key] = None
            continue
        value = found[0]
        assert field_id is not None
        if name in ("temperature", "segment", "trend"):
            out[key] = option_code(name, fields.enum_code(field_id, value), value.get("value"))
        elif name in ("score", "touches_30d"):
            out[key] = number(value.get("value"), name)
        elif name == "next_touch_due":
            out[key] = _naive(calendar_date(value.get("value"), ex.tz, name))
        else:
            out[key] = value.get("value")
    stamp = _first(values, fields.updated_at)
    out["current_updated_at"] = (
        None if stamp in (None, "") else _naive(calendar_date(stamp, ex.tz, "updated_at"))
    )
    return out


def _naive(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)
