"""The per-portal store: upserts keep history, removals stick, writes are atomic, scores by day."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.run.asof import AsOf, FutureDayError, local_today
from pipelines.store import PortalStore
from scoring import contract


def _contacts(ids: list[str], stage: str = "lead") -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "contact_id": ids,
                "portal": "p",
                "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
                "lifecycle_stage": stage,
            }
        ),
        "contacts",
    )


def _activities(ids: list[str], contact: str = "1") -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "activity_id": ids,
                "contact_id": contact,
                "portal": "p",
                "occurred_at": pd.Timestamp("2026-02-01", tz="UTC"),
                "type": "call",
            }
        ),
        "activities",
    )


def test_merge_upserts_latest_version_and_keeps_activity_history(tmp_path):
    store = PortalStore(tmp_path, "p")
    store.merge_extract(_contacts(["1", "2"]), _activities(["a1"]), contract.empty("deals"), [])
    counts = store.merge_extract(
        _contacts(["2"], stage="customer"), _activities(["a2"]), contract.empty("deals"), []
    )
    assert counts == {"contacts": 2, "activities": 2, "deals": 0}
    contacts = store.table("contacts").set_index("contact_id")
    assert contacts.loc["2", "lifecycle_stage"] == "customer"
    assert contacts.loc["1", "lifecycle_stage"] == "lead"
    assert sorted(store.table("activities")["activity_id"]) == ["a1", "a2"]


def test_removed_contacts_leave_the_store(tmp_path):
    store = PortalStore(tmp_path, "p")
    store.merge_extract(
        _contacts(["1", "2", "3"]), contract.empty("activities"), contract.empty("deals"), []
    )
    store.merge_extract(
        contract.empty("contacts"), contract.empty("activities"), contract.empty("deals"), ["2"]
    )
    assert sorted(store.table("contacts")["contact_id"]) == ["1", "3"]


def test_update_current_fields_records_only_changed_values(tmp_path):
    store = PortalStore(tmp_path, "p")
    store.merge_extract(
        _contacts(["1", "2"]), contract.empty("activities"), contract.empty("deals"), []
    )
    written = pd.DataFrame(
        {
            "contact_id": ["1", "2"],
            "temperature": ["hot", "cold"],
            "score": [81.0, 5.0],
            "changed_temperature": [True, False],
            "changed_score": [True, True],
        }
    )
    store.update_current_fields(written)
    contacts = store.table("contacts").set_index("contact_id")
    assert contacts.loc["1", "current_temperature"] == "hot"
    assert contacts.loc["2", "current_temperature"] is None
    assert contacts.loc["2", "current_score"] == 5.0


def test_previous_scores_is_the_latest_day_before(tmp_path):
    store = PortalStore(tmp_path, "p")
    for day, value in (("2026-11-01", 10.0), ("2026-11-03", 30.0), ("2026-11-05", 50.0)):
        store.save_scores(day, pd.DataFrame({"contact_id": ["1"], "score": [value]}))
    day, previous = store.previous_scores("2026-11-05")
    assert day == "2026-11-03"
    assert previous is not None and previous["score"].iloc[0] == 30.0
    assert store.previous_scores("2026-11-01") == (None, None)


def test_as_of_of_a_past_day_is_the_last_instant_of_that_local_day():
    now = pd.Timestamp("2026-11-23 10:00", tz="UTC")
    as_of = AsOf.resolve("2026-11-20", "Europe/Riga", now)
    assert not as_of.is_today and as_of.run_at == now
    # Riga is UTC+2 in November: the day ends at 22:00 UTC.
    assert as_of.instant == pd.Timestamp("2026-11-20 21:59:59.999999", tz="UTC")
    assert as_of.instant.tz_convert("Europe/Riga").date().isoformat() == "2026-11-20"


def test_as_of_of_today_is_now_and_a_future_day_is_refused():
    now = pd.Timestamp("2026-11-23 23:30", tz="UTC")
    # Already 24 Nov in Riga.
    assert local_today("Europe/Riga", now) == "2026-11-24"
    as_of = AsOf.resolve("2026-11-24", "Europe/Riga", now)
    assert (as_of.instant, as_of.is_today, as_of.day, as_of.tz) == (
        now,
        True,
        "2026-11-24",
        "Europe/Riga",
    )
    assert AsOf.today("Europe/Riga", now) == as_of
    with pytest.raises(FutureDayError, match="after the portal's today"):
        AsOf.resolve("2026-11-24", "UTC", now)


def test_the_as_of_of_saved_scores_is_the_one_they_were_computed_with():
    morning = pd.Timestamp("2026-11-23 07:15", tz="UTC")
    today = AsOf.resolve("2026-11-23", "Europe/Riga", morning)
    scores = pd.DataFrame({"contact_id": ["1", "2"], "as_of": [today.instant] * 2})
    assert AsOf.of_scores("2026-11-23", "Europe/Riga", scores) == today
    past = AsOf.resolve("2026-11-20", "Europe/Riga", morning)
    scores["as_of"] = past.instant
    seen = AsOf.of_scores("2026-11-20", "Europe/Riga", scores)
    assert seen is not None and seen.instant == past.instant and not seen.is_today
    assert AsOf.of_scores("2026-11-23", "Europe/Riga", scores.iloc[:0]) is None
