"""`HubSpotConnector.check`: a read-only report on a HubSpot connection.

Items, in order: "base URL", "credentials" (the portal id is the report's account id), "time
zone", "currency", "scope <name>" for each REQUIRED_SCOPES entry (read scopes by a read of one
record, write scopes by HubSpot's token introspection) and OPTIONAL_SCOPES entry (missing: a
warning), then "group heatsync (<object>)" and "field <name>" for each property heatsync owns
(writeback.check_schema). Refused credentials end the report after their item. Never raises for
an unreachable server, a 401 or a 403: they become failed items with the error's one-line message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from connectors.base import CheckItem, CheckReport
from connectors.http import (
    AuthError,
    ConnectorError,
    NotFoundError,
    PermissionDeniedError,
    TransientError,
    UnreachableError,
    redact,
)
from connectors.hubspot import writeback
from connectors.hubspot.settings import CONTACTS, DEALS, OPTIONAL_SCOPES, REQUIRED_SCOPES

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector


def check(connector: HubSpotConnector, locale: str) -> CheckReport:
    """Check base URL, credentials, account, scopes and heatsync's properties; write nothing."""
    items: list[CheckItem] = []
    base_url = connector.settings.base_url.rstrip("/")
    credential = (
        "OAuth app" if connector.settings.oauth is not None else "private app token or service key"
    )

    def report(account_id: str | None) -> CheckReport:
        return CheckReport(crm=connector.crm, account_id=account_id, items=tuple(items))

    account_id: str | None = None
    try:
        details = connector.client.account_details()
    except UnreachableError as exc:
        items.append(CheckItem("base URL", False, redact(exc)))
        return report(None)
    except PermissionDeniedError as exc:  # accepted, but not allowed to read the account
        items.append(CheckItem("base URL", True, f"HubSpot answers at {base_url}"))
        items.append(CheckItem("credentials", True, f"accepted ({credential})"))
        items.append(CheckItem("time zone", False, redact(exc)))
    except AuthError as exc:
        items.append(CheckItem("base URL", True, f"HubSpot answers at {base_url}"))
        items.append(CheckItem("credentials", False, redact(exc)))
        return report(None)
    except TransientError as exc:
        items.append(CheckItem("base URL", False, redact(f"HubSpot at {base_url} fails: {exc}")))
        return report(None)
    except (ConnectorError, ValidationError) as exc:
        text = exc if isinstance(exc, ConnectorError) else "unexpected account details"
        detail = (
            f"{base_url} does not answer like HubSpot's API ({text}) — check "
            "HUBSPOT_BASE_URL (HubSpot's is https://api.hubapi.com)"
        )
        items.append(CheckItem("base URL", False, redact(detail)))
        return report(None)
    else:
        account_id = str(details.portalId)
        connector.remember_account(details)
        items.append(CheckItem("base URL", True, f"HubSpot answers at {base_url}"))
        detail = f"accepted ({credential}) for HubSpot account {account_id}"
        items.append(CheckItem("credentials", True, detail))
        items.extend(_check_account(details.timeZone, details.companyCurrency))

    granted, hub_id, unknown = _granted_scopes(connector)
    if account_id is None and hub_id is not None:
        account_id = hub_id
    items.extend(_check_scopes(connector, granted, unknown))
    try:
        items.extend(
            writeback.check_schema(
                connector.client, locale, vip_property=connector.settings.vip_property
            )
        )
    except ConnectorError as exc:
        detail = redact(f"cannot read heatsync's fields: {exc}")
        items.append(CheckItem("fields", False, detail))
    return report(account_id)


def _check_account(time_zone: str | None, currency: str | None) -> list[CheckItem]:
    items: list[CheckItem] = []
    if not time_zone:
        detail = "HubSpot gives no time zone: heatsync counts days in UTC"
        items.append(CheckItem("time zone", True, detail, warning=True))
    else:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            detail = (
                f"unknown time zone {time_zone!r}: set the account's time zone in HubSpot "
                "(Settings > Account defaults)"
            )
            items.append(CheckItem("time zone", False, detail))
        else:
            detail = f"{time_zone}: heatsync counts days and due dates in it"
            items.append(CheckItem("time zone", True, detail))
    if currency:
        detail = f"{currency}: deal amounts without a currency of their own are in it"
        items.append(CheckItem("currency", True, detail))
    else:
        detail = "HubSpot gives no company currency: deal amounts without one stay unlabelled"
        items.append(CheckItem("currency", True, detail, warning=True))
    return items


