"""pipelines.insights on small hand-made frames: exact counts of transitions, moves, unattended hot
contacts and owner load."""

from __future__ import annotations

import pandas as pd

from pipelines import insights

DAY = "2026-03-10"
AS_OF = pd.Timestamp("2026-03-10 09:00", tz="UTC")


def scores(rows: list[tuple[str, str, float, str | None]], **extra: list[object]) -> pd.DataFrame:
    """(contact_id, temperature, score, owner_id) rows of a scores frame."""
    frame = pd.DataFrame(rows, columns=["contact_id", "temperature", "score", "owner_id"])
    frame["as_of"] = AS_OF
    frame["segment"] = None
    n = len(frame)
    frame["last_touch_at"] = pd.Series([pd.Timestamp("2026-03-09", tz="UTC")] * n)
    frame["next_touch_due"] = pd.Series([pd.Timestamp("2026-03-11")] * n)
    for name, values in extra.items():
        frame[name] = values
    return frame


PREVIOUS = scores(
    [
        ("1", "cold", 10, "a"),
        ("2", "cold", 20, "a"),
        ("3", "warm", 50, "b"),
        ("4", "hot", 90, "b"),
        ("5", "hot", 80, "a"),
        ("9", "warm", 40, "a"),  # gone today
    ]
)
TODAY = scores(
    [
        ("1", "hot", 85, "a"),  # cold → hot, +75
        ("2", "warm", 40, "a"),  # cold → warm, +20
        ("3", "warm", 55, "b"),  # stays
        ("4", "cold", 30, "b"),  # hot → cold, -60
        ("5", "warm", 60, "a"),  # hot → warm, -20
        ("6", "hot", 75, None),  # new
        ("7", "cold", 5, "b"),  # new
    ]
)


def test_transitions_count_every_contact_of_today_by_both_temperatures() -> None:
    table = insights.transitions(PREVIOUS, TODAY)
    assert list(table.index) == ["cold", "warm", "hot", "new"]
    assert list(table.columns) == ["cold", "warm", "hot"]
    assert table.to_dict(orient="index") == {
        "cold": {"cold": 0, "warm": 1, "hot": 1},
        "warm": {"cold": 0, "warm": 1, "hot": 0},
        "hot": {"cold": 1, "warm": 1, "hot": 0},
        "new": {"cold": 1, "warm": 0, "hot": 1},
    }
    assert int(table.to_numpy().sum()) == len(TODAY)


def test_without_a_previous_day_everyone_is_new() -> None:
    table = insights.transitions(None, TODAY)
    assert table.loc["new"].to_dict() == {"cold": 2, "warm": 3, "hot": 2}
    assert int(table.loc[["cold", "warm", "hot"]].to_numpy().sum()) == 0
    assert insights.moves(None, TODAY).empty


def test_warmed_up_and_cooled_down_by_score_change() -> None:
    moved = insights.moves(PREVIOUS, TODAY)
    assert sorted(moved["contact_id"]) == ["1", "2", "4", "5"]
    up = insights.warmed_up(moved)
    assert list(up["contact_id"]) == ["1", "2"]
    assert list(up["change"]) == [75.0, 20.0]
    down = insights.cooled_down(moved)
    assert list(down["contact_id"]) == ["4", "5"]
    assert list(down[["was", "now"]].itertuples(index=False, name=None)) == [
        ("hot", "cold"),
        ("hot", "warm"),
    ]
    assert list(insights.warmed_up(moved, n=1)["contact_id"]) == ["1"]


