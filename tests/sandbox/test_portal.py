"""The neutral demo portal: determinism, contract conformance, archetype mix and evidence."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from sandbox.portal import ARCHETYPES, generate_portal
from scoring import contract

ANCHOR = date(2026, 5, 1)


@pytest.fixture(scope="module")
def portal():
    return generate_portal(2000, seed=7, anchor=ANCHOR)


def test_deterministic_for_seed_size_anchor(portal) -> None:
    again = generate_portal(2000, seed=7, anchor=ANCHOR)
    pd.testing.assert_frame_equal(portal.contacts, again.contacts)
    pd.testing.assert_frame_equal(portal.activities, again.activities)
    pd.testing.assert_frame_equal(portal.deals, again.deals)
    other = generate_portal(2000, seed=8, anchor=ANCHOR)
    assert not portal.contacts["name"].equals(other.contacts["name"])
    shifted = generate_portal(2000, seed=7, anchor=date(2026, 5, 11))
    delta = shifted.activities["occurred_at"] - portal.activities["occurred_at"]
    assert (delta == pd.Timedelta(days=10)).all()


def test_tables_conform_to_contract(portal) -> None:
    for table, frame in (
        ("contacts", portal.contacts),
        ("activities", portal.activities),
        ("deals", portal.deals),
    ):
        pd.testing.assert_frame_equal(contract.conform(frame, table), frame)
        assert frame[list(contract.KEYS[table])].duplicated().sum() == 0
    assert set(portal.activities["type"]) == set(contract.ACTIVITY_TYPES)
    assert set(portal.deals["status"]) == set(contract.DEAL_STATUSES)
    assert set(portal.contacts["source"]) <= set(contract.SOURCES)
    calls = portal.activities[portal.activities["type"] == "call"]
    assert set(calls["outcome"]) == set(contract.CALL_OUTCOMES)
    assert calls["direction"].isin(contract.DIRECTIONS).all()
    meetings = portal.activities[portal.activities["type"] == "meeting"]
    assert set(meetings["outcome"]) >= {"scheduled", "completed", "no_show", "cancelled"}
    assert portal.contacts["email"].dropna().is_unique


def test_archetype_mix_and_population_shares(portal) -> None:
    contacts = portal.contacts
    counts = contacts["archetype"].value_counts()
    assert set(counts.index) == set(ARCHETYPES)
    assert counts["cold"] == 600 and counts["burning"] == 60
    assert len(portal.owners) == 8
    assert 0.03 < contacts["owner_id"].isna().mean() < 0.07
    assert 0.015 < contacts["do_not_contact"].mean() < 0.05
    assert 0.03 < contacts["is_vip"].mean() < 0.08
    bday = contacts["birthday"].dropna()
    assert 0.55 < len(bday) / len(contacts) < 0.65
    assert (bday.dt.year == contract.BIRTHDAY_UNKNOWN_YEAR).any()
    this_year = pd.to_datetime(
        {"year": 2026, "month": bday.dt.month, "day": bday.dt.day.where(bday.dt.day < 29, 28)}
    )
    soon = (this_year >= pd.Timestamp(ANCHOR)) & (
        this_year < pd.Timestamp(ANCHOR) + pd.Timedelta(days=14)
    )
    assert soon.sum() >= 40
    for script in ("[А-Яа-я]", "[āēīūņšžļķģč]", "^[A-Za-z ]+$"):
        assert contacts["name"].str.contains(script).any()


def test_history_is_relative_to_anchor(portal) -> None:
    anchor = portal.anchor_ts
    acts = portal.activities.merge(portal.contacts[["contact_id", "created_at"]], on="contact_id")
    assert (acts["occurred_at"] >= acts["created_at"]).all()
    assert (acts["occurred_at"] > anchor - pd.Timedelta(days=800)).all()
    future = acts[acts["occurred_at"] > anchor]
    assert len(future) > 0
    assert set(future["type"]) == {"meeting"} and set(future["outcome"]) == {"scheduled"}
    deals = portal.deals
    assert (deals["closed_at"].dropna() <= anchor).all()
    assert (deals.dropna(subset=["closed_at"]).eval("created_at <= closed_at")).all()


def _by_archetype(portal, archetype: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    c = portal.contacts[portal.contacts["archetype"] == archetype]
    a = portal.activities[portal.activities["contact_id"].isin(c["contact_id"])]
    d = portal.deals[portal.deals["contact_id"].isin(c["contact_id"])]
    return c, a, d


URGENT = "today|urgent|asap|сегодня|срочно|šodien|steidzami|need a quote"


def test_hot_and_burning_evidence(portal) -> None:
    anchor = portal.anchor_ts
    for archetype, days in (("hot", 3), ("burning", 2)):
        c, a, d = _by_archetype(portal, archetype)
        recent = a[
            (a["occurred_at"] > anchor - pd.Timedelta(days=days)) & (a["occurred_at"] <= anchor)
        ]
        urgent = recent[recent["text"].fillna("").str.lower().str.contains(URGENT)]
        assert set(urgent["contact_id"]) == set(c["contact_id"]), archetype
        assert (d["status"] != "won").all()
    c, _, d = _by_archetype(portal, "burning")
    assert (c["created_at"] > anchor - pd.Timedelta(days=7)).all()
    assert set(c["source"]) == {"paid_search", "organic_search"}
    _, _, d = _by_archetype(portal, "hot")
    assert (d.loc[d["status"] == "open", "stage_probability"] >= 0.6).all()
    _, _, d = _by_archetype(portal, "warm")
    assert (d["stage_probability"] <= 0.3).all() and (d["status"] == "open").all()


def _won_stats(deals: pd.DataFrame, anchor: pd.Timestamp) -> pd.DataFrame:
    won = deals[deals["status"] == "won"].sort_values("closed_at")
    gaps = won.groupby("contact_id")["closed_at"].diff().dt.total_seconds() / 86400
    won = won.assign(gap=gaps)
    return won.groupby("contact_id").agg(
        n=("deal_id", "size"),
        n365=("closed_at", lambda s: int((s > anchor - pd.Timedelta(days=365)).sum())),
        median_gap=("gap", "median"),
        last=("closed_at", "max"),
    )


def test_customer_segments_evidence(portal) -> None:
    anchor = portal.anchor_ts
    c, _, d = _by_archetype(portal, "key")
    stats = _won_stats(d, anchor)
    assert len(stats) == len(c) and (stats["n365"] >= 4).all()
    since = (anchor - stats["last"]).dt.total_seconds() / 86400
    assert (since < stats["median_gap"] * 1.5).all()

    c, a, d = _by_archetype(portal, "at_risk")
    stats = _won_stats(d, anchor)
    assert len(stats) == len(c) and (stats["n"] >= 4).all()
    since = (anchor - stats["last"]).dt.total_seconds() / 86400
    assert (since > 2.5 * stats["median_gap"]).all()

    c, a, d = _by_archetype(portal, "difficult")
    assert (d[d["status"] == "won"].groupby("contact_id").size() >= 2).all()
    problems = a[a["type"].isin(["complaint", "payment_late", "refund"])]
    assert set(problems["contact_id"]) == set(c["contact_id"])

    c, a, d = _by_archetype(portal, "fan")
    assert (d[d["status"] == "won"].groupby("contact_id").size() <= 1).all()
    assert a["type"].isin(["event_attended", "social_engagement", "referral"]).sum() >= 5 * len(c)

    for archetype in ("loyal", "new", "cold", "warm", "burning"):
        _, _, d = _by_archetype(portal, archetype)
        assert (d["status"] != "won").all(), archetype
    c, a, d = _by_archetype(portal, "new")
    age = (anchor - c["created_at"]).dt.days
    assert age.between(7, 60).all() and d.empty


def test_cold_has_no_recent_inbound(portal) -> None:
    anchor = portal.anchor_ts
    _, a, _ = _by_archetype(portal, "cold")
    inbound = a[
        a["type"].isin(["page_view", "email_open", "email_click", "form_submission", "email_reply"])
        | (a["direction"] == "inbound")
    ]
    assert (inbound["occurred_at"] < anchor - pd.Timedelta(days=90)).all()
    calls = a[a["type"] == "call"]
    assert (calls["outcome"] != "connected").all()


def test_large_portal_generates_quickly() -> None:
    import time

    start = time.perf_counter()
    big = generate_portal(20_000, seed=3, anchor=ANCHOR)
    elapsed = time.perf_counter() - start
    assert len(big.contacts) == 20_000 and elapsed < 60  # a guard, not a speed figure
    assert np.isin(ARCHETYPES, big.contacts["archetype"].unique()).all()
