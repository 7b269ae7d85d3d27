"""plan_tasks as it was before its integer rewrite (commit 0c5db99), the reference that
test_tasks_fast.py compares the fast path with: copied verbatim but for the imports."""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scoring import contract
from scoring.codes import contact_rows, last_of_each_key
from scoring.config import ScoringConfig, load_config
from scoring.explain import fill, load_locale
from scoring.features import local_date, local_dates, local_midnight_utc, to_utc
from scoring.tasks import (
    CALL_RULES,
    HISTORY_COLUMNS,
    LEFT_OUT_COLUMNS,
    NOT_CREATED_COLUMNS,
    SKIP_REASONS,
    TASK_COLUMNS,
    TOUCH_LIKE_RULES,
    TaskPlan,
    _empty_not_created,
    _empty_tasks,
    _formatted,
    _next_birthday,
)


def _base(scores: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Scores joined with the contact fields tasks need (owner, opt-out, name, birthday)."""
    extra = {"owner_id": "str", "do_not_contact": "bool"}
    m = contract.conform(scores, "scores", extra=extra)
    cols = ["portal", "contact_id", "owner_id", "do_not_contact", "name", "email", "birthday"]
    c = _conformed_columns(contacts, cols)
    c = c[last_of_each_key(c)].reset_index(drop=True)
    # each score's contact (the last row of its key), found on integer codes
    row = contact_rows(m, c)
    known = row >= 0
    at = np.where(known, row, 0)

    def field(name: str) -> np.ndarray:
        values = c[name].to_numpy()
        return values[at] if len(values) else np.zeros(len(at), dtype=values.dtype)

    # the CRM's current owner and opt-out win over what was copied into the scores
    m["owner_id"] = np.where(known, field("owner_id"), m["owner_id"])
    m["do_not_contact"] = np.where(known, field("do_not_contact"), m["do_not_contact"])
    m["do_not_contact"] = m["do_not_contact"].astype(bool)
    m["name"] = np.where(known, field("name"), np.nan)
    m["email"] = np.where(known, field("email"), np.nan)
    m["birthday"] = pd.Series(field("birthday")).where(known)
    m["display_name"] = m["name"].fillna(m["email"]).fillna(m["contact_id"])
    return m


def _conformed_columns(contacts: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Only `cols` of the contacts, each typed as contract.conform types it."""
    spec = contract.CONTACTS
    index = pd.RangeIndex(len(contacts))
    out = {}
    for col in cols:
        if col in contacts.columns:
            values = contacts[col].set_axis(index, copy=False)
        else:
            values = pd.Series(None, index=index, dtype=object)
        try:
            out[col] = contract._series(values, spec[col])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"contacts.{col}: {exc}") from exc
    return pd.DataFrame(out, index=index, copy=False)


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
