"""Volume sanity: a 20,000-contact synthetic portal scores into valid rows (timing lives in
benchmarks/score_contacts.py), and a contact's score does not depend on the rest of the portal."""

from __future__ import annotations

import pandas as pd
import pytest

from sandbox.synthetic import synthetic_portal
from scoring import EXTRA_SCORE_COLUMNS, contract, load_config, plan_tasks, score_contacts

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
TZ = "Europe/Riga"
CFG = load_config(None)


@pytest.fixture(scope="module")
def portal():
    contacts, activities, deals = synthetic_portal(20_000, 200_000, AS_OF)
    scores = score_contacts(contacts, activities, deals, as_of=AS_OF, config=CFG, tz=TZ)
    return contacts, activities, deals, scores


def test_scores_are_valid(portal):
    contacts, _, _, s = portal
    assert len(s) == len(contacts) == s[["portal", "contact_id"]].drop_duplicates().shape[0]
    assert list(s.columns) == list(contract.SCORES) + list(EXTRA_SCORE_COLUMNS)
    assert s["score"].between(0, 100).all()
    assert set(s["temperature"]) == set(contract.TEMPERATURES)
    assert set(s["segment"].dropna()) <= set(contract.SEGMENTS) and s["segment"].nunique() >= 5
    assert (s["segment"].isna() == s["segment_since"].isna()).all()
    assert ((s["temperature"] == "hot") == s["hot_since"].notna()).all()
    assert s["next_touch_due"].notna().all() and (s["touches_30d"] >= 0).all()
    assert (s["last_touch_at"].dropna() <= AS_OF).all()
    n_reasons = s["reasons"].str.count("; ") + (s["reasons"] != "")
    assert n_reasons.between(0, CFG.reasons.top_n).all()
    assert ((s["reasons"] == "") == (s["reason_codes"] == "")).all()
    assert not s["reasons"].str.contains(r"\{|\bnan\b|\bNone\b", regex=True).any()


def test_scores_do_not_depend_on_other_contacts(portal):
    contacts, activities, deals, full = portal
    sample = contacts.sample(300, random_state=1)
    keys = set(zip(sample["portal"], sample["contact_id"], strict=True))

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        mask = [k in keys for k in zip(frame["portal"], frame["contact_id"], strict=True)]
        return frame[mask]

    alone = score_contacts(sample, pick(activities), pick(deals), as_of=AS_OF, config=CFG, tz=TZ)
    cols = [
        "portal",
        "contact_id",
        "score",
        "temperature",
        "reason_codes",
        "reasons",
        "last_touch_at",
        "next_touch_due",
        "touches_30d",
    ]
    expected = full.merge(alone[["portal", "contact_id"]])[cols].sort_values(cols[:2])
    pd.testing.assert_frame_equal(
        alone[cols].sort_values(cols[:2]).reset_index(drop=True), expected.reset_index(drop=True)
    )


def test_plan_respects_cap_and_exclusions(portal):
    contacts, _, _, scores = portal
    plan = plan_tasks(scores, contacts, as_of=AS_OF, config=CFG, tz=TZ)
    t = plan.tasks
    assert t["task_key"].is_unique
    assert t.groupby(["portal", "owner_id"]).size().max() <= CFG.tasks.daily_cap
    dnc = set(contacts.loc[contacts["do_not_contact"], "contact_id"])
    assert not set(t["contact_id"]) & dnc
    assert t["owner_id"].notna().all()
    assert plan.skipped["do_not_contact"] > 0 and plan.skipped["no_owner"] > 0
    assert plan.skipped["over_cap"] > 0
