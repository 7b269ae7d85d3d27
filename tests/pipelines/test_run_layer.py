"""The run layer without Dagster: the rules of a day, and the as-of every step of it shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.run import day as run
from pipelines.run.asof import AsOf, FutureDayError
from pipelines.store import PortalStore

TZ = "Europe/Riga"
NOW = pd.Timestamp("2026-11-23 10:00", tz="UTC")  # 12:00 on 23 Nov in Riga


class NoCrm:
    """A connector that must not be used: the rule under test decides before any CRM call."""

    crm = "hubspot"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the CRM was asked: {name}")


@pytest.fixture
def store(tmp_path: Path) -> PortalStore:
    store = PortalStore(tmp_path, "default")
    store.save_portal_meta({"time_zone": TZ, "last_extract_at": NOW.isoformat()})
    return store


def test_a_past_day_the_store_already_covers_skips_the_extract(store: PortalStore) -> None:
    as_of, result = run.extract_day(NoCrm(), store, "2026-11-20", NOW)  # type: ignore[arg-type]
    assert result.metadata == {"mode": "skipped", "reason": "store already covers 2026-11-20"}
    assert as_of == AsOf.resolve("2026-11-20", TZ, NOW) and not as_of.is_today


def test_a_day_after_the_portals_today_is_refused_before_the_crm_is_asked(
    store: PortalStore,
) -> None:
    with pytest.raises(FutureDayError, match="after the portal's today"):
        run.extract_day(NoCrm(), store, "2026-11-24", NOW)  # type: ignore[arg-type]


def test_write_back_and_tasks_get_the_scores_as_of_and_only_on_the_portals_today(
    store: PortalStore,
) -> None:
    morning = pd.Timestamp("2026-11-23 06:30", tz="UTC")
    store.save_scores("2026-11-23", pd.DataFrame({"contact_id": ["1"], "as_of": [morning]}))
    found = run.todays_scores(store, "2026-11-23", NOW)
    assert found is not None
    as_of, scores = found
    assert as_of.instant == morning and as_of.is_today and list(scores["contact_id"]) == ["1"]
    # the same day seen from the next morning is a past day: nothing is written
    assert run.todays_scores(store, "2026-11-23", NOW + pd.Timedelta(days=1)) is None
    store.save_scores("2026-11-22", pd.DataFrame({"contact_id": ["1"], "as_of": [morning]}))
    assert run.todays_scores(store, "2026-11-22", NOW) is None
