"""plan_tasks: follow-up tasks for reps from scores (domain.md §4), never twice for one reason.

Rules:
- call_now: turned hot (previous temperature not hot), or burning whatever the temperature;
  burning -> due within minutes; period = local date of hot_since for a hot contact (once per
  hot episode), else of segment_since (once per burning episode);
- at_risk: segment at_risk -> retention call; period = local date of segment_since (once per
  episode);
- birthday: a touch is due and the birthday falls within the window -> congratulate; period = the
  birthday's year (once a year);
- review: segment difficult -> review by a manager; period = local date of as_of, 90-day cooldown;
- touch: next_touch_due <= local date of as_of; the suggested touch follows VIP status, segment
  and temperature; period = local date of as_of, 30-day cooldown.
A touch or birthday task is dropped when the same run creates a call_now or at_risk call for the
contact (that call is the touch). task_key = "{portal}:{contact_id}:{rule}:{period}"; a key already
in `history`, or the same rule for the contact inside its cooldown, is skipped as already_done.
No tasks for do_not_contact contacts or contacts without an owner.

The daily cap: at most daily_cap tasks per owner and local day (counting history created that
day), kept in config.tasks.urgency_order (a burning contact's call_now is the class "burning"),
then by score. Burning calls are kept even beyond the cap unless cap_burning is set; they still
take their place in the day. The candidates the cap dropped are returned as `left_out`, most
urgent first; `skipped` counts the candidate tasks dropped for each reason, and `not_created`
names them one by one (a key already created is already_done, the rule's cooldown is cooldown;
both count as already_done).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract
from scoring.config import ScoringConfig, load_config
from scoring.explain import fill, load_locale
from scoring.features import local_date, local_dates, local_midnight_utc, to_utc
from scoring.task_inputs import _base

TASK_COLUMNS = [
    "task_key",
    "portal",
    "contact_id",
    "owner_id",
    "rule",
    "period",
    "due_at",
    "priority",
    "task_type",
    "subject",
    "body",
    "score",
]
SKIP_REASONS = ("do_not_contact", "no_owner", "over_cap", "already_done")
LEFT_OUT_COLUMNS = ["contact_id", "owner_id", "rule", "score", "display_name", "portal"]
NOT_CREATED_COLUMNS = ["contact_id", "rule", "task_key", "reason"]
HISTORY_COLUMNS = ("task_key", "contact_id", "rule", "created_at")
TOUCH_LIKE_RULES = ("call_now", "at_risk", "birthday")
CALL_RULES = ("call_now", "at_risk")


def _empty_not_created() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in NOT_CREATED_COLUMNS})


def _empty_left_out() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in LEFT_OUT_COLUMNS})
    out["score"] = pd.Series(dtype="float64")
    return out


@dataclass(frozen=True)
class TaskPlan:
    """Tasks to create (TASK_COLUMNS), how many candidates were skipped, by reason, and the
    candidates the daily cap left out (LEFT_OUT_COLUMNS, most urgent first; as many rows as
    skipped["over_cap"]), and every skipped candidate with its reason (NOT_CREATED_COLUMNS;
    reason do_not_contact, no_owner, already_done, cooldown or over_cap)."""

    tasks: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)
    left_out: pd.DataFrame = field(default_factory=_empty_left_out)
    not_created: pd.DataFrame = field(default_factory=_empty_not_created)


def _empty_tasks() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in TASK_COLUMNS})
    out["due_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    out["score"] = pd.Series(dtype="float64")
    return out


def _next_birthday(birthday: pd.Series, today: pd.Timestamp) -> pd.Series:
    """Next occurrence (on or after today) of each birthday; 29 Feb falls on 28 Feb otherwise."""
    known = birthday.notna()
    month = birthday.dt.month.fillna(1).astype("int64")
    day = birthday.dt.day.fillna(1).astype("int64")

    def occurrence(year: int) -> pd.Series:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        d = day.where(~((month == 2) & (day == 29)) | leap, 28)
        return pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": d}))

    this_year = occurrence(today.year)
    out = this_year.where(this_year >= today, occurrence(today.year + 1))
    return out.where(known)


def _formatted(dates: pd.Series, fmt: str, missing: Any = np.nan) -> np.ndarray:
    """`dates` as text in `fmt` (`missing` where NaT), each distinct date formatted once."""
    codes, distinct = pd.factorize(dates)
    text = pd.Series(distinct).dt.strftime(fmt).to_numpy(dtype=object)
    out = np.full(len(codes), missing, dtype=object)
    known = codes >= 0
    out[known] = text[codes[known]]
    return out


def _touch_variant(b: pd.DataFrame) -> np.ndarray:
    seg = b["segment"]
    return np.select(
        [
            b["is_vip"].to_numpy(dtype=bool),
            (seg == "key").to_numpy(),
            (seg == "at_risk").to_numpy(),
            (seg == "fan").to_numpy(),
            (seg == "loyal").to_numpy(),
            (b["temperature"] == "cold").to_numpy(),
        ],
        ["personal_call", "early_access", "retention", "opinion", "content_offer", "soft_retouch"],
        default="their_problem",
    )


def _candidates(
    b: pd.DataFrame, as_of: pd.Timestamp, today: pd.Timestamp, config: ScoringConfig, tz: str
) -> pd.DataFrame:
    t = config.tasks
    today_text = today.strftime("%Y-%m-%d")
    end_of_day = local_midnight_utc(today + pd.Timedelta(days=1), tz) - pd.Timedelta(minutes=1)
    end_of_day = max(end_of_day, as_of)  # planned in the day's last minute: due now, not before
    same_day = min(as_of + pd.Timedelta(hours=t.same_day_due_hours), end_of_day)
    frames = []

    def add(mask: pd.Series | np.ndarray, rule: str, **cols: Any) -> None:
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        part = pd.DataFrame({"row": idx, "rule": rule})
        for name, value in cols.items():
            per_row = isinstance(value, np.ndarray | pd.api.extensions.ExtensionArray)
            part[name] = value[idx] if per_row else value
        frames.append(part)

    is_hot = (b["temperature"] == "hot").to_numpy()
    turned_hot = is_hot & (b["previous_temperature"] != "hot").to_numpy()
    burning = (b["segment"] == "burning").to_numpy()
    hot_day = _formatted(local_dates(b["hot_since"], tz).fillna(today), "%Y-%m-%d")
    seg_day = _formatted(local_dates(b["segment_since"], tz).fillna(today), "%Y-%m-%d")
    soon = as_of + pd.Timedelta(minutes=t.burning_due_minutes)
    # A burning contact is called whatever its temperature; once per hot episode when hot, else
    # once per burning episode.
    add(
        turned_hot | burning,
        "call_now",
        period=np.where(is_hot, hot_day, seg_day),
        priority="HIGH",
        task_type="CALL",
        variant=np.where(burning, "call_now_burning", "call_now"),
        due_at=pd.Series(same_day, index=b.index).where(~burning, soon).array,
    )

    add(
        b["segment"] == "at_risk",
        "at_risk",
        period=seg_day,
        priority="HIGH",
        task_type="CALL",
        variant="at_risk",
        due_at=same_day,
    )
    add(
        b["segment"] == "difficult",
        "review",
        period=today_text,
        priority="MEDIUM",
        task_type="TODO",
        variant="review",
        due_at=end_of_day,
    )

    due = (b["next_touch_due"] <= today).to_numpy()
    nxt = _next_birthday(b["birthday"], today)
    days_to = (nxt - today).dt.days
    bday = (days_to <= t.birthday_window_days).to_numpy() & due
    bday_due = (
        (nxt + pd.Timedelta(hours=t.birthday_due_hour))
        .dt.tz_localize(tz, nonexistent="shift_forward", ambiguous=False)
        .dt.tz_convert("UTC")
    )
    bday_due = bday_due.where(bday_due > as_of, as_of)
    add(
        bday,
        "birthday",
        period=_formatted(nxt, "%Y", missing="0"),
        priority="MEDIUM",
        task_type=t.touch_channels["congratulate"],
        variant="birthday",
        due_at=bday_due.array,
        date=_formatted(nxt, "%d.%m"),
    )
    variant = _touch_variant(b)
    add(
        due & ~bday,
        "touch",
        period=today_text,
        priority=b["temperature"].map(t.touch_priority).to_numpy(),
        task_type=pd.Series(variant).map(t.touch_channels).to_numpy(),
        variant=variant,
        due_at=end_of_day,
    )

    cand = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    cand["due_at"] = pd.to_datetime(cand["due_at"], utc=True)
    return cand


def _history(history: pd.DataFrame | None, contacts: pd.DataFrame) -> pd.DataFrame:
    cols = {"task_key": "str", "contact_id": "str", "rule": "str", "created_at": "ts"}
    if history is None or len(history) == 0:
        h = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    else:
        missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
        if missing:
            raise ValueError(f"history is missing columns {missing}")
        h = history
    h = h.copy()
    for name, kind in cols.items():
        h[name] = contract._series(h[name], kind)
    if "portal" not in h.columns:
        h["portal"] = h["task_key"].str.split(":", n=1).str[0]
    h["portal"] = h["portal"].astype("object")
    return h


def plan_tasks(
    scores: pd.DataFrame,
    contacts: pd.DataFrame,
    as_of: pd.Timestamp | str,
    config: ScoringConfig | None = None,
    history: pd.DataFrame | None = None,
    locale: str = "en",
    tz: str = "UTC",
) -> TaskPlan:
    """Plan the tasks to create for `scores` (from score_contacts) as of `as_of`.

    `history` holds tasks created before (task_key, contact_id, rule, created_at, optionally
    portal). Returns TaskPlan(tasks with TASK_COLUMNS in a deterministic order, skipped counts
    for do_not_contact, no_owner, already_done and over_cap, and left_out: the over_cap
    candidates with LEFT_OUT_COLUMNS, most urgent first).
    """
    config = config if config is not None else load_config(None)
    texts = load_locale(locale)["tasks"]
    t = config.tasks
    as_of = to_utc(as_of)
    today = local_date(as_of, tz)
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    b = _base(scores, contacts)
    if len(b) == 0:
        return TaskPlan(_empty_tasks(), skipped)
    cand = _candidates(b, as_of, today, config, tz)
    cand = cand.join(
        b[
            [
                "portal",
                "contact_id",
                "owner_id",
                "do_not_contact",
                "score",
                "reasons",
                "display_name",
            ]
        ],
        on="row",
    )
    cand["task_key"] = (
        cand["portal"] + ":" + cand["contact_id"] + ":" + cand["rule"] + ":" + cand["period"]
    )

    h = _history(history, contacts)
    in_history = cand["task_key"].isin(set(h["task_key"].dropna()))
    key_known = in_history.to_numpy(dtype=bool)
    past = h[h["created_at"] <= as_of]
    if len(past):
        # A call (call_now, at_risk) or birthday task is a touch too: it starts the touch cooldown.
        touch_like = past[past["rule"].isin(TOUCH_LIKE_RULES)].assign(rule="touch")
        cooled = pd.concat([past, touch_like], ignore_index=True)
        last = cooled.groupby(["portal", "contact_id", "rule"])["created_at"].max().rename("last")
        cand = cand.join(last, on=["portal", "contact_id", "rule"])
        age = (today - local_dates(cand["last"], tz)).dt.days
        in_history = in_history | (age < cand["rule"].map(t.cooldown_days)).fillna(False)
    done = in_history.to_numpy(dtype=bool)

    # A call planned now, or created earlier today, is the touch: no separate touch or birthday
    # task for that contact (counting earlier today keeps a same-day rerun from adding one).
    calls = cand.loc[cand["rule"].isin(CALL_RULES).to_numpy() & ~done, "row"]
    called = cand["row"].isin(calls)
    if len(past):
        today_calls = past[
            past["rule"].isin(CALL_RULES) & (local_dates(past["created_at"], tz) == today)
        ]
        called_today = pd.MultiIndex.from_frame(today_calls[["portal", "contact_id"]])
        called |= pd.MultiIndex.from_frame(cand[["portal", "contact_id"]]).isin(called_today)
    covered = (cand["rule"].isin(["touch", "birthday"]) & called).to_numpy()
    cand, done, key_known = cand[~covered], done[~covered], key_known[~covered]

    dnc = cand["do_not_contact"].to_numpy(dtype=bool)
    no_owner = (cand["owner_id"].isna() | (cand["owner_id"] == "")).to_numpy() & ~dnc
    done = done & ~dnc & ~no_owner
    skipped["do_not_contact"] = int(dnc.sum())
    skipped["no_owner"] = int(no_owner.sum())
    skipped["already_done"] = int(done.sum())
    dropped = dnc | no_owner | done
    why = np.select(
        [dnc, no_owner, key_known], ["do_not_contact", "no_owner", "already_done"], "cooldown"
    )
    not_created = cand.loc[dropped, NOT_CREATED_COLUMNS[:-1]].assign(reason=why[dropped])
    cand = cand[~dropped]

    urgency = np.where(cand["variant"] == "call_now_burning", "burning", cand["rule"])
    rank = {name: i for i, name in enumerate(t.urgency_order)}
    cand = cand.assign(urgency=urgency)
    cand = cand.assign(urgency_rank=cand["urgency"].map(rank)).sort_values(
        ["urgency_rank", "score", "portal", "contact_id"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    today_h = past[local_dates(past["created_at"], tz) == today] if len(past) else past
    # only today's tasks need their contacts' owners
    owners = contract.conform(contacts if len(today_h) else contacts.iloc[:0], "contacts")[
        ["portal", "contact_id", "owner_id"]
    ]
    used = (
        today_h.merge(owners.drop_duplicates(["portal", "contact_id"]), on=["portal", "contact_id"])
        .groupby(["portal", "owner_id"])
        .size()
        .rename("used")
    )
    cand = cand.join(used, on=["portal", "owner_id"])
    room = (t.daily_cap - cand["used"].fillna(0)).clip(lower=0)
    position = cand.groupby(["portal", "owner_id"]).cumcount()
    fits = (position < room).to_numpy()
    if not t.cap_burning:
        fits |= (cand["urgency"] == "burning").to_numpy()
    skipped["over_cap"] = int((~fits).sum())
    left_out = cand.loc[~fits, LEFT_OUT_COLUMNS].reset_index(drop=True)
    capped = cand.loc[~fits, NOT_CREATED_COLUMNS[:-1]].assign(reason="over_cap")
    frames = [f for f in (not_created, capped) if len(f)]
    not_created = (pd.concat(frames, ignore_index=True) if frames else _empty_not_created()).astype(
        "object"
    )
    cand = cand[fits].reset_index(drop=True)
    if len(cand) == 0:
        return TaskPlan(_empty_tasks(), skipped, left_out, not_created)

    subject = pd.Series("", index=cand.index, dtype="object")
    body = pd.Series("", index=cand.index, dtype="object")
    values = {
        "name": cand["display_name"].astype(str),
        "score": cand["score"].map("{:.0f}".format),
        "date": cand["date"].fillna("") if "date" in cand else pd.Series("", index=cand.index),
    }
    for variant in cand["variant"].unique():
        entry = texts["touch"][variant] if variant in texts["touch"] else texts[variant]
        idx = cand.index[cand["variant"] == variant]
        sub = {k: v[idx] for k, v in values.items()}
        subject[idx] = fill(entry["subject"], sub, idx)
        body[idx] = fill(entry["body"], sub, idx)
    why = cand["reasons"].fillna("")
    why_block = "\n\n" + texts["reasons_header"] + "\n- " + why.str.replace("; ", "\n- ")
    body = body + why_block.where(why != "", "")
    cand["subject"] = subject
    cand["body"] = body
    return TaskPlan(cand[TASK_COLUMNS].reset_index(drop=True), skipped, left_out, not_created)
