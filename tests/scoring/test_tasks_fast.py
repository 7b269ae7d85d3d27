"""plan_tasks on integer codes gives exactly what the pandas implementation it replaced gives
(tests/scoring/reference_tasks.py), on random portals with duplicates, missing owners and keys,
opt-outs, birthdays, history and small daily caps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from scoring import load_config, plan_tasks
from scoring.tasks import TaskPlan
from tests.scoring.reference_tasks import plan_tasks as reference_plan_tasks

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
TEMPERATURES = np.array(["cold", "warm", "hot", None], dtype=object)
SEGMENTS = np.array(
    ["key", "fan", "loyal", "difficult", "burning", "at_risk", "new", None], dtype=object
)
OWNERS = np.array(["u1", "u2", "u3", "", None], dtype=object)


def _pick(rng: np.random.Generator, values: Any, n: int, p: Any = None) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)]


def _world(seed: int, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = _pick(rng, [f"c{i}" for i in range(n)], n)  # duplicates of a key happen
    if seed % 3 == 0:
        ids[rng.random(n) < 0.02] = None
    portals = _pick(rng, ["p1", "p2", "p10"], n)
    if seed % 4 == 1:
        portals[rng.random(n) < 0.02] = None
    day = pd.Timestamp("2026-11-23")
    stamps = pd.to_datetime(
        _pick(rng, [None, AS_OF - pd.Timedelta(days=3), AS_OF - pd.Timedelta(hours=20)], n),
        utc=True,
    )
    scores = pd.DataFrame(
        {
            "contact_id": ids,
            "portal": portals,
            "as_of": AS_OF,
            "temperature": _pick(rng, TEMPERATURES, n),
            "score": _pick(rng, [0.0, -0.0, 1.0, 55.0, 55.0, 99.5, np.nan], n).astype(float),
            "segment": _pick(rng, SEGMENTS, n),
            "is_vip": rng.random(n) < 0.1,
            "reasons": _pick(rng, ["", None, "Called us today; Bought 3 days ago", "x"], n),
            "previous_temperature": _pick(rng, TEMPERATURES, n),
            "hot_since": stamps,
            "segment_since": stamps[rng.permutation(n)],
            "next_touch_due": pd.to_datetime(
                _pick(rng, [None, day, day - pd.Timedelta(days=2), day + pd.Timedelta(days=1)], n)
            ),
            "owner_id": _pick(rng, OWNERS, n),
            "do_not_contact": rng.random(n) < 0.05,
        }
    )
    if seed % 5 in (2, 4):  # texts as categoricals or Arrow strings
        dtype = "category" if seed % 5 == 2 else "string[pyarrow]"
        for col in ("temperature", "segment", "previous_temperature", "portal", "owner_id"):
            scores[col] = scores[col].astype(dtype)
        scores["reasons"] = scores["reasons"].astype(dtype)
    m = n + n // 5
    contacts = pd.DataFrame(
        {
            "contact_id": _pick(rng, [f"c{i}" for i in range(n + 10)], m),
            "portal": _pick(rng, ["p1", "p2", "p10"], m),
            "created_at": AS_OF - pd.Timedelta(days=100),
            "owner_id": _pick(rng, OWNERS, m),
            "do_not_contact": rng.random(m) < 0.05,
            "name": _pick(rng, ["Anna", None, "Berzins"], m),
            "email": _pick(rng, ["a@x.lv", None], m),
            "birthday": pd.to_datetime(
                _pick(rng, [None, "1990-11-25", "1904-02-29", "1985-12-01", "1970-11-23"], m)
            ),
        }
    )
    if seed % 5 == 4:
        contacts["name"] = contacts["name"].astype("string[pyarrow]")
    return scores, contacts


def _history(rng: np.random.Generator, plan: TaskPlan, as_of: pd.Timestamp) -> pd.DataFrame:
    tasks = pd.concat([plan.tasks, plan.not_created], ignore_index=True)
    tasks = tasks[tasks["task_key"].notna()].sample(frac=0.5, random_state=int(rng.integers(99)))
    when = _pick(
        rng,
        [
            as_of - pd.Timedelta(hours=1),
            as_of - pd.Timedelta(days=1),
            as_of - pd.Timedelta(days=40),
            as_of + pd.Timedelta(days=1),
        ],
        len(tasks),
    )
    h = tasks[["task_key", "contact_id", "rule"]].assign(created_at=pd.to_datetime(when, utc=True))
    if rng.random() < 0.5:
        h["portal"] = tasks["portal"] if "portal" in tasks else None
        h["portal"] = h["task_key"].str.split(":").str[0]
    return h.reset_index(drop=True)


def _assert_same(got: TaskPlan, expected: TaskPlan) -> None:
    pd.testing.assert_frame_equal(got.tasks, expected.tasks)
    assert got.skipped == expected.skipped
    pd.testing.assert_frame_equal(got.left_out, expected.left_out)
    pd.testing.assert_frame_equal(got.not_created, expected.not_created)


CONFIGS: list[dict[str, Any]] = [
    {},
    {"tasks": {"daily_cap": 2}},
    {"tasks": {"daily_cap": 1, "cap_burning": True}},
    {"tasks": {"daily_cap": 3, "birthday_window_days": 30}},
]


@pytest.mark.parametrize("seed", range(12))
def test_plan_tasks_equals_the_pandas_implementation(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    scores, contacts = _world(seed, 400)
    config = load_config(CONFIGS[seed % len(CONFIGS)])
    tz = ["UTC", "Europe/Riga", "America/New_York", "Asia/Tokyo"][seed % 4]
    locale = ["en", "ru"][seed % 2]
    as_of = [AS_OF, pd.Timestamp("2026-11-23 21:59:30.5", tz="UTC")][seed % 2]
    kw: dict[str, Any] = {"config": config, "locale": locale, "tz": tz}
    first = plan_tasks(scores, contacts, as_of, **kw)
    _assert_same(first, reference_plan_tasks(scores, contacts, as_of, **kw))
    assert len(first.not_created) > 0
    history = _history(rng, first, as_of)
    later = as_of + pd.Timedelta(hours=[0, 3, 30][seed % 3])
    second = plan_tasks(scores, contacts, later, history=history, **kw)
    _assert_same(second, reference_plan_tasks(scores, contacts, later, history=history, **kw))
    assert second.skipped["already_done"] > 0 or later > as_of


@pytest.mark.parametrize(
    "edit",
    [
        "no_contacts",
        "all_do_not_contact",
        "no_owner",
        "one_row",
        "no_candidates",
        "no_scores",
        "times_of_day",
        "texts_not_str",
    ],
)
def test_plan_tasks_edge_cases_equal_the_pandas_implementation(edit: str) -> None:
    scores, contacts = _world(7, 60)
    if edit == "no_contacts":
        contacts = contacts.iloc[:0]
    elif edit == "all_do_not_contact":
        contacts = contacts.assign(do_not_contact=True)
        scores = scores.assign(do_not_contact=True)
    elif edit == "no_owner":
        contacts = contacts.drop(columns=["owner_id"])
        scores = scores.drop(columns=["owner_id"])
    elif edit == "one_row":
        scores = scores.iloc[[3]]
    elif edit == "no_candidates":
        scores = scores.assign(segment="new", temperature="cold", next_touch_due=pd.NaT)
    elif edit == "no_scores":
        scores = scores.iloc[:0]
    elif edit == "times_of_day":  # dates that are not midnights are made so
        scores["next_touch_due"] += pd.Timedelta(hours=5)
        contacts["birthday"] += pd.Timedelta(hours=13)
    elif edit == "texts_not_str":  # ids as numbers, names as numbers: typed as text
        scores["contact_id"] = np.arange(len(scores)) % 40
        contacts["contact_id"] = [str(i % 45) for i in range(len(contacts))]
        contacts["name"] = [None if i % 3 == 0 else 7 for i in range(len(contacts))]
        segment = scores["segment"].astype(object)
        scores["segment"] = segment.where(segment != "fan", 5)
    got = plan_tasks(scores, contacts, AS_OF)
    _assert_same(got, reference_plan_tasks(scores, contacts, AS_OF))
    assert (len(got.not_created) + len(got.tasks) > 0) == (
        edit not in ("no_scores", "no_candidates")
    )


def test_due_times_keep_the_unit_of_as_of() -> None:
    scores, contacts = _world(3, 80)
    scores = scores.assign(segment="difficult", next_touch_due=pd.NaT)
    for as_of in (AS_OF, AS_OF.as_unit("us") + pd.Timedelta(microseconds=7)):
        got = plan_tasks(scores, contacts, as_of)
        _assert_same(got, reference_plan_tasks(scores, contacts, as_of))
        assert len(got.tasks) > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_contacts_row_for_row_with_the_scores_equal_the_pandas_implementation(seed: int) -> None:
    """Scores made from the contacts (the same keys row for row, coded once), with history."""
    scores, contacts = _world(seed, 300)
    contacts = contacts.iloc[: len(scores)].reset_index(drop=True)
    contacts["contact_id"] = scores["contact_id"].astype(object).to_numpy()
    contacts["portal"] = scores["portal"].astype(object).to_numpy()
    first = plan_tasks(scores, contacts, AS_OF, tz="Europe/Riga")
    _assert_same(first, reference_plan_tasks(scores, contacts, AS_OF, tz="Europe/Riga"))
    history = _history(np.random.default_rng(seed), first, AS_OF)
    later = AS_OF + pd.Timedelta(hours=2)
    got = plan_tasks(scores, contacts, later, history=history, tz="Europe/Riga")
    expected = reference_plan_tasks(scores, contacts, later, history=history, tz="Europe/Riga")
    _assert_same(got, expected)
    assert got.skipped["already_done"] > 0
