"""heatsync's contact fields in amoCRM (`/api/v4/contacts/custom_fields`): specs, check, ensure.

`ensure_schema` finds the fields by `code` and creates the missing ones once (one POST of every
missing field, ≤ 50) with `is_api_only` (reps see them, only the API writes them) except the
ones a person may correct (`settings.editable_fields`: temperature and segment, whose value a
rep sets stays for a while; pipelines.human_edits), select enums
with codes (temperature cold/warm/hot, the segments, the trend), names in the locale (ru, en, lv).
A field whose name, enums or flag drifted from the locale's gets one PATCH (enums sent as the
complete list, existing ones with their ids). A second run sends no write. `check_schema` reports
the same differences without writing. Re-exported by `connectors.amocrm.writeback`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from connectors.amocrm.batches import chunks
from connectors.amocrm.labels import label
from connectors.amocrm.models import CustomField
from connectors.amocrm.settings import FIELD_CODES, UPDATED_AT_CODE
from connectors.base import CheckItem
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


def field_specs(
    locale: str, *, with_vip: bool, editable: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The POST body of every contact field heatsync owns, in `locale`; the `editable` ones
    (canonical names) reps may change in amoCRM's interface, the others only the API writes."""
    people = set(editable)
    specs: list[dict[str, Any]] = []
    for sort, (name, code) in enumerate(FIELD_CODES.items()):
        spec: dict[str, Any] = {
            "name": label(locale, code.lower()),
            "type": FIELD_TYPES[name],
            "code": code,
            "sort": 900 + sort,
            "is_api_only": name not in people,
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


def by_code(fields: Iterable[CustomField]) -> dict[str, CustomField]:
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
    specs = field_specs(
        locale, with_vip=not _has_vip(conn, fields), editable=conn.settings.editable_fields
    )
    have = by_code(fields)
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
        have = by_code(fields)
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
    have = by_code(fields)
    items: list[CheckItem] = []
    editable = conn.settings.editable_fields
    for spec in field_specs(locale, with_vip=not _has_vip(conn, fields), editable=editable):
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
