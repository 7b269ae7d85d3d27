"""Leads ranked by what they did, not by how much we contacted them; customers by their own
purchase rhythm; every text reps read exists in en, ru and lv."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import yaml

from scoring import load_config, score_contacts
from scoring.explain import LOCALES_DIR
from scoring.temperature import customer_propensity
from tests.scoring.builders import TZ, World

CFG = load_config(None)


def run(w: World, config: Any = CFG) -> pd.DataFrame:
    return score_contacts(*w.frames(), as_of=w.as_of, config=config, tz=TZ).set_index("contact_id")


OUTREACH = [
    dict(type_="email_sent", direction="outbound"),
    dict(type_="email_sent", direction=None),
    dict(type_="email_reply", direction="outbound", text="Our price for you today"),
    dict(type_="call", direction="outbound", outcome="connected"),
    dict(type_="call", direction=None, outcome="connected"),
    dict(type_="call", direction="outbound", outcome="voicemail"),
    dict(type_="sms", direction="outbound", text="Buy today, urgent offer"),
    dict(type_="chat_message", direction="outbound", text="Ready to order?"),
]


@pytest.mark.parametrize("event", OUTREACH)
def test_our_outreach_is_a_touch_not_interest(event):
    w = World()
    w.contact("lead", created_days_ago=40)
    w.act("lead", days_ago=1, n=5, **event)
    s = run(w).loc["lead"]
    assert s.score == 0.0 and s.temperature == "cold"
    assert s.touches_30d == 5  # still touches
    assert s.reason_codes in ("", "no_activity")


def test_leads_rank_by_what_they_did():
    w = World()
    w.contact("pestered", created_days_ago=40)
    for d in range(1, 20):
        w.act("pestered", "email_sent", d, direction="outbound")
        w.act("pestered", "call", d, direction="outbound", outcome="connected")
        w.act("pestered", "sms", d, direction="outbound")
    w.contact("asked", created_days_ago=40)
    w.act("asked", "email_reply", 2, direction="inbound", text="What would it cost?")
    w.act("asked", "page_view", 2, n=3)
    w.contact("visited", created_days_ago=40)
    w.act("visited", "web_session", 3, n=2)
    s = run(w)
    assert s.loc["asked", "score"] > s.loc["visited", "score"] > s.loc["pestered", "score"] == 0
    assert s.loc["pestered", "touches_30d"] > s.loc["asked", "touches_30d"]


def test_unanswered_outreach_still_counts_against():
    w = World()
    w.contact("x", created_days_ago=40)
    w.act("x", "form_submission", 3, direction="inbound")
    w.contact("y", created_days_ago=40)
    w.act("y", "form_submission", 3, direction="inbound")
    w.act("y", "call", 2, direction="outbound", outcome="no_answer", n=3)
    s = run(w)
    assert s.loc["y", "score"] < s.loc["x", "score"]


def customer(w: World, cid: str, purchase_days_ago: list[int], amount: float = 100.0) -> None:
    w.contact(cid, created_days_ago=max(purchase_days_ago) + 1)
    for d in purchase_days_ago:
        w.deal(cid, "won", d, closed_days_ago=d, amount=amount)


def test_customer_temperature_follows_their_rhythm():
    w = World()
    customer(w, "regular", [10, 40, 70, 100, 130, 160])  # every 30 days, last 10 days ago
    customer(w, "lapsed", [190, 220, 250, 280, 310, 340])  # same rhythm, silent for 190 days
    customer(w, "once_recent", [10])
    customer(w, "once_old", [300])
    customer(w, "slow", [10, 190, 370])  # every 180 days
    s = run(w)
    sc = s["score"]
    assert sc["regular"] > sc["slow"] > sc["once_recent"] > sc["once_old"]
    assert sc["regular"] > sc["lapsed"]
    assert s.loc["lapsed", "segment"] == "at_risk"
    assert s.loc["regular", "segment"] == "key"
    assert "likely_to_buy_again" in s.loc["regular", "reason_codes"].split(",")
    assert "Good chance of buying again soon" in s.loc["regular", "reasons"]


@pytest.mark.parametrize(
    ("locale", "low", "medium", "high"),
    [
        (
            "en",
            "Unlikely to buy again soon (6%)",
            "Might buy again soon (19%)",
            "Good chance of buying again soon (46%)",
        ),
        (
            "ru",
            "Мало шансов, что скоро купит снова (6%)",
            "Может скоро купить снова (19%)",
            "Хорошие шансы, что скоро купит снова (46%)",
        ),
        (
            "lv",
            "Maz ticams, ka drīz pirks atkal (6%)",
            "Iespējams, drīz pirks atkal (19%)",
            "Labas izredzes, ka drīz pirks atkal (46%)",
        ),
    ],
)
def test_buy_again_wording_follows_the_size_of_the_chance(locale, low, medium, high):
    w = World()
    customer(w, "once_old", [300])  # 6 %
    customer(w, "slow", [10, 190, 370])  # 19 %
    customer(w, "regular", [10, 40, 70, 100, 130, 160])  # 46 %
    config = load_config({"reasons": {"top_n": 10}})
    s = score_contacts(*w.frames(), as_of=w.as_of, config=config, locale=locale, tz=TZ)
    texts = s.set_index("contact_id")["reasons"].str.split("; ")
    assert low in texts["once_old"]
    assert medium in texts["slow"]
    assert high in texts["regular"]
    lower = load_config({"reasons": {"top_n": 10, "chance_high": 19}})
    s = score_contacts(*w.frames(), as_of=w.as_of, config=lower, locale="en", tz=TZ)
    assert (
        "Good chance of buying again soon (19%)" in s.set_index("contact_id").loc["slow", "reasons"]
    )


def test_two_deals_on_one_day_are_one_purchase():
    w = World()
    customer(w, "a", [10, 50])
    w.deal("a", "won", 10, closed_days_ago=10, amount=100)  # a second order the same day
    customer(w, "b", [10, 50], amount=200.0)
    s = run(w)
    # same rhythm; spend is off by default, so same score
    assert s.loc["a", "score"] == s.loc["b", "score"]


def test_spend_factor_needs_a_reference_and_is_bounded():
    hist = pd.DataFrame(
        {"x": [2.0, 2.0, 2.0, 2.0], "T": [100.0] * 4, "recency": [10.0] * 4},
        index=pd.RangeIndex(4),
    ).assign(value=[10.0, 100.0, 10_000.0, float("nan")])
    off = customer_propensity(hist, CFG)
    assert off["factor"].tolist() == [1.0, 1.0, 1.0, 1.0]
    cfg = load_config({"customers": {"value_reference": 100, "value_exponent": 0.5}})
    on = customer_propensity(hist, cfg)
    # 0.1 ** 0.5 and 100 ** 0.5 are bounded to [1/2, 2]; an unknown value is neutral
    assert on["factor"].tolist() == pytest.approx([0.5, 1.0, 2.0, 1.0])
    assert (on["p"] == off["p"]).all() and (on["p"] > 0).all() and (on["p"] < 1).all()


def _keys(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        out: set[str] = set()
        for k, v in node.items():
            out |= _keys(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip(".")}


def _placeholders(node: Any, prefix: str = "") -> dict[str, set[str]]:
    import re

    if isinstance(node, dict):
        out: dict[str, set[str]] = {}
        for k, v in node.items():
            out.update(_placeholders(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): set(re.findall(r"\{[a-z_]+\}", str(node)))}


@pytest.mark.parametrize("locale", ["ru", "lv"])
def test_every_english_text_exists_in_each_locale(locale):
    en = yaml.safe_load((LOCALES_DIR / "en.yaml").read_text(encoding="utf-8"))
    other = yaml.safe_load((LOCALES_DIR / f"{locale}.yaml").read_text(encoding="utf-8"))
    assert _keys(en) - _keys(other) == set()
    en_ph, other_ph = _placeholders(en), _placeholders(other)
    for key, names in en_ph.items():
        assert other_ph.get(key) == names, key


def test_every_reason_code_has_a_text():
    en = yaml.safe_load((LOCALES_DIR / "en.yaml").read_text(encoding="utf-8"))
    codes = {r.code for r in CFG.signals} | {CFG.customers.code, CFG.unanswered_penalty.code}
    codes |= {"late_stage_deal", "open_deal", "purchased_recently"}
    assert codes - set(en["reasons"]) == set()
