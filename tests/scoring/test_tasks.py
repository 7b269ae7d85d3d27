"""plan_tasks: rules, periods and dedupe, cooldowns, exclusions, the daily cap, texts."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from scoring import TASK_COLUMNS, load_config, plan_tasks, score_contacts
from tests.scoring.builders import AS_OF, PORTAL, TZ, world_of

CFG = load_config(None)
TODAY = pd.Timestamp("2026-11-23")  # local date of AS_OF in Riga
MIDNIGHT = pd.Timestamp("2026-11-23", tz=TZ).tz_convert("UTC")


def row(cid: str, **kw: Any) -> dict[str, Any]:
    out = {
        "contact_id": cid,
        "portal": PORTAL,
        "as_of": AS_OF,
        "temperature": "cold",
        "score": 10.0,
        "segment": "new",
        "is_vip": False,
        "reason_codes": "site_visits",
        "reasons": "Site visits this month: 2",
        "previous_temperature": "cold",
        "hot_since": None,
        "segment_since": MIDNIGHT,
        "next_touch_due": TODAY,
        "owner_id": "u1",
        "do_not_contact": False,
        "birthday": None,
    }
    out.update(kw)
    if out["temperature"] == "hot" and out["hot_since"] is None:
        out["hot_since"] = MIDNIGHT
    return out


def plan(
    rows: list[dict[str, Any]],
    history: pd.DataFrame | None = None,
    config=CFG,
    as_of: pd.Timestamp = AS_OF,
    locale: str = "en",
):
    frame = pd.DataFrame(rows)
    contacts = frame[["contact_id", "portal", "owner_id", "do_not_contact", "birthday"]].assign(
        created_at=AS_OF - pd.Timedelta(days=100),
        name="Anna " + frame["contact_id"],
        is_vip=frame["is_vip"],
    )
    scores = frame.drop(columns=["birthday"])
    return plan_tasks(
        scores, contacts, as_of=as_of, config=config, history=history, locale=locale, tz=TZ
    )


def history(*entries: tuple[str, str, str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"task_key": k, "contact_id": c, "rule": r, "created_at": t} for k, c, r, t in entries],
        columns=["task_key", "contact_id", "rule", "created_at"],
    )


@pytest.mark.parametrize(
    ("fields", "rules"),
    [
        (dict(temperature="hot", score=80.0, previous_temperature="warm"), ["call_now"]),
        (dict(temperature="hot", score=80.0, previous_temperature=None), ["call_now"]),
        (
            dict(
                temperature="hot",
                score=80.0,
                previous_temperature="hot",
                next_touch_due=TODAY + pd.Timedelta(days=1),
            ),
            [],
        ),
        (dict(segment="at_risk"), ["at_risk"]),  # the retention call is the touch
        (dict(segment="difficult", next_touch_due=TODAY + pd.Timedelta(days=3)), ["review"]),
        (dict(segment="difficult"), ["review", "touch"]),
        (dict(next_touch_due=TODAY - pd.Timedelta(days=4)), ["touch"]),
        (dict(next_touch_due=TODAY + pd.Timedelta(days=1)), []),
        (dict(birthday=pd.Timestamp("1904-11-30")), ["birthday"]),
        (dict(birthday=pd.Timestamp("1904-12-20")), ["touch"]),
        (
            dict(birthday=pd.Timestamp("1980-11-30"), next_touch_due=TODAY + pd.Timedelta(days=2)),
            [],
        ),
    ],
)
def test_rules(fields, rules):
    tasks = plan([row("c", **fields)]).tasks
    assert tasks["rule"].tolist() == rules


def test_columns_keys_and_types():
    p = plan([row("a", temperature="hot", score=90.0, previous_temperature="cold"), row("b")])
    t = p.tasks
    assert list(t.columns) == TASK_COLUMNS
    assert t["task_key"].tolist() == ["p1:a:call_now:2026-11-23", "p1:b:touch:2026-11-23"]
    assert t["priority"].tolist() == ["HIGH", "LOW"]
    assert t["task_type"].tolist() == ["CALL", "EMAIL"]
    assert str(t["due_at"].dtype) == "datetime64[ns, UTC]"
    assert p.skipped == {"do_not_contact": 0, "no_owner": 0, "over_cap": 0, "already_done": 0}


def test_call_now_due_times():
    t = plan(
        [
            row(
                "burn", temperature="hot", score=75.0, segment="burning", previous_temperature=None
            ),
            row("hot", temperature="hot", score=90.0, previous_temperature="warm"),
        ]
    ).tasks.set_index("contact_id")
    assert t.loc["burn", "due_at"] == AS_OF + pd.Timedelta(minutes=15)
    end_of_day = pd.Timestamp("2026-11-23 23:59", tz=TZ).tz_convert("UTC")
    assert AS_OF < t.loc["hot", "due_at"] <= end_of_day
    assert "right away" in t.loc["burn", "subject"]
    body = t.loc["hot", "body"]
    assert "Why:\n- Site visits this month: 2" in body and "score 90" in body


def test_call_now_once_per_hot_episode():
    earlier = pd.Timestamp("2026-11-20", tz=TZ).tz_convert("UTC")
    first = plan(
        [row("c", temperature="hot", score=80.0, previous_temperature="cold", hot_since=earlier)]
    )
    key = "p1:c:call_now:2026-11-20"  # period = the day the episode started
    assert first.tasks["task_key"].tolist() == [key]
    # the same episode seen again without a previous score (e.g. a re-run): already done
    again = plan(
        [
            row(
                "c",
                temperature="hot",
                score=80.0,
                previous_temperature=None,
                hot_since=earlier,
                next_touch_due=TODAY + pd.Timedelta(days=1),
            )
        ],
        history=history((key, "c", "call_now", AS_OF - pd.Timedelta(days=3))),
    )
    assert again.tasks.empty
    assert again.skipped["already_done"] == 1
    # a new episode gets a new call
    new = plan(
        [
            row(
                "c",
                temperature="hot",
                score=80.0,
                previous_temperature="warm",
                next_touch_due=TODAY + pd.Timedelta(days=1),
            )
        ],
        history=history((key, "c", "call_now", AS_OF - pd.Timedelta(days=3))),
    )
    assert new.tasks["task_key"].tolist() == ["p1:c:call_now:2026-11-23"]


def test_at_risk_once_per_episode():
    since = pd.Timestamp("2026-10-01", tz=TZ).tz_convert("UTC")
    key = "p1:c:at_risk:2026-10-01"
    assert plan([row("c", segment="at_risk", segment_since=since)]).tasks["task_key"].tolist() == [
        key
    ]
    done = plan(
        [row("c", segment="at_risk", segment_since=since)],
        history=history((key, "c", "at_risk", since)),
    )
    # the retention call was made in this episode: no new call, the regular touch goes on
    assert done.tasks["rule"].tolist() == ["touch"]
    assert done.skipped["already_done"] == 1


@pytest.mark.parametrize(
    ("rule", "fields", "days_ago", "created"),
    [
        ("touch", {}, 10, False),
        ("touch", {}, 29, False),
        ("touch", {}, 30, True),
        (
            "review",
            dict(segment="difficult", next_touch_due=TODAY + pd.Timedelta(days=5)),
            60,
            False,
        ),
        (
            "review",
            dict(segment="difficult", next_touch_due=TODAY + pd.Timedelta(days=5)),
            95,
            True,
        ),
    ],
)
def test_cooldowns(rule, fields, days_ago, created):
    when = AS_OF - pd.Timedelta(days=days_ago)
    day = (TODAY - pd.Timedelta(days=days_ago)).strftime("%Y-%m-%d")
    p = plan([row("c", **fields)], history=history((f"p1:c:{rule}:{day}", "c", rule, when)))
    assert (p.tasks["rule"] == rule).any() == created
    assert p.skipped["already_done"] == (0 if created else 1)


@pytest.mark.parametrize("rule", ["call_now", "at_risk", "birthday"])
def test_a_recent_call_or_birthday_task_counts_as_the_touch(rule):
    # Same day, second run: the call created in the first run covered the touch; it must not
    # turn into a separate touch task now that the call itself is already done.
    h = history((f"p1:c:{rule}:2026-11-23", "c", rule, AS_OF - pd.Timedelta(hours=1)))
    p = plan([row("c", next_touch_due=TODAY - pd.Timedelta(days=3))], history=h)
    assert "touch" not in p.tasks["rule"].tolist()
    later = plan(
        [row("c", next_touch_due=TODAY - pd.Timedelta(days=3))],
        history=history((f"p1:c:{rule}:2026-10-01", "c", rule, AS_OF - pd.Timedelta(days=40))),
    )
    assert "touch" in later.tasks["rule"].tolist()


def test_history_of_another_contact_or_rule_does_not_suppress():
    h = history(
        ("p1:other:touch:2026-11-20", "other", "touch", AS_OF - pd.Timedelta(days=3)),
        ("p1:c:review:2026-11-20", "c", "review", AS_OF - pd.Timedelta(days=3)),
    )
    assert plan([row("c")], history=h).tasks["rule"].tolist() == ["touch"]


def test_exclusions_are_counted():
    rows = [
        row("dnc1", do_not_contact=True, temperature="hot", score=90.0, previous_temperature=None),
        row("dnc2", do_not_contact=True),
        row("orphan", owner_id=None),
        row("ok"),
    ]
    p = plan(rows)
    assert p.tasks["contact_id"].tolist() == ["ok"]
    assert p.skipped == {"do_not_contact": 2, "no_owner": 1, "over_cap": 0, "already_done": 0}


def test_daily_cap_hottest_first():
    cfg = load_config({"tasks": {"daily_cap": 3}})
    rows = [row(f"t{i}", score=float(i)) for i in range(5)]
    rows += [row("h", temperature="hot", score=75.0, previous_temperature="warm")]
    rows += [row(f"o{i}", owner_id="u2") for i in range(2)]
    p = plan(rows, config=cfg)
    u1 = p.tasks[p.tasks["owner_id"] == "u1"]
    assert u1["contact_id"].tolist() == ["h", "t4", "t3"]
    assert (p.tasks["owner_id"] == "u2").sum() == 2
    assert p.skipped["over_cap"] == 3


def test_daily_cap_counts_tasks_created_earlier_today():
    cfg = load_config({"tasks": {"daily_cap": 3}})
    rows = [row(f"t{i}", score=float(i)) for i in range(5)] + [row("x", owner_id="u2")]
    earlier = AS_OF - pd.Timedelta(hours=3)
    h = history(
        ("p1:x:review:2026-11-23", "x", "review", earlier),
        ("p1:t0:call_now:2026-11-23", "t0", "call_now", earlier),
        ("p1:t1:call_now:2026-11-22", "t1", "call_now", earlier - pd.Timedelta(days=1)),
    )
    p = plan(rows, history=h, config=cfg)
    # t0 and t1 had calls (touches) recently; of t2..t4 only two fit beside t0's call today.
    assert p.tasks[p.tasks["owner_id"] == "u1"]["contact_id"].tolist() == ["t4", "t3"]
    assert p.skipped["over_cap"] == 1
    # t1's touch waits out the cooldown of yesterday's call; t0's call today *is* its touch, as
    # it was in the run that created it, so it is not a skipped task at all.
    assert p.skipped["already_done"] == 1


def test_birthday_once_a_year_and_across_new_year():
    as_of = pd.Timestamp("2026-12-27 10:00", tz="UTC")
    today = pd.Timestamp("2026-12-27")
    p = plan([row("c", birthday=pd.Timestamp("1990-01-05"), next_touch_due=today)], as_of=as_of)
    t = p.tasks.iloc[0]
    assert (t["rule"], t["period"], t["task_key"]) == ("birthday", "2027", "p1:c:birthday:2027")
    assert t["due_at"] == pd.Timestamp("2027-01-05 10:00", tz=TZ).tz_convert("UTC")
    assert t["subject"] == "Birthday on 05.01: congratulate Anna c"
    again = plan(
        [row("c", birthday=pd.Timestamp("1990-01-05"), next_touch_due=today)],
        as_of=as_of + pd.Timedelta(days=2),
        history=history(("p1:c:birthday:2027", "c", "birthday", as_of)),
    )
    assert again.tasks.empty and again.skipped["already_done"] == 1


def test_birthday_on_29_february():
    as_of = pd.Timestamp("2027-02-20 10:00", tz="UTC")
    p = plan(
        [row("c", birthday=pd.Timestamp("1904-02-29"), next_touch_due=pd.Timestamp("2027-02-20"))],
        as_of=as_of,
    )
    assert p.tasks.iloc[0]["subject"].startswith("Birthday on 28.02")


@pytest.mark.parametrize(
    ("fields", "subject", "task_type"),
    [
        (dict(is_vip=True, segment="key"), "Personal call to VIP Anna c", "CALL"),
        (dict(segment="key"), "Early access for Anna c", "CALL"),
        (dict(segment="fan"), "Ask Anna c for their opinion", "EMAIL"),
        (dict(segment="loyal"), "Send Anna c something useful", "EMAIL"),
        (dict(segment="new", temperature="cold"), "Gentle check-in with Anna c", "EMAIL"),
        (dict(segment=None, temperature="cold"), "Gentle check-in with Anna c", "EMAIL"),
        (
            dict(segment=None, temperature="warm", score=40.0),
            "Talk to Anna c about their needs",
            "CALL",
        ),
        (dict(segment=None, is_vip=True), "Personal call to VIP Anna c", "CALL"),
        (
            dict(segment="new", temperature="warm", score=40.0),
            "Talk to Anna c about their needs",
            "CALL",
        ),
    ],
)
def test_touch_suggestion_by_vip_segment_and_temperature(fields, subject, task_type):
    t = plan([row("c", **fields)]).tasks.iloc[0]
    assert (t["rule"], t["subject"], t["task_type"]) == ("touch", subject, task_type)


@pytest.mark.parametrize(
    ("locale", "subject", "header"),
    [
        ("en", "Call now: Anna c is hot", "Why:"),
        ("ru", "Позвонить сейчас: Anna c — горячий", "Почему:"),
        ("lv", "Zvanīt tagad: Anna c ir karsts", "Kāpēc:"),
    ],
)
def test_task_texts_in_locale(locale, subject, header):
    t = plan(
        [row("c", temperature="hot", score=88.0, previous_temperature="warm")], locale=locale
    ).tasks.iloc[0]
    assert t["subject"] == subject
    assert header in t["body"]


def test_deterministic_order():
    rows = [row(f"c{i}", score=float(i % 3)) for i in range(12)]
    rows += [row("h", temperature="hot", score=71.0, previous_temperature=None)]
    a = plan(rows).tasks
    b = plan(list(reversed(rows))).tasks
    pd.testing.assert_frame_equal(a, b)
    assert a.iloc[0]["contact_id"] == "h"


def test_empty_scores():
    p = plan_tasks(
        pd.DataFrame(columns=["contact_id", "portal"]), pd.DataFrame(), as_of=AS_OF, config=CFG
    )
    assert list(p.tasks.columns) == TASK_COLUMNS and p.tasks.empty


def test_end_to_end_from_scores():
    w = world_of("cold", "hot", "burning", "at_risk", "difficult", "fan")
    contacts, activities, deals = w.frames()
    scores = score_contacts(contacts, activities, deals, as_of=AS_OF, config=CFG, tz=TZ)
    p = plan_tasks(scores, contacts, as_of=AS_OF, config=CFG, tz=TZ)
    got = dict(zip(p.tasks["contact_id"], p.tasks["rule"], strict=False))
    assert got["hot"] == "call_now" and got["burning"] == "call_now"
    assert got["at_risk"] == "at_risk" and got["cold"] == "touch"
    assert set(p.tasks.loc[p.tasks["contact_id"] == "difficult", "rule"]) == {"review", "touch"}
    # tomorrow, with today's scores as previous and today's tasks as history: no repeats
    tomorrow = AS_OF + pd.Timedelta(days=1)
    scores2 = score_contacts(
        contacts, activities, deals, as_of=tomorrow, config=CFG, tz=TZ, previous=scores
    )
    hist = p.tasks[["task_key", "contact_id", "rule"]].assign(created_at=AS_OF)
    p2 = plan_tasks(scores2, contacts, as_of=tomorrow, config=CFG, history=hist, tz=TZ)
    assert not set(p2.tasks["task_key"]) & set(p.tasks["task_key"])
    assert "call_now" not in set(p2.tasks["rule"])
    assert p2.skipped["already_done"] >= 1  # the at_risk call of this episode


def test_a_call_created_today_still_covers_the_birthday_on_a_second_run():
    hot_with_birthday = row(
        "c",
        temperature="hot",
        score=80.0,
        previous_temperature="warm",
        birthday=pd.Timestamp("1904-11-30"),
    )
    first = plan([hot_with_birthday])
    assert first.tasks["rule"].tolist() == ["call_now"]  # the call is the greeting's occasion
    created = first.tasks.assign(created_at=AS_OF)[["task_key", "contact_id", "rule", "created_at"]]
    # The same day again (a retry, or the schedule after a manual run): nothing new.
    second = plan([hot_with_birthday], history=created, as_of=AS_OF + pd.Timedelta(hours=2))
    assert second.tasks.empty
    assert second.skipped["already_done"] == 1


def _burning(cid: str, score: float = 72.0, **kw: Any) -> dict[str, Any]:
    return row(
        cid, temperature="hot", score=score, segment="burning", previous_temperature=None, **kw
    )


def _hot(cid: str, score: float, **kw: Any) -> dict[str, Any]:
    return row(cid, temperature="hot", score=score, previous_temperature="warm", **kw)


def test_daily_cap_keeps_the_most_urgent_rules_first():
    # Routine hot calls with higher scores must not push out the burning call or the retention
    # call: the cap orders by urgency class first, score second.
    cfg = load_config({"tasks": {"daily_cap": 4}})
    rows = [_hot(f"h{i}", 90.0 + i) for i in range(4)]
    rows += [_burning("b1", 71.0), _burning("b2", 74.0)]
    rows += [row("risk", segment="at_risk", score=20.0)]
    rows += [row(f"t{i}", score=float(i)) for i in range(2)]
    p = plan(rows, config=cfg)
    assert p.tasks["contact_id"].tolist() == ["b2", "b1", "risk", "h3"]
    assert p.tasks["rule"].tolist() == ["call_now", "call_now", "at_risk", "call_now"]
    assert p.skipped["over_cap"] == 5


def test_burning_calls_are_not_capped_by_default():
    rows = [_burning(f"b{i}", 70.0 + i) for i in range(3)] + [row("risk", segment="at_risk")]
    p = plan(rows, config=load_config({"tasks": {"daily_cap": 1}}))
    assert sorted(p.tasks["contact_id"]) == ["b0", "b1", "b2"]
    assert p.tasks["task_key"].str.endswith(":call_now:2026-11-23").all()
    assert p.left_out["contact_id"].tolist() == ["risk"]

    capped = plan(rows, config=load_config({"tasks": {"daily_cap": 1, "cap_burning": True}}))
    assert capped.tasks["contact_id"].tolist() == ["b2"]
    assert capped.left_out["contact_id"].tolist() == ["b1", "b0", "risk"]


def test_burning_calls_are_created_even_when_the_day_is_full():
    h = history(
        *[
            (f"p1:x{i}:touch:2026-11-23", f"x{i}", "touch", AS_OF - pd.Timedelta(hours=2))
            for i in range(2)
        ]
    )
    rows = [_burning("b"), row("t"), *[row(f"x{i}") for i in range(2)]]
    p = plan(rows, config=load_config({"tasks": {"daily_cap": 2}}), history=h)
    assert p.tasks["contact_id"].tolist() == ["b"]
    assert p.left_out["contact_id"].tolist() == ["t"]


def test_left_out_lists_what_the_cap_dropped_most_urgent_first():
    cfg = load_config({"tasks": {"daily_cap": 1}})
    rows = [
        row("t1", score=30.0),
        row("t2", score=50.0, owner_id="u2"),
        _hot("h1", 80.0),
        _hot("h2", 95.0, owner_id="u2"),
        row("risk", segment="at_risk", score=5.0, owner_id="u2"),
        row("dnc", do_not_contact=True),
    ]
    p = plan(rows, config=cfg)
    assert p.tasks["contact_id"].tolist() == ["risk", "h1"]
    lo = p.left_out
    assert list(lo.columns) == ["contact_id", "owner_id", "rule", "score", "display_name", "portal"]
    assert lo["contact_id"].tolist() == ["h2", "t2", "t1"]
    assert lo["rule"].tolist() == ["call_now", "touch", "touch"]
    assert lo["owner_id"].tolist() == ["u2", "u2", "u1"]
    assert lo["score"].tolist() == [95.0, 50.0, 30.0]
    assert lo["display_name"].tolist() == ["Anna h2", "Anna t2", "Anna t1"]
    assert (lo["portal"] == PORTAL).all()
    assert p.skipped["over_cap"] == len(lo) == 3


def test_left_out_is_empty_when_everything_fits():
    for p in (plan([row("a")]), plan_tasks(pd.DataFrame(), pd.DataFrame(), as_of=AS_OF)):
        assert p.left_out.empty
        assert list(p.left_out.columns) == [
            "contact_id",
            "owner_id",
            "rule",
            "score",
            "display_name",
            "portal",
        ]


def test_a_burning_contact_is_called_whatever_its_temperature():
    earlier = MIDNIGHT - pd.Timedelta(days=1)
    rows = [
        row("warm", temperature="warm", score=55.0, segment="burning", segment_since=earlier),
        row(
            "still-hot",
            temperature="hot",
            score=80.0,
            segment="burning",
            previous_temperature="hot",
            hot_since=earlier,
        ),
    ]
    p = plan(rows)
    calls = p.tasks.set_index("contact_id")
    # warm: called once per burning episode (keyed by when it began), within minutes
    assert calls.loc["warm", "rule"] == "call_now"
    assert calls.loc["warm", "task_key"].endswith(":warm:call_now:2026-11-22")
    assert calls.loc["warm", "due_at"] <= AS_OF + pd.Timedelta(minutes=60)
    # hot all along: its hot episode's key, so the call made when it turned hot covers it
    assert calls.loc["still-hot", "task_key"].endswith(":still-hot:call_now:2026-11-22")
    again = plan(
        rows,
        history=history(
            *[
                (k, c, "call_now", AS_OF - pd.Timedelta(hours=20))
                for k, c in zip(p.tasks["task_key"], p.tasks["contact_id"], strict=True)
            ]
        ),
    )
    assert again.tasks.empty
