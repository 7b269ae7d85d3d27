"""`HubSpotConnector`: connectors.base.CrmConnector for one HubSpot portal.

The facade only: each job lives in its own module — `check` (connectors.hubspot.check), `extract`
(connectors.hubspot.extract, mapping in connectors.hubspot.mapping), the write-back
(connectors.hubspot.writeback) and the edits others made to heatsync's fields
(connectors.hubspot.edits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from connectors.base import (
    CheckReport,
    CrmConnector,
    ExtractResult,
    PortalInfo,
    RequestStats,
    TaskReport,
    WriteReport,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.models import AccountDetails
from connectors.hubspot.settings import HubSpotSettings


class HubSpotConnector:
    """connectors.base.CrmConnector for one HubSpot portal."""

    crm = "hubspot"

    def __init__(self, settings: HubSpotSettings, *, client: HubSpotClient | None = None) -> None:
        self.settings = settings
        self.client = client or HubSpotClient(settings)
        self.stats: RequestStats = self.client.stats
        self._portal: PortalInfo | None = None
        self._own_source_ids: set[str] | None = None  # connectors.hubspot.edits

    def __repr__(self) -> str:
        s = self.settings
        return f"HubSpotConnector(portal={s.portal!r}, base_url={s.base_url!r})"

    # -- portal ------------------------------------------------------------------------------
    def portal_info(self) -> PortalInfo:
        """Portal id, IANA time zone and company currency (cached per connector)."""
        if self._portal is None:
            return self.remember_account(self.client.account_details())
        return self._portal

    def remember_account(self, details: AccountDetails) -> PortalInfo:
        """Keep account details read elsewhere (by the check) unless some are kept already."""
        if self._portal is None:
            self._portal = PortalInfo(
                portal_id=str(details.portalId),
                time_zone=details.timeZone or "UTC",
                currency=details.companyCurrency,
            )
        return self._portal

    # -- check -------------------------------------------------------------------------------
    def check(self, locale: str) -> CheckReport:
        """A read-only report on base URL, credentials, account, scopes and heatsync's
        properties (connectors.hubspot.check); never raises for an expected failure."""
        from connectors.hubspot.check import check

        return check(self, locale)

    # -- extract -----------------------------------------------------------------------------
    def extract(self, cursors: dict[str, str] | None, until: datetime) -> ExtractResult:
        """Read what changed since `cursors` (None: everything) up to `until`
        (connectors.hubspot.extract).

        Per object type: no cursor -> list endpoint (complete, no 10k cap); a cursor -> search
        windows [cursor - overlap_s, until - search_lag_s]. Returns the new cursors.
        """
        from connectors.hubspot.extract import extract

        return extract(self, cursors, until)

    # -- write-back (connectors.hubspot.writeback) ---------------------------------------------
    def ensure_schema(self, locale: str) -> list[str]:
        from connectors.hubspot import writeback

        return writeback.ensure_schema(self.client, locale, vip_property=self.settings.vip_property)

    def write_fields(self, updates: pd.DataFrame, skip_ids: Iterable[str] = ()) -> WriteReport:
        from connectors.hubspot import writeback

        return writeback.write_fields(
            self.client, updates, skip_ids=skip_ids, rounds=self.settings.write_retry_rounds
        )

    def find_tasks(self, task_keys: dict[str, str]) -> dict[str, str]:
        from connectors.hubspot import writeback

        return writeback.find_tasks(self.client, task_keys)

    def create_tasks(self, tasks: pd.DataFrame) -> TaskReport:
        from connectors.hubspot import writeback

        return writeback.create_tasks(
            self.client,
            tasks,
            attempts=self.settings.create_attempts,
            reconcile_wait_s=self.settings.reconcile_wait_s,
        )

    # -- edits by others (connectors.hubspot.edits) ------------------------------------------
    def field_edits(
        self, contact_ids: Sequence[str], fields: Sequence[str], since: datetime
    ) -> pd.DataFrame:
        """The latest change of each (contact, heatsync field) at or after `since` not made by
        heatsync, newer than heatsync's own last write (connectors.base.CrmConnector).

        Property history of ≤ 50 contacts per batch read; heatsync's own versions are those of
        its app id (token introspection, read once)."""
        from connectors.hubspot.edits import field_edits

        return field_edits(self, contact_ids, fields, since)

    def signals_since(self, since: datetime) -> pd.Series:
        """Contacts with a form submission, logged activity, meeting booked or sales e-mail reply
        after `since` (one contacts search; connectors.hubspot.signals)."""
        from connectors.hubspot.signals import signals_since

        return signals_since(self.client, since)


if TYPE_CHECKING:

    def _conforms(connector: HubSpotConnector) -> CrmConnector:
        return connector  # mypy proves HubSpotConnector implements the protocol
