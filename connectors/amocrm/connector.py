"""`AmoCrmConnector`: connectors.base.CrmConnector for one amoCRM / Kommo account."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.amocrm.client import AmoClient
from connectors.amocrm.models import Account
from connectors.amocrm.settings import AmoCrmSettings
from connectors.base import ExtractResult, PortalInfo, RequestStats


class AmoCrmConnector:
    """connectors.base.CrmConnector for one amoCRM / Kommo account."""

    crm = "amocrm"

    def __init__(self, settings: AmoCrmSettings, *, client: AmoClient | None = None) -> None:
        self.settings = settings
        self.client = client or AmoClient(settings)
        self.stats: RequestStats = self.client.stats
        self._account: Account | None = None
        self._portal: PortalInfo | None = None

    def __repr__(self) -> str:
        s = self.settings
        return f"AmoCrmConnector(portal={s.portal!r}, base_url={s.base_url!r})"

    # -- portal ------------------------------------------------------------------------------
    def account(self) -> Account:
        """The account with its time zone and task types (cached per connector)."""
        if self._account is None:
            self._account = self.client.account()
        return self._account

    def portal_info(self) -> PortalInfo:
        """Account id, IANA time zone and currency (cached per connector)."""
        if self._portal is None:
            account = self.account()
            self._portal = PortalInfo(
                portal_id=str(account.id),
                time_zone=_zone(account.time_zone),
                currency=account.currency,
            )
        return self._portal

    # -- extract -----------------------------------------------------------------------------
    def extract(self, cursors: dict[str, str] | None, until: datetime) -> ExtractResult:
        """Read what changed since `cursors` (None: everything) up to `until`
        (connectors.amocrm.extract)."""
        from connectors.amocrm import extract

        return extract.extract(self, cursors, until)


def _zone(name: str | None) -> str:
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name
