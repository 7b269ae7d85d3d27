"""score_contacts: archetypes, methodology rules (domain.md §1-3), as-of, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring import EXTRA_SCORE_COLUMNS, contract, load_config, score_contacts
from scoring.temperature import round_score
from tests.scoring.builders import AS_OF, TZ, World, build_archetype, world_of

CFG = load_config(None)
ARCHETYPES = [
    "cold",
    "warm",
    "hot",
    "burning",
    "key",
    "at_risk",
    "fan",
    "loyal",
    "difficult",
    "new",
]


def run(w: World, as_of: pd.Timestamp | None = None, **kw) -> pd.DataFrame:
    contacts, activities, deals = w.frames()
    kw.setdefault("tz", TZ)
    out = score_contacts(
        contacts,
        activities,
        deals,
        as_of=as_of if as_of is not None else w.as_of,
        config=CFG,
        **kw,
    )
    return out.set_index("contact_id", drop=False)


@pytest.fixture(scope="module")
def all_scored() -> pd.DataFrame:
    return run(world_of(*ARCHETYPES))


@pytest.mark.parametrize(
    ("name", "temperature", "segment"),
    [
        ("cold", "cold", None),
        ("warm", "warm", "loyal"),
        ("hot", "hot", None),
        ("burning", "hot", "burning"),
        ("key", "warm", "key"),
        ("at_risk", "cold", "at_risk"),
        ("fan", "cold", "fan"),
        ("loyal", "cold", "loyal"),
        ("difficult", "cold", "difficult"),
        ("new", "cold", "new"),
    ],
)
def test_archetype_temperature_and_segment(all_scored, name, temperature, segment):
    row = all_scored.loc[name]
    assert (row.temperature, row.segment) == (temperature, segment)
    assert pd.isna(row.segment_since) == (segment is None)


@pytest.mark.parametrize("name", ARCHETYPES)
def test_archetype_alone_scores_like_in_a_crowd(all_scored, name):
    # a contact's score must not depend on who else is in the portal (except key's top decile)
    alone = run(world_of(name)).loc[name]
    assert alone.score == all_scored.loc[name].score
    assert alone.segment == all_scored.loc[name].segment


def test_output_schema(all_scored):
    assert list(all_scored.columns) == list(contract.SCORES) + list(EXTRA_SCORE_COLUMNS)
    assert all_scored["score"].between(0, 100).all()
    assert (all_scored["score"] == all_scored["score"].round(0)).all()
    assert set(all_scored["temperature"]) <= set(contract.TEMPERATURES)
    assert set(all_scored["segment"].dropna()) <= set(contract.SEGMENTS)
    assert all_scored["trend"].isna().all()  # no previous
    assert all_scored["hot_since"].notna().tolist() == (all_scored["temperature"] == "hot").tolist()
    assert str(all_scored["next_touch_due"].dtype) == "datetime64[ns]"
    assert (all_scored["as_of"] == AS_OF).all()


def test_thresholds_label_the_score(all_scored):
    t = CFG.temperature
    expected = np.select(
        [all_scored.score >= t.hot, all_scored.score >= t.warm], ["hot", "warm"], "cold"
    )
    assert (all_scored.temperature == expected).all()


@pytest.mark.parametrize(
    ("raw", "shown", "temperature"),
    [(69.6, 70.0, "hot"), (69.4, 69.0, "warm"), (34.8, 35.0, "warm"), (34.4, 34.0, "cold")],
)
def test_the_label_follows_the_whole_number_the_rep_sees(raw, shown, temperature):
    # One inbound call today is worth exactly 40 points; the saturation is set so that they
    # make the raw score `raw`. The CRM shows the score as a whole number: the band must agree.
    w = World()
    w.contact("c", created_days_ago=400)
    w.act("c", "call", 0, direction="inbound", outcome="connected", hours=-1)
    k = -40 / np.log(1 - raw / 100)
    contacts, activities, deals = w.frames()
    config = load_config({"temperature": {"saturation_points": float(k)}})
    out = score_contacts(contacts, activities, deals, as_of=AS_OF, config=config, tz=TZ)
    assert out.loc[0, "score"] == shown
    assert out.loc[0, "temperature"] == temperature
    assert f"{out.loc[0, 'score']:.0f}" == f"{shown:.0f}"


def test_scores_round_halves_up():
    got = round_score(np.array([69.5, 34.5, 68.5, 0.49, 0.5, 99.96]))
    assert got.tolist() == [70.0, 35.0, 69.0, 0.0, 1.0, 100.0]


def test_intent_outweighs_volume():
    w = World()
    w.contact("urgent")
    w.act("urgent", "form_submission", 2, direction="inbound", text="URGENT: please send a quote")
    w.contact("opens")
    for day in range(50):
        w.act("opens", "email_open", day % 10, direction="inbound")
    s = run(w)
    assert s.loc["urgent"].score > s.loc["opens"].score
    assert s.loc["urgent"].temperature == "warm"  # 2 days old: already cooled from hot
    assert s.loc["opens"].temperature == "cold"
    assert s.loc["urgent"].reason_codes.split(",")[0] == "urgent_request"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Need it today", True),
        ("Срочно! Сколько стоит?", True),
        ("Kāda ir cena? Vajag šodien", True),
        ("Хочу купить", True),
        ("Just browsing the catalogue", False),
        ("Informācija par produktu", False),
    ],
)
def test_intent_words_in_three_languages(text, intent):
    w = World()
    w.contact("c")
    w.act("c", "form_submission", 0, direction="inbound", text=text)
    code = run(w).loc["c"].reason_codes.split(",")[0]
    assert code == ("urgent_request" if intent else "form_submitted")


@pytest.mark.parametrize(
    ("days_later", "temperature"),
    [(0, "hot"), (3, "hot"), (6, "warm"), (12, "warm"), (40, "cold"), (200, "cold")],
)
def test_hot_cools_without_new_evidence(days_later, temperature):
    w = World()
    w.contact("c")
    w.act("c", "form_submission", 0, direction="inbound", text="Buy today", hours=-2)
    w.act("c", "call", 0, direction="inbound", outcome="connected", hours=-1)
    w.act("c", "meeting", 0, outcome="completed", hours=-1)
    row = run(w, as_of=AS_OF + pd.Timedelta(days=days_later)).loc["c"]
    assert row.temperature == temperature


def test_score_decreases_monotonically_over_time():
    w = world_of("hot")
    scores = [
        run(w, as_of=AS_OF + pd.Timedelta(days=d)).loc["hot"].score for d in (0, 2, 5, 10, 30, 90)
    ]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (dict(type_="call", direction="outbound", outcome="no_answer", n=3), "unanswered_calls"),
        (dict(type_="call", direction="outbound", outcome="busy", n=1), "unanswered_calls"),
        (dict(type_="meeting", outcome="no_show"), "no_show"),
        (dict(type_="meeting", outcome="cancelled"), "meeting_cancelled"),
        (dict(type_="email_bounce", direction="outbound"), "bounced"),
        (dict(type_="unsubscribe", direction="inbound"), "unsubscribed"),
    ],
)
def test_negative_evidence_lowers_the_score(event, code):
    base = world_of("warm")
    worse = world_of("warm")
    worse.act("warm", days_ago=1, **event)
    before, after = run(base).loc["warm"], run(worse).loc["warm"]
    assert after.score < before.score
    assert code in after.reason_codes.split(",")


def test_repeated_unanswered_calls_add_a_penalty():
    def with_calls(n: int) -> float:
        w = world_of("warm")
        w.act("warm", "call", 2, direction="outbound", outcome="no_answer", n=n)
        return run(w).loc["warm"].score

    two, three = with_calls(2), with_calls(3)
    # the third call costs more than the second: the penalty kicks in at 3 within 14 days
    assert (with_calls(1) - two) < (two - three)


def test_rollup_counts_once():
    w = World()
    w.contact("rolled", page_view_count=500)
    w.act("rolled", "page_view", 1, is_rollup=True)
    w.contact("single")
    w.act("single", "page_view", 1)
    w.contact("many")
    w.act("many", "page_view", 1, n=50)
    s = run(w)
    assert s.loc["single"].score < s.loc["rolled"].score < s.loc["many"].score
    assert "Site visits this month: 1" in s.loc["rolled"].reasons


def test_deals_late_stage_outweighs_early_stage():
    w = World()
    for cid, prob in (("late", 0.8), ("early", 0.2), ("unknown", None)):
        w.contact(cid)
        w.deal(cid, "open", 5, prob=prob)
    s = run(w)
    assert s.loc["late"].score > s.loc["early"].score
    assert s.loc["late"].score > s.loc["unknown"].score
    assert s.loc["late"].reason_codes.split(",")[0] == "late_stage_deal"
    assert "80%" in s.loc["late"].reasons


# --- as-of correctness ---------------------------------------------------------------------


def test_events_after_as_of_change_nothing():
    w = world_of(*ARCHETYPES)
    before = run(w)
    later = AS_OF + pd.Timedelta(minutes=1)
    for cid in ("cold", "warm", "new"):
        w.activities.append(
            {
                "activity_id": f"future-{cid}",
                "contact_id": cid,
                "portal": "p1",
                "occurred_at": later,
                "type": "form_submission",
                "direction": "inbound",
                "text": "buy today",
                "is_rollup": False,
            }
        )
    w.deal("cold", "won", -1, closed_days_ago=-2)  # created after as_of
    w.contacts.append(dict(w.contacts[0], contact_id="future", created_at=later))
    after = run(w)
    pd.testing.assert_frame_equal(before, after)


def test_deal_closed_after_as_of_counts_as_open():
    w = World()
    w.contact("c")
    for d in (200, 100):
        w.deal("c", "won", d + 1, closed_days_ago=d, amount=10)
    w.deal("c", "won", 10, closed_days_ago=-5, prob=1.0, amount=10)  # won only in the future
    w.contact("big")  # holds the portal's top decile of amounts
    for d in (150, 50):
        w.deal("big", "won", d + 1, closed_days_ago=d, amount=1000)
    s = run(w).loc["c"]
    assert s.segment is None  # 3 wins in the year would make it key
    codes = s.reason_codes.split(",")
    assert "open_deal" in codes and "late_stage_deal" not in codes  # probability unknown then
    # all reasons rendered: the purchase propensity of a customer outranks an old purchase
    every = score_contacts(
        *w.frames(), as_of=w.as_of, config=load_config({"reasons": {"top_n": 10}}), tz=TZ
    ).set_index("contact_id")
    assert "Bought 100 days ago" in every.loc["c"].reasons
    later = run(w, as_of=AS_OF + pd.Timedelta(days=6)).loc["c"]
    assert later.segment == "key"
    assert "Bought 1 days ago" not in later.reasons and "Bought yesterday" in later.reasons


def test_contacts_created_after_as_of_are_not_scored():
    w = world_of("cold")
    w.contact("later", created_days_ago=-1)
    assert list(run(w).index) == ["cold"]


def test_same_local_day_gives_identical_rows():
    names = [n for n in ARCHETYPES if n != "burning"]  # burning has an event at 15:00 local
    w = world_of(*names)
    morning = pd.Timestamp("2026-11-23 09:00", tz=TZ).tz_convert("UTC")
    night = pd.Timestamp("2026-11-23 23:00", tz=TZ).tz_convert("UTC")
    for cid in names:  # no events between the two runs
        assert not any(
            morning < a["occurred_at"] <= night for a in w.activities if a["contact_id"] == cid
        )
    a, b = run(w, as_of=morning), run(w, as_of=night)
    assert (a["as_of"] != b["as_of"]).all()
    pd.testing.assert_frame_equal(a.drop(columns="as_of"), b.drop(columns="as_of"))


def test_ages_count_local_calendar_days():
    # 23:30 local on the 22nd is 21:30 UTC; as_of 00:30 local on the 23rd: one day old in Riga,
    # zero days old in UTC
    w = World(as_of=pd.Timestamp("2026-11-22 22:30", tz="UTC"))
    w.contact("c")
    w.act("c", "call", 0, direction="inbound", outcome="connected", hours=-1)
    assert run(w, tz=TZ).loc["c"].reasons == "Called us yesterday"
    assert run(w, tz="UTC").loc["c"].reasons == "Called us today"


# --- previous scores: trend and episodes ----------------------------------------------------


@pytest.mark.parametrize(
    ("previous_score", "trend"),
    [(None, None), (0.0, "warming"), (99.9, "cooling"), ("same", "steady"), ("near", "steady")],
)
def test_trend_against_previous(previous_score, trend):
    w = world_of("warm")
    first = run(w)
    prev = first.reset_index(drop=True).copy()
    if previous_score == "same":
        prev["score"] = first["score"].to_numpy()
    elif previous_score == "near":
        prev["score"] = first["score"].to_numpy() - CFG.temperature.trend_band
    elif previous_score is not None:
        prev["score"] = previous_score
    out = run(w, previous=prev if previous_score is not None else None).loc["warm"]
    assert (out.trend if isinstance(out.trend, str) else None) == trend


def test_hot_since_carries_over_a_hot_episode():
    w = world_of("hot", "cold", "warm")
    day1 = run(w, as_of=AS_OF - pd.Timedelta(days=1) + pd.Timedelta(hours=6))
    assert day1.loc["hot"].temperature == "hot"
    midnight1 = pd.Timestamp("2026-11-22", tz=TZ).tz_convert("UTC")
    assert day1.loc["hot"].hot_since == midnight1
    day2 = run(w, previous=day1.reset_index(drop=True))
    assert day2.loc["hot"].hot_since == midnight1
    assert day2.loc["hot"].previous_temperature == "hot"
    assert day2.loc["warm"].segment_since == day1.loc["warm"].segment_since
    assert pd.isna(day2.loc["cold"].hot_since)
    # a previous score that was not hot starts a new episode today
    prev = day1.reset_index(drop=True).assign(temperature="warm")
    day2b = run(w, previous=prev)
    assert day2b.loc["hot"].hot_since == pd.Timestamp("2026-11-23", tz=TZ).tz_convert("UTC")


def test_new_means_recently_created_and_nothing_else():
    w = World()
    for days in (0, 10, 30, 31, 400):
        w.contact(f"age{days}", created_days_ago=days)
    w.contact("old_lead_with_deal", created_days_ago=500)
    w.deal("old_lead_with_deal", "open", 20, prob=0.4)
    w.contact("one_time_buyer", created_days_ago=300)
    w.deal("one_time_buyer", "won", 200, closed_days_ago=200)
    w.contact("young_buyer", created_days_ago=5)
    w.deal("young_buyer", "won", 3, closed_days_ago=3)
    s = run(w)["segment"].to_dict()
    assert s == {
        "age0": "new",
        "age10": "new",
        "age30": "new",
        "age31": None,
        "age400": None,
        "old_lead_with_deal": None,
        "one_time_buyer": None,
        "young_buyer": "new",
    }
    wider = score_contacts(
        *w.frames(), as_of=AS_OF, config=load_config({"segments": {"new_days": 60}}), tz=TZ
    ).set_index("contact_id")
    assert wider.loc["age31", "segment"] == "new" and wider.loc["age400", "segment"] is None


def test_a_contact_leaving_every_segment_has_no_segment_episode():
    w = world_of("cold")
    prev = run(w).reset_index(drop=True).assign(segment="new")
    out = run(w, previous=prev).loc["cold"]
    assert out.segment is None and pd.isna(out.segment_since)


def test_segment_since_resets_when_the_segment_changes():
    w = world_of("new")
    prev = run(w).reset_index(drop=True)
    prev["segment"] = "loyal"
    prev["segment_since"] = pd.Timestamp("2026-01-01", tz="UTC")
    out = run(w, previous=prev).loc["new"]
    assert out.segment_since == pd.Timestamp("2026-11-23", tz=TZ).tz_convert("UTC")
    prev["segment"] = "new"
    assert run(w, previous=prev).loc["new"].segment_since == pd.Timestamp("2026-01-01", tz="UTC")


# --- touches ----------------------------------------------------------------------------------


def test_touch_status():
    w = World()
    w.contact("t")
    w.act("t", "call", 3, direction="outbound", outcome="no_answer")  # a touch: we tried
    w.act("t", "email_sent", 20, direction="outbound")
    w.act("t", "email_sent", 45, direction="outbound")  # outside the 30-day window
    w.act("t", "email_open", 1, direction="inbound")  # not a touch
    w.act("t", "call", 2, direction="inbound", outcome="no_answer")  # missed inbound: no touch
    w.contact("never")
    s = run(w)
    t = s.loc["t"]
    assert t.touches_30d == 2
    assert t.last_touch_at == AS_OF - pd.Timedelta(days=3)
    cadence = CFG.touches.cadence_days[t.temperature]
    assert t.next_touch_due == pd.Timestamp("2026-11-20") + pd.Timedelta(days=cadence)
    assert s.loc["never"].next_touch_due == pd.Timestamp("2026-11-23")
    assert pd.isna(s.loc["never"].last_touch_at) and s.loc["never"].touches_30d == 0


# --- reasons and locales ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "en",
            "Urgent request or price enquiry yesterday; Called us yesterday; "
            "Deal at a late stage (80% likely)",
        ),
        (
            "ru",
            "Срочный запрос или вопрос о цене вчера; Звонил нам вчера; "
            "Сделка на поздней стадии (вероятность 80%)",
        ),
        (
            "lv",
            "Steidzams pieprasījums vai cenas jautājums vakar; Zvanīja mums vakar; "
            "Darījums vēlā stadijā (80% varbūtība)",
        ),
    ],
)
def test_reasons_render_in_locale(locale, expected):
    row = run(world_of("hot"), locale=locale).loc["hot"]
    assert row.reasons == expected
    assert row.reason_codes == "urgent_request,inbound_call,late_stage_deal"


@pytest.mark.parametrize(
    ("days", "en", "ru"),
    [
        (0, "Bought today", "Купил сегодня"),
        (1, "Bought yesterday", "Купил вчера"),
        (17, "Bought 17 days ago", "Купил 17 дн. назад"),
    ],
)
def test_reason_day_variants(days, en, ru):
    w = World()
    w.contact("c")
    w.deal("c", "won", days + 1, closed_days_ago=days)
    assert en in run(w, locale="en").loc["c"].reasons
    assert ru in run(w, locale="ru").loc["c"].reasons


def test_reasons_top_three_strongest_first():
    w = world_of("hot")
    w.act("hot", "page_view", 1, n=3)
    w.act("hot", "email_open", 2, direction="inbound")
    row = run(w).loc["hot"]
    assert len(row.reasons.split("; ")) == 3
    codes = row.reason_codes.split(",")
    assert codes[:3] == ["urgent_request", "inbound_call", "late_stage_deal"]
    assert {"site_visits", "email_engagement"} <= set(codes[3:])


def test_unknown_locale_is_an_error():
    with pytest.raises(ValueError, match="locale"):
        run(world_of("cold"), locale="xx")


def test_vip_and_do_not_contact_pass_through():
    w = World()
    w.contact("v", is_vip=True, do_not_contact=True, owner=None)
    build_archetype(w, "hot")
    s = run(w)
    assert bool(s.loc["v"].is_vip) and bool(s.loc["v"].do_not_contact)
    assert s.loc["v"].owner_id is None and s.loc["hot"].owner_id == "u1"


def test_empty_inputs():
    out = score_contacts(
        contract.empty("contacts"),
        contract.empty("activities"),
        contract.empty("deals"),
        as_of=AS_OF,
        config=CFG,
    )
    assert len(out) == 0
    assert list(out.columns) == list(contract.SCORES) + list(EXTRA_SCORE_COLUMNS)


@pytest.mark.parametrize(
    "as_of",
    [AS_OF, pd.Timestamp("2026-11-23 22:30", tz="UTC")],  # 00:30 on the 24th in Riga
    ids=["afternoon", "local-day-ahead-of-utc"],
)
def test_a_burning_contact_is_due_for_a_touch_today(as_of):
    w = World(as_of=as_of)
    # touched the day it came in, then an urgent request today: the touch is due today
    w.contact("b", created_days_ago=1)
    w.act("b", "email_sent", 1, direction="outbound")
    w.act("b", "form_submission", 0, direction="inbound", text="Urgent: price today", hours=-1)
    # an urgent request we already answered: the cadence runs from our answer
    w.contact("answered", created_days_ago=1)
    w.act("answered", "form_submission", 0, direction="inbound", text="Need a quote", hours=-3)
    w.act("answered", "call", 0, direction="outbound", outcome="connected", hours=-2)
    # not burning (an old contact): unchanged, last touch + the cadence
    build_archetype(w, "hot")
    s = run(w)
    today = as_of.tz_convert(TZ).tz_localize(None).normalize()
    assert s.loc["b"].segment == "burning"
    assert s.loc["b"].next_touch_due == today
    a = s.loc["answered"]
    assert a.segment == "burning"
    answered_on = (as_of - pd.Timedelta(hours=2)).tz_convert(TZ).tz_localize(None).normalize()
    assert a.next_touch_due == answered_on + pd.Timedelta(
        days=CFG.touches.cadence_days[a.temperature]
    )
    h = s.loc["hot"]
    assert h.segment != "burning"
    touched_on = (as_of - pd.Timedelta(days=1)).tz_convert(TZ).tz_localize(None).normalize()
    cadence = CFG.touches.cadence_days[h.temperature]
    assert h.next_touch_due == touched_on + pd.Timedelta(days=cadence)
