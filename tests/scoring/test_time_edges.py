"""Time at the edges of scoring: ages, touches and task due times on the portal's calendar.

Portals at UTC+14 (Pacific/Kiritimati), UTC−11 (Pacific/Pago_Pago) and in two zones with daylight
saving time (Europe/Riga, America/New_York), on the days around each change of 2026 (23- and
25-hour days), at 23:59 and 00:01 local time, with events exactly at local midnight. Every
instant is fixed: nothing here reads the clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from scoring import load_config, plan_tasks, score_contacts
from scoring.features import prepare
from tests.scoring.builders import PORTAL, world_of

CFG = load_config(None)
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Riga", "America/New_York")
# the change days of 2026; the zones without DST take them as ordinary days
CHANGE_DAYS = {
    "Europe/Riga": ("2026-03-29", "2026-10-25"),
    "America/New_York": ("2026-03-08", "2026-11-01"),
    "Pacific/Kiritimati": ("2026-03-08", "2026-12-31"),
    "Pacific/Pago_Pago": ("2026-03-29", "2026-12-31"),
}
ZONE_DAYS = [(tz, day) for tz, changes in CHANGE_DAYS.items() for day in changes]
# one day a zone for the slower end-to-end cases: a 25- and a 23-hour day, and the turn of the year
ONE_DAY = [
    ("Europe/Riga", "2026-10-25"),
    ("America/New_York", "2026-03-08"),
    ("Pacific/Kiritimati", "2026-12-31"),
    ("Pacific/Pago_Pago", "2026-12-31"),
]


def shift(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


def local(day: str, clock: str, tz: str) -> pd.Timestamp:
    """The UTC instant of wall-clock `clock` on `day` in `tz`."""
    return pd.Timestamp(f"{day} {clock}", tz=tz).tz_convert("UTC")


def wall(moment: pd.Timestamp, tz: str) -> str:
    return moment.tz_convert(tz).strftime("%Y-%m-%d %H:%M")


def contact(cid: str, created_at: pd.Timestamp, **kw: Any) -> dict[str, Any]:
    row = {
        "contact_id": cid,
        "portal": PORTAL,
        "created_at": created_at,
        "owner_id": "u1",
        "name": f"Name {cid}",
        "do_not_contact": False,
        "is_vip": False,
    }
    row.update(kw)
    return row


def email_sent(cid: str, at: pd.Timestamp) -> dict[str, Any]:
    return {
        "activity_id": f"a-{cid}",
        "contact_id": cid,
        "portal": PORTAL,
        "occurred_at": at,
        "type": "email_sent",
        "direction": "outbound",
    }


def frames(
    touches: dict[str, pd.Timestamp], created_at: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    contacts = pd.DataFrame([contact(cid, created_at) for cid in touches])
    activities = pd.DataFrame([email_sent(cid, at) for cid, at in touches.items()])
    return contacts, activities, pd.DataFrame()


# (day offset from the change day, wall clock) of each event, and its age in days as of a run on
# the change day (at 00:01 or 23:59) and on the day after (at 00:01)
EVENTS = {
    "two_days_before_noon": ((-2, "12:00"), 2, 3),
    "day_before_2330": ((-1, "23:30"), 1, 2),
    "day_before_last_instant": ((-1, "23:59:59.999999"), 1, 2),
    "midnight": ((0, "00:00"), 0, 1),
    "change_day_0030": ((0, "00:30"), 0, 1),
}


@pytest.mark.parametrize(("tz", "day"), ZONE_DAYS)
@pytest.mark.parametrize("clock", ["00:01", "23:59"])
def test_ages_are_whole_local_days_across_the_change(tz: str, day: str, clock: str) -> None:
    events = {name: local(shift(day, d), t, tz) for name, ((d, t), _, _) in EVENTS.items()}
    contacts, activities, deals = frames(events, local(shift(day, -10), "12:00", tz))
    for as_of, column in ((local(day, clock, tz), 1), (local(shift(day, 1), "00:01", tz), 2)):
        prep = prepare(contacts, activities, deals, as_of, CFG, tz)
        ages = dict(zip(prep.activities["contact_id"], prep.activities["age"], strict=True))
        known = {name for name, at in events.items() if at <= as_of}
        assert ages == {name: EVENTS[name][column] for name in known}, as_of
        assert set(prep.contacts["created_age"]) == {10 + column - 1}


@pytest.mark.parametrize(("tz", "day"), ZONE_DAYS)
def test_next_touch_due_is_the_local_date_of_the_last_touch_plus_the_cadence(
    tz: str, day: str
) -> None:
    touched = {
        "late": local(shift(day, -1), "23:30", tz),
        "early": local(day, "00:30", tz),
        "midnight": local(day, "00:00", tz),
    }
    contacts, activities, deals = frames(touched, local(shift(day, -10), "12:00", tz))
    s = score_contacts(contacts, activities, deals, local(day, "23:59", tz), CFG, tz=tz)
    s = s.set_index("contact_id")
    assert len(set(s["temperature"])) == 1
    for cid, at in touched.items():
        assert s.loc[cid, "last_touch_at"] == at
        cadence = CFG.touches.cadence_days[s.loc[cid, "temperature"]]
        expected = pd.Timestamp(at.tz_convert(tz).date() + timedelta(days=cadence))
        assert s.loc[cid, "next_touch_due"] == expected, cid
    one_day = s.loc["early", "next_touch_due"] - s.loc["late", "next_touch_due"]
    assert one_day == pd.Timedelta(days=1)
    assert s.loc["midnight", "next_touch_due"] == s.loc["early", "next_touch_due"]


@pytest.mark.parametrize(("tz", "day"), ONE_DAY)
def test_an_event_at_the_instant_of_the_as_of_counts_one_after_it_does_not(
    tz: str, day: str
) -> None:
    midnight = local(day, "00:00", tz)
    contacts = pd.DataFrame([contact("c", midnight)])
    activities = pd.DataFrame([email_sent("c", midnight)])
    prep = prepare(contacts, activities, pd.DataFrame(), midnight, CFG, tz)
    assert list(prep.contacts["created_age"]) == [0] and list(prep.activities["age"]) == [0]
    s = score_contacts(contacts, activities, pd.DataFrame(), midnight, CFG, tz=tz)
    assert s.loc[0, "last_touch_at"] == midnight
    before = midnight - pd.Timedelta(microseconds=1)
    assert score_contacts(contacts, activities, pd.DataFrame(), before, CFG, tz=tz).empty


@pytest.mark.parametrize(("tz", "day"), ONE_DAY)
@pytest.mark.parametrize("clock", ["00:01", "23:59"])
def test_an_episode_starts_at_local_midnight_and_its_tasks_are_due_that_local_day(
    tz: str, day: str, clock: str
) -> None:
    as_of = local(day, clock, tz)
    w = world_of("hot", "burning", "cold", as_of=as_of)
    contacts, activities, deals = w.frames()
    s = score_contacts(contacts, activities, deals, as_of, CFG, tz=tz).set_index("contact_id")
    assert s.loc["hot", "temperature"] == "hot" and s.loc["burning", "segment"] == "burning"
    midnight = local(day, "00:00", tz)
    assert s.loc["hot", "hot_since"] == midnight
    assert s.loc["burning", "segment_since"] == midnight
    assert s.loc["burning", "next_touch_due"] == pd.Timestamp(day)

    plan = plan_tasks(s.reset_index(), contacts, as_of, CFG, tz=tz)
    t = plan.tasks.set_index("contact_id")
    assert set(t["period"]) == {day}
    assert t.loc["burning", "due_at"] == as_of + pd.Timedelta(minutes=CFG.tasks.burning_due_minutes)
    hot_due = t.loc["hot", "due_at"]
    if clock == "00:01":
        assert hot_due == as_of + pd.Timedelta(hours=CFG.tasks.same_day_due_hours)
    else:
        assert wall(hot_due, tz) == f"{day} 23:59"
    if "cold" in t.index:
        assert wall(t.loc["cold", "due_at"], tz) == f"{day} 23:59"


def task_row(cid: str, as_of: pd.Timestamp, tz: str, **kw: Any) -> dict[str, Any]:
    today = pd.Timestamp(as_of.tz_convert(tz).date())
    out = {
        "contact_id": cid,
        "portal": PORTAL,
        "as_of": as_of,
        "temperature": "cold",
        "score": 10.0,
        "segment": None,
        "is_vip": False,
        "reason_codes": "",
        "reasons": "",
        "previous_temperature": "cold",
        "hot_since": None,
        "segment_since": None,
        "next_touch_due": today,
        "owner_id": "u1",
        "do_not_contact": False,
        "birthday": None,
    }
    out.update(kw)
    return out


def plan(
    rows: list[dict[str, Any]],
    as_of: pd.Timestamp,
    tz: str,
    history: pd.DataFrame | None = None,
    config: Any = CFG,
) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    contacts = frame[["contact_id", "portal", "owner_id", "do_not_contact", "birthday"]].assign(
        created_at=as_of - pd.Timedelta(days=100), name="Anna", is_vip=False
    )
    result = plan_tasks(
        frame.drop(columns=["birthday"]), contacts, as_of, config, history=history, tz=tz
    )
    return result.tasks.set_index("contact_id")


@pytest.mark.parametrize(
    ("tz", "now", "burning_wall", "hot_wall"),
    [
        # spring forward: 02:00 EST -> 03:00 EDT; 15 and 240 real minutes
        ("America/New_York", "2026-03-08 01:50", "2026-03-08 03:05", "2026-03-08 06:50"),
        ("America/New_York", "2026-03-08 00:01", "2026-03-08 00:16", "2026-03-08 05:01"),
        # fall back: 02:00 EDT -> 01:00 EST
        # (the first 01:50, in EDT: 15 minutes later the clock reads 01:05 again)
        ("America/New_York", "2026-11-01 01:50", "2026-11-01 01:05", "2026-11-01 04:50"),
        # spring forward: 03:00 EET -> 04:00 EEST
        ("Europe/Riga", "2026-03-29 02:50", "2026-03-29 04:05", "2026-03-29 07:50"),
        # fall back: 04:00 EEST -> 03:00 EET
        ("Europe/Riga", "2026-10-25 00:01", "2026-10-25 00:16", "2026-10-25 03:01"),
        ("Europe/Riga", "2026-10-25 21:00", "2026-10-25 21:15", "2026-10-25 23:59"),
        # a burning call at 23:59 is due in the first minutes of the next local day
        ("Pacific/Kiritimati", "2026-12-31 23:59", "2027-01-01 00:14", "2026-12-31 23:59"),
        ("Pacific/Pago_Pago", "2026-12-31 23:59", "2027-01-01 00:14", "2026-12-31 23:59"),
    ],
)
def test_calls_are_due_in_real_minutes_and_hours_across_the_change(
    tz: str, now: str, burning_wall: str, hot_wall: str
) -> None:
    as_of = pd.Timestamp(now).tz_localize(tz, ambiguous=True).tz_convert("UTC")
    midnight = pd.Timestamp(now[:10], tz=tz).tz_convert("UTC")
    rows = [
        task_row("burn", as_of, tz, segment="burning", segment_since=midnight),
        task_row(
            "hot",
            as_of,
            tz,
            temperature="hot",
            score=80.0,
            hot_since=midnight,
            previous_temperature="warm",
        ),
    ]
    t = plan(rows, as_of, tz)
    assert wall(t.loc["burn", "due_at"], tz) == burning_wall
    assert wall(t.loc["hot", "due_at"], tz) == hot_wall
    assert set(t["period"]) == {now[:10]}


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("clock", ["23:59:30", "23:59:59.999999"])
def test_a_task_planned_in_the_last_minute_of_the_day_is_not_due_before_it_was_planned(
    tz: str, clock: str
) -> None:
    day = CHANGE_DAYS[tz][-1]
    as_of = local(day, clock, tz)
    midnight = local(day, "00:00", tz)
    rows = [
        task_row("touch", as_of, tz),
        task_row("review", as_of, tz, segment="difficult", segment_since=midnight),
        task_row("risk", as_of, tz, segment="at_risk", segment_since=midnight),
        task_row(
            "hot",
            as_of,
            tz,
            temperature="hot",
            score=80.0,
            hot_since=midnight,
            previous_temperature="warm",
        ),
    ]
    t = plan(rows, as_of, tz)
    assert set(t.index) == {"touch", "review", "risk", "hot"}
    assert (t["due_at"] >= as_of).all(), t["due_at"]
    assert (t["due_at"] < local(shift(day, 1), "00:00", tz)).all()
    assert set(t["period"]) == {day}


@pytest.mark.parametrize(("tz", "day"), ONE_DAY)
def test_a_birthday_greeting_is_due_at_ten_local_on_the_birthday(tz: str, day: str) -> None:
    birthday = pd.Timestamp("1980" + day[4:])
    ten = local(day, f"{CFG.tasks.birthday_due_hour:02d}:00", tz)
    for as_of, due in (
        (local(shift(day, -1), "23:59", tz), ten),
        (local(day, "00:01", tz), ten),
        (local(day, "23:59", tz), local(day, "23:59", tz)),  # late: due now
    ):
        t = plan([task_row("c", as_of, tz, birthday=birthday)], as_of, tz)
        assert list(t["rule"]) == ["birthday"] and t.loc["c", "period"] == day[:4]
        assert t.loc["c", "due_at"] == due, as_of
    # the day after, the next birthday is a year away: a plain touch
    after = local(shift(day, 1), "00:01", tz)
    t = plan([task_row("c", after, tz, birthday=birthday)], after, tz)
    assert list(t["rule"]) == ["touch"]


@pytest.mark.parametrize(
    ("tz", "due_utc"),
    [
        ("Pacific/Kiritimati", "2027-02-27 20:00"),
        ("Pacific/Pago_Pago", "2027-02-28 21:00"),
        ("Europe/Riga", "2027-02-28 08:00"),
        ("America/New_York", "2027-02-28 15:00"),
    ],
)
def test_a_29_february_birthday_is_greeted_on_28_february_in_a_common_year(
    tz: str, due_utc: str
) -> None:
    birthday = pd.Timestamp("1996-02-29")
    as_of = local("2027-02-27", "23:59", tz)
    t = plan([task_row("c", as_of, tz, birthday=birthday)], as_of, tz)
    assert (t.loc["c", "rule"], t.loc["c", "period"]) == ("birthday", "2027")
    assert t.loc["c", "due_at"] == pd.Timestamp(due_utc, tz="UTC")
    assert wall(t.loc["c", "due_at"], tz) == "2027-02-28 10:00"
    leap = local("2028-02-28", "23:59", tz)
    t = plan([task_row("c", leap, tz, birthday=birthday)], leap, tz)
    assert wall(t.loc["c", "due_at"], tz) == "2028-02-29 10:00"


@pytest.mark.parametrize(("tz", "day"), ONE_DAY)
def test_the_daily_cap_counts_the_tasks_of_the_local_day(tz: str, day: str) -> None:
    config = load_config({"tasks": {"daily_cap": 1}})
    as_of = local(day, "00:01", tz)
    rows = [
        task_row("c", as_of, tz),
        task_row("x", as_of, tz, next_touch_due=pd.Timestamp(shift(day, 9))),
    ]
    call = {"task_key": "p1:x:call_now:y", "contact_id": "x", "rule": "call_now"}
    # a call created for the same owner two minutes ago, yesterday: today's slot is free
    yesterday = pd.DataFrame([{**call, "created_at": local(shift(day, -1), "23:59", tz)}])
    assert list(plan(rows, as_of, tz, yesterday, config)["rule"]) == ["touch"]
    # the same call at midnight took today's slot
    today = pd.DataFrame([{**call, "created_at": local(day, "00:00", tz)}])
    assert plan(rows, as_of, tz, today, config).empty