def test_hot_unattended_no_owner_never_touched_or_past_cadence() -> None:
    frame = scores(
        [
            ("1", "hot", 95, "a"),  # touched, due tomorrow: attended
            ("2", "hot", 90, None),  # no owner
            ("3", "hot", 85, "a"),  # never touched
            ("4", "hot", 80, "b"),  # due two days ago
            ("5", "hot", 75, "b"),  # due today: not yet overdue
            ("6", "warm", 60, None),  # not hot
            ("7", "hot", 70, " "),  # blank owner and overdue
        ],
        last_touch_at=[
            pd.Timestamp("2026-03-09", tz="UTC"),
            pd.Timestamp("2026-03-09", tz="UTC"),
            pd.NaT,
            pd.Timestamp("2026-03-06", tz="UTC"),
            pd.Timestamp("2026-03-08", tz="UTC"),
            pd.NaT,
            pd.Timestamp("2026-03-01", tz="UTC"),
        ],
        next_touch_due=pd.to_datetime(
            [
                "2026-03-11",
                "2026-03-11",
                "2026-03-10",
                "2026-03-08",
                "2026-03-10",
                DAY,
                "2026-03-03",
            ]
        ),
    )
    contacts = pd.DataFrame(
        {"contact_id": ["2", "3"], "name": ["Anna", None], "email": ["a@x", "c@x"]}
    )
    out = insights.hot_unattended(frame, DAY, "UTC", contacts)
    assert list(out["contact_id"]) == ["2", "3", "4", "7"]
    assert list(out["why"]) == [
        "no owner",
        "never touched",
        "touch overdue",
        "no owner; touch overdue",
    ]
    assert list(out["name"]) == ["Anna", "c@x", "4", "7"]
    assert out["days_overdue"].tolist() == [pd.NA, pd.NA, 2, 7]
    assert out.loc[0, "last_touch"] == "2026-03-09"


def test_tasks_created_on_the_local_day_with_their_owner() -> None:
    ledger = pd.DataFrame(
        {
            "task_key": ["k1", "k2", "k3", "k4"],
            "contact_id": ["1", "4", "5", "2"],
            "rule": ["call_now", "at_risk", "call_now", "touch"],
            "status": ["created", "created", "pending", "created"],
            # 23:30 UTC on the 9th is the 10th in Riga
            "created_at": pd.to_datetime(
                ["2026-03-10 08:00", "2026-03-09 23:30", "2026-03-10 08:00", "2026-03-09 08:00"],
                utc=True,
            ),
        }
    )
    riga = insights.tasks_created_on(ledger, TODAY, DAY, "Europe/Riga")
    assert riga.to_dict(orient="list") == {
        "contact_id": ["1", "4"],
        "owner_id": ["a", "b"],
        "rule": ["call_now", "at_risk"],
    }
    assert list(insights.tasks_created_on(ledger, TODAY, DAY, "UTC")["contact_id"]) == ["1"]


def test_owner_load_counts_created_by_rule_and_left_out() -> None:
    created = pd.DataFrame(
        {
            "owner_id": ["a", "a", "b", None],
            "rule": ["call_now", "touch", "call_now", "call_now"],
        }
    )
    left_out = pd.DataFrame({"owner_id": ["b", "b", "c"], "rule": ["touch", "review", "touch"]})
    load = insights.owner_load(created, left_out)
    assert load.to_dict(orient="records") == [
        {"owner_id": "a", "created": 2, "call_now": 1, "touch": 1, "left_out": 0},
        {"owner_id": "b", "created": 1, "call_now": 1, "touch": 0, "left_out": 2},
        {"owner_id": insights.NO_OWNER, "created": 1, "call_now": 1, "touch": 0, "left_out": 0},
        {"owner_id": "c", "created": 0, "call_now": 0, "touch": 0, "left_out": 1},
    ]
    empty = insights.owner_load(created.iloc[:0], left_out.iloc[:0])
    assert empty.empty and list(empty.columns) == ["owner_id", "created", "left_out"]


def test_markdown_table_says_how_many_more() -> None:
    frame = pd.DataFrame({"contact_id": ["1", "2", "3"], "score": [90.4, 80.0, None]})
    text = insights.markdown_table(frame, limit=2)
    assert text.splitlines() == [
        "| contact_id | score |",
        "|---|---|",
        "| 1 | 90 |",
        "| 2 | 80 |",
        "| … 1 more | |",
    ]