def _granted_scopes(connector: HubSpotConnector) -> tuple[set[str] | None, str | None, str]:
    """(granted scopes, hub id, why unknown) from HubSpot's token introspection (a read).

    Private app tokens (and service keys): `POST /oauth/v2/private-apps/get/access-token-info`
    with the token as `tokenKey`; OAuth: `GET /oauth/v1/access-tokens/{token}`.
    """
    try:
        if connector.settings.access_token is not None:
            token = connector.settings.access_token.get_secret_value()
            payload = connector.client.http.request(
                "POST",
                "/oauth/v2/private-apps/get/access-token-info",
                json_body={"tokenKey": token},
            )
            hub_key = "hubId"
        else:
            token = connector.client._current_oauth_token()
            payload = connector.client.http.request(
                "GET", f"/oauth/v1/access-tokens/{token}", authenticated=False
            )
            hub_key = "hub_id"
    except ConnectorError as exc:
        code = f"{exc.status} {exc.category}" if exc.category else str(exc.status or "")
        why = f"HubSpot did not list this credential's scopes ({code or exc})"
        return None, None, redact(why)
    scopes = payload.get("scopes") if isinstance(payload, dict) else None
    if not isinstance(scopes, list):
        return None, None, "HubSpot's token information lists no scopes"
    hub = payload.get(hub_key)
    return {str(x) for x in scopes}, (None if hub is None else str(hub)), ""


def _check_scopes(
    connector: HubSpotConnector, granted: set[str] | None, unknown: str
) -> list[CheckItem]:
    s = connector.settings
    app = "the OAuth app (then reinstall it)" if s.oauth else "the private app (or service key)"
    # Read scopes are proven by reading one record where heatsync needs them.
    probes: dict[str, tuple[str, dict[str, Any] | None]] = {
        "crm.objects.contacts.read": (s.objects_path(CONTACTS), {"limit": 1}),
        "crm.objects.deals.read": (s.objects_path(DEALS), {"limit": 1}),
        "crm.objects.owners.read": (s.owners_path, {"limit": 1}),
        "crm.schemas.contacts.read": (f"{s.properties_path(CONTACTS)}/email", None),
    }
    items: list[CheckItem] = []
    for scope, purpose in REQUIRED_SCOPES.items():
        name = f"scope {scope}"
        probe = probes.get(scope)
        if probe is not None:
            try:
                connector.client.http.request("GET", probe[0], params=probe[1])
            except NotFoundError:
                pass  # the read was allowed; what it asked for is not there
            except ConnectorError as exc:
                items.append(CheckItem(name, False, redact(exc)))
                continue
            items.append(CheckItem(name, True, f"granted (a read passed), for {purpose}"))
        elif granted is None:
            detail = f"not verified: {unknown}; without it heatsync cannot write {purpose}"
            items.append(CheckItem(name, True, detail, warning=True))
        elif scope in granted:
            items.append(CheckItem(name, True, f"granted, for {purpose}"))
        else:
            detail = f"not granted: heatsync needs it for {purpose} — give {app} this scope"
            items.append(CheckItem(name, False, detail))
    for scope, purpose in OPTIONAL_SCOPES.items():
        name = f"scope {scope}"
        if granted is None:
            detail = f"optional, not verified: {unknown}; it gives heatsync {purpose}"
            items.append(CheckItem(name, True, detail, warning=True))
        elif scope in granted:
            items.append(CheckItem(name, True, f"granted (optional), for {purpose}"))
        else:
            detail = f"optional, not granted: heatsync goes without {purpose}"
            items.append(CheckItem(name, True, detail, warning=True))
    return items
