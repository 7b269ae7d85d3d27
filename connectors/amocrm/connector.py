"""`AmoCrmConnector`: connectors.base.CrmConnector for one amoCRM / Kommo account."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from connectors.amocrm.client import AmoClient
from connectors.amocrm.models import Account, CustomField
from connectors.amocrm.settings import AmoCrmSettings
from connectors.base import (
    CheckReport,
    CrmConnector,
    ExtractResult,
    PortalInfo,
    RequestStats,
    TaskReport,
    WriteReport,
)


class AmoCrmConnector:
    """connectors.base.CrmConnector for one amoCRM / Kommo account."""

    crm = "amocrm"

    def __init__(self, settings: AmoCrmSettings, *, client: AmoClient | None = None) -> None:
        self.settings = settings
        self.client = client or AmoClient(settings)
        self.stats: RequestStats = self.client.stats
        self._account: Account | None = None
        self._portal: PortalInfo | None = None
        self._fields: list[CustomField] | None = None

    def __repr__(self) -> str:
        s = self.settings
        return f"AmoCrmConnector(portal={s.portal!r}, base_url={s.base_url!r})"

    # -- portal ------------------------------------------------------------------------------
    def account(self) -> Account:
        """The account with its time zone and task types (cached per connector)."""
        if self._account is None:
            self._account = self.client.account()
        return self._account

    def remember_account(self, account: Account) -> None:
        if self._account is None:
            self._account = account

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

    def fields(self) -> list[CustomField]:
        """The account's contact field definitions (cached until `forget_fields`)."""
        if self._fields is None:
            self._fields = self.client.custom_fields("contacts")
        return self._fields

    def forget_fields(self) -> None:
        self._fields = None

    # -- check -------------------------------------------------------------------------------
    def check(self, locale: str) -> CheckReport:
        """A read-only report on URL, credentials, account, reads, rights and heatsync's fields
        (connectors.amocrm.check); never raises for an expected failure."""
        from connectors.amocrm.check import check

        return check(self, locale)

    # -- extract -----------------------------------------------------------------------------
    def extract(self, cursors: dict[str, str] | None, until: datetime) -> ExtractResult:
        """Read what changed since `cursors` (None: everything) up to `until`
        (connectors.amocrm.extract)."""
        from connectors.amocrm import extract

        return extract.extract(self, cursors, until)

    # -- write-back (connectors.amocrm.writeback) --------------------------------------------
    def ensure_schema(self, locale: str) -> list[str]:
        from connectors.amocrm import writeback

        return writeback.ensure_schema(self, locale)

    def write_fields(self, updates: pd.DataFrame, skip_ids: Iterable[str] = ()) -> WriteReport:
        from connectors.amocrm import writeback

        return writeback.write_fields(self, updates, skip_ids=skip_ids)

    def find_tasks(self, task_keys: dict[str, str]) -> dict[str, str]:
        from connectors.amocrm import writeback

        return writeback.find_tasks(self, task_keys)

    def create_tasks(self, tasks: pd.DataFrame) -> TaskReport:
        from connectors.amocrm import writeback

        return writeback.create_tasks(self, tasks)

    def field_edits(
        self, contact_ids: Sequence[str], fields: Sequence[str], since: datetime
    ) -> pd.DataFrame:
        """The latest change of each (contact, heatsync field) at or after `since` not made by
        heatsync, newer than heatsync's own last write (connectors.base.CrmConnector).

        `custom_field_value_changed` events of ≤ 10 contacts a query (connectors.amocrm.edits);
        heatsync's own are those of the user the token acts as."""
        from connectors.amocrm.edits import field_edits

        return field_edits(self, contact_ids, fields, since)

    def signals_since(self, since: datetime) -> pd.Series:
        """Contacts with an inbound call, SMS or chat message after `since` (two requests;
        connectors.amocrm.signals)."""
        from connectors.amocrm.signals import signals_since

        return signals_since(self.client, since)


def _zone(name: str | None) -> str:
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


if TYPE_CHECKING:

    def _conforms(connector: AmoCrmConnector) -> CrmConnector:
        return connector  # mypy proves AmoCrmConnector implements the protocol
