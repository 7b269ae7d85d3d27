"""`AmoCrmConnector.check`: a read-only report on an amoCRM / Kommo connection.

Items, in order: "base URL", "credentials" (the account id is the report's account id), "time
zone", "currency", "API filtering", "read <object>" for contacts, leads, notes, tasks and events
(one read of one record each), "rights" (an administrator is needed to create heatsync's fields),
"task types", "field <role>" for the fields heatsync reads (birthday, source, VIP, do not
contact), then "field <CODE>" for each field heatsync owns (writeback.check_schema). Refused
credentials or a blocked account end the report after their item. Nothing is written to the
account; with OAuth, checking the credentials may refresh the access token, which rotates the
refresh token in the token store (the only way to check it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from connectors.amocrm.client import AccountBlockedError
from connectors.amocrm.contacts import FieldMap
from connectors.amocrm.models import Account
from connectors.amocrm.tokens import TokenStoreError
from connectors.base import CheckItem, CheckReport
from connectors.http import (
    AuthError,
    ConnectorError,
    PermissionDeniedError,
    TransientError,
    UnreachableError,
    redact,
)

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector

READS = {
    "contacts": ("/contacts", "contacts and their custom fields"),
    "leads": ("/leads", "leads (deals)"),
    "notes": ("/contacts/notes", "calls, texts and notes"),
    "tasks": ("/tasks", "tasks, meetings and heatsync's own tasks"),
    "events": ("/events", "chat messages and deletions"),
}
BASE_URL_HINT = (
    "check AMOCRM_BASE_URL: the account's root, e.g. https://example.amocrm.ru or "
    "https://example.kommo.com"
)


def check(conn: AmoCrmConnector, locale: str) -> CheckReport:
    from connectors.amocrm import writeback

    items: list[CheckItem] = []
    root = conn.settings.root
    credential = "OAuth integration" if conn.settings.oauth else "long-lived token"

    def report(account_id: str | None) -> CheckReport:
        return CheckReport(crm=conn.crm, account_id=account_id, items=tuple(items))

    answers = f"amoCRM answers at {root}"
    try:
        payload = conn.client.get(
            "/account", [("with", "task_types,datetime_settings,is_api_filter_enabled")]
        )
        account = Account.model_validate(payload or {})
    except UnreachableError as exc:
        items.append(CheckItem("base URL", False, redact(exc)))
        return report(None)
    except AccountBlockedError as exc:
        items.append(CheckItem("base URL", True, answers))
        items.append(CheckItem("credentials", False, redact(exc)))
        return report(None)
    except PermissionDeniedError as exc:
        items.append(CheckItem("base URL", True, answers))
        items.append(CheckItem("credentials", False, redact(exc)))
        return report(None)
    except (AuthError, TokenStoreError) as exc:
        items.append(CheckItem("base URL", True, answers))
        items.append(CheckItem("credentials", False, redact(exc)))
        return report(None)
    except TransientError as exc:
        items.append(CheckItem("base URL", False, redact(f"amoCRM at {root} fails: {exc}")))
        return report(None)
    except (ConnectorError, ValidationError) as exc:
        text = exc if isinstance(exc, ConnectorError) else "unexpected account answer"
        detail = f"{root} does not answer like amoCRM's API ({text}) — {BASE_URL_HINT}"
        items.append(CheckItem("base URL", False, redact(detail)))
        return report(None)
    account_id = str(account.id)
    conn.remember_account(account)
    items.append(CheckItem("base URL", True, answers))
    detail = f"accepted ({credential}) for amoCRM account {account_id}"
    if account.subdomain:
        detail += f" ({account.subdomain})"
    items.append(CheckItem("credentials", True, detail))
    items.extend(_account_items(account, payload))
    for name, (path, purpose) in READS.items():
        items.append(_read(conn, name, path, purpose))
    items.append(_rights(conn))
    items.append(_task_types(conn, account))
    try:
        fields = FieldMap(conn.client.custom_fields("contacts"), conn)
        items.extend(_read_fields(fields))
        items.extend(writeback.check_schema(conn, locale))
    except ConnectorError as exc:
        items.append(CheckItem("fields", False, redact(f"cannot read the contact fields: {exc}")))
    return report(account_id)


def _account_items(account: Account, payload: Any) -> list[CheckItem]:
    items: list[CheckItem] = []
    zone = account.time_zone
    if not zone:
        detail = "amoCRM gives no time zone: heatsync counts days and reads dates in UTC"
        items.append(CheckItem("time zone", True, detail, warning=True))
    else:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            detail = f"unknown time zone {zone!r}: set the account's time zone in amoCRM"
            items.append(CheckItem("time zone", False, detail))
        else:
            detail = f"{zone}: heatsync reads date fields and counts days in it"
            items.append(CheckItem("time zone", True, detail))
    if account.currency:
        items.append(CheckItem("currency", True, f"{account.currency}: lead prices are in it"))
    else:
        detail = "amoCRM gives no currency: lead prices stay unlabelled"
        items.append(CheckItem("currency", True, detail, warning=True))
    flag = payload.get("is_api_filter_enabled") if isinstance(payload, dict) else None
    if flag is False:
        detail = (
            "off (amocrm.ru's paid add-on): heatsync reads contacts and leads newest first "
            "until older than the window, which costs more requests on big accounts"
        )
        items.append(CheckItem("API filtering", True, detail, warning=True))
    elif flag is True:
        items.append(CheckItem("API filtering", True, "on: incremental reads by updated_at"))
    else:
        detail = "not reported: incremental reads assume filter[updated_at] works"
        items.append(CheckItem("API filtering", True, detail, warning=True))
    return items


def _read(conn: AmoCrmConnector, name: str, path: str, purpose: str) -> CheckItem:
    item = f"read {name}"
    try:
        conn.client.get(path, [("limit", 1)])
    except ConnectorError as exc:
        return CheckItem(item, False, redact(f"heatsync reads {purpose} here: {exc}"))
    return CheckItem(item, True, f"allowed, for {purpose}")


def _rights(conn: AmoCrmConnector) -> CheckItem:
    try:
        conn.client.get("/users", [("limit", 1)])
    except PermissionDeniedError:
        detail = (
            "the token's user is not an administrator: heatsync cannot create its fields — "
            "create the integration's token as an administrator"
        )
        return CheckItem("rights", False, detail)
    except ConnectorError as exc:
        return CheckItem("rights", True, redact(f"not verified: {exc}"), warning=True)
    return CheckItem("rights", True, "administrator (heatsync can create its fields)")


def _task_types(conn: AmoCrmConnector, account: Account) -> CheckItem:
    from connectors.amocrm.writeback import task_type_id

    names = {t.id: t.name for t in account.task_types}
    shown = []
    for kind in ("CALL", "EMAIL", "TODO"):
        type_id = task_type_id(conn, kind)
        shown.append(f"{kind} → {names.get(type_id, 'Связаться')} ({type_id})")
    return CheckItem("task types", True, "; ".join(shown))


def _read_fields(fields: FieldMap) -> list[CheckItem]:
    items = []
    for role, field_id, without in (
        ("birthday", fields.birthday, "no birthday greetings"),
        ("source", fields.source, "no contact has a source"),
        ("VIP", fields.vip, "no contact counts as a VIP"),
        ("do not contact", fields.do_not_contact, "every contact may get tasks"),
    ):
        name = f"field {role}"
        if field_id is None:
            detail = f"not found: {without} (settings name the fields heatsync looks for)"
            items.append(CheckItem(name, True, detail, warning=True))
        else:
            found = fields.by_id[field_id]
            items.append(CheckItem(name, True, f"{found.name!r} ({found.type}, id {found.id})"))
    return items
