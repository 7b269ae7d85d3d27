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

The candidates are arrays (score row, rule, variant, period, due time) and every step works on
integers: task keys are built from per-portal prefixes and per-(rule, period) suffixes, the order
is one stable sort of an integer key (ids and portals ranked as text once, scoring/task_keys.py),
the cap counts per (portal, owner) code; the history's joins run on the candidates whose contact
appears in it, and texts are rendered for the tasks kept only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.config import ScoringConfig, load_config
from scoring.explain import fill, load_locale
from scoring.features import local_date, local_dates, local_midnight_utc, to_utc
from scoring.joined import first_of_codes, group_starts
from scoring.task_inputs import HISTORY_COLUMNS as HISTORY_COLUMNS
from scoring.task_inputs import TaskInputs, task_inputs
from scoring.task_keys import marked

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


RULES = ("call_now", "at_risk", "review", "birthday", "touch")
CALL_NOW, AT_RISK, REVIEW, BIRTHDAY, TOUCH = range(len(RULES))
TOUCH_VARIANTS = (
    "personal_call",
    "early_access",
    "retention",
    "opinion",
    "content_offer",
    "soft_retouch",
    "their_problem",
)
VARIANTS = ("call_now", "call_now_burning", "at_risk", "review", "birthday", *TOUCH_VARIANTS)


def _touch_variant(b: TaskInputs, rows: np.ndarray) -> np.ndarray:
    """Index into VARIANTS of the suggested touch of score rows `rows`."""
    seg = b.segment
    choice = np.select(
        [
            b.is_vip[rows],
            seg.eq("key", rows),
            seg.eq("at_risk", rows),
            seg.eq("fan", rows),
            seg.eq("loyal", rows),
            b.temperature.eq("cold", rows),
        ],
        list(range(6)),
        default=6,
    )
    return choice + VARIANTS.index(TOUCH_VARIANTS[0])


@dataclass
class _Candidates:
    """Candidate tasks in rule order, score rows ascending within a rule."""

    row: np.ndarray
    rule: np.ndarray  # index into RULES
    variant: np.ndarray  # index into VARIANTS
    period: np.ndarray  # index into periods
    periods: np.ndarray  # texts
    due_at: pd.Series  # as the frames of all rules concatenate it
    date: np.ndarray  # birthday "%d.%m", NaN for other rules


def _constant(value: Any, k: int) -> pd.Series:
    """A column of k rows holding `value`, typed as a frame's column assigned a scalar is."""
    part = pd.DataFrame({"row": np.arange(k)})
    part["value"] = value
    return part["value"]


def _days(ts: pd.Series, tz: str, today: pd.Timestamp) -> np.ndarray:
    return _formatted(local_dates(ts.reset_index(drop=True), tz).fillna(today), "%Y-%m-%d")


def _candidates(
    b: TaskInputs, as_of: pd.Timestamp, today: pd.Timestamp, config: ScoringConfig, tz: str
) -> _Candidates:
    t = config.tasks
    today_text = today.strftime("%Y-%m-%d")
    end_of_day = local_midnight_utc(today + pd.Timedelta(days=1), tz) - pd.Timedelta(minutes=1)
    end_of_day = max(end_of_day, as_of)  # planned in the day's last minute: due now, not before
    same_day = min(as_of + pd.Timedelta(hours=t.same_day_due_hours), end_of_day)
    soon = as_of + pd.Timedelta(minutes=t.burning_due_minutes)
    # (score rows, rule, variant, period texts or None for today's, due times, birthday date)
    parts: list[tuple[np.ndarray, int, Any, Any, pd.Series, Any]] = []

    is_hot = b.temperature.eq("hot")
    turned_hot = is_hot & ~b.previous_temperature.eq("hot")
    burning = b.segment.eq("burning")
    # A burning contact is called whatever its temperature; once per hot episode when hot, else
    # once per burning episode.
    idx = np.flatnonzero(turned_hot | burning)
    hot_day = _days(b.hot_since.iloc[idx], tz, today)
    seg_day = _days(b.segment_since.iloc[idx], tz, today)
    fire = burning[idx]
    due = pd.Series(same_day, index=range(len(idx))).where(~fire, soon)
    variant = np.where(fire, VARIANTS.index("call_now_burning"), VARIANTS.index("call_now"))
    parts.append((idx, CALL_NOW, variant, np.where(is_hot[idx], hot_day, seg_day), due, None))

    idx = np.flatnonzero(b.segment.eq("at_risk"))
    period = _days(b.segment_since.iloc[idx], tz, today)
    parts.append(
        (idx, AT_RISK, VARIANTS.index("at_risk"), period, _constant(same_day, len(idx)), None)
    )
    idx = np.flatnonzero(b.segment.eq("difficult"))
    parts.append(
        (idx, REVIEW, VARIANTS.index("review"), None, _constant(end_of_day, len(idx)), None)
    )

    due_rows = (b.next_touch_due <= today).to_numpy()
    maybe = np.flatnonzero(due_rows & b.birthday.notna().to_numpy())
    nxt = _next_birthday(b.birthday.iloc[maybe].reset_index(drop=True), today)
    in_window = ((nxt - today).dt.days <= t.birthday_window_days).to_numpy()
    bday_due = (
        (nxt + pd.Timedelta(hours=t.birthday_due_hour))
        .dt.tz_localize(tz, nonexistent="shift_forward", ambiguous=False)
        .dt.tz_convert("UTC")
    )
    bday_due = bday_due.where(bday_due > as_of, as_of)
    nxt = nxt[in_window]
    parts.append(
        (
            maybe[in_window],
            BIRTHDAY,
            VARIANTS.index("birthday"),
            _formatted(nxt, "%Y", missing="0"),
            bday_due[in_window].reset_index(drop=True),
            _formatted(nxt, "%d.%m"),
        )
    )
    bday = np.zeros(b.n, dtype=bool)
    bday[maybe[in_window]] = True
    idx = np.flatnonzero(due_rows & ~bday)
    parts.append((idx, TOUCH, _touch_variant(b, idx), None, _constant(end_of_day, len(idx)), None))

    def column(values: list[Any]) -> np.ndarray:
        return np.concatenate(
            [
                np.broadcast_to(np.asarray(v), (len(p[0]),))
                for v, p in zip(values, parts, strict=True)
            ]
        )

    non_empty = [p for p in parts if len(p[0])] or parts[:1]
    due_at = pd.to_datetime(pd.concat([p[4] for p in non_empty], ignore_index=True), utc=True)
    dates = [np.full(len(p[0]), np.nan, dtype=object) if p[5] is None else p[5] for p in parts]
    # periods as codes: today's date (review, touch) is code 0, the others coded per part
    periods = [np.array([today_text], dtype=object)]
    codes = []
    size = 1
    for p in parts:
        if p[3] is None:
            codes.append(np.zeros(len(p[0]), dtype=np.int64))
            continue
        code, distinct = pd.factorize(np.asarray(p[3], dtype=object))
        codes.append(code + size)
        periods.append(np.asarray(distinct, dtype=object))
        size += len(distinct)
    return _Candidates(
        row=np.concatenate([p[0] for p in parts]).astype(np.int64),
        rule=column([p[1] for p in parts]).astype(np.int8),
        variant=column([p[2] for p in parts]).astype(np.int8),
        period=np.concatenate(codes),
        periods=np.concatenate(periods),
        due_at=due_at,
        date=np.concatenate(dates),
    )


def _task_keys(b: TaskInputs, cand: _Candidates) -> np.ndarray:
    """ "{portal}:{contact_id}:{rule}:{period}" per candidate, NaN where the portal or the id is
    missing: the text of each portal prefix and each (rule, period) suffix is made once."""
    suffix_of = cand.period * len(RULES) + cand.rule
    combo, distinct = pd.factorize(suffix_of)
    rule_names = np.asarray(RULES, dtype=object)
    periods = cand.periods
    suffixes = ":" + rule_names[distinct % len(RULES)] + ":" + periods[distinct // len(RULES)]
    prefixes = np.asarray(b.portals, dtype=object) + ":"
    pc = b.portal_code[cand.row]
    ok = (pc >= 0) & (b.contact_code[cand.row] >= 0)
    out = np.full(len(cand.row), np.nan, dtype=object)
    rows = np.flatnonzero(ok)
    out[rows] = prefixes[pc[rows]] + b.contact_id[cand.row[rows]] + suffixes[combo[rows]]
    return out


def _score_ranks(score: np.ndarray) -> np.ndarray:
    """Place of each score in descending order of the distinct scores, NaN last."""
    codes, distinct = pd.factorize(score + 0.0)  # -0.0 equal to 0.0
    place = np.empty(len(distinct) + 1, dtype=np.int64)
    place[np.argsort(-np.asarray(distinct), kind="stable")] = np.arange(len(distinct))
    place[-1] = len(distinct)
    ranks: np.ndarray = place[codes]
    return ranks


def _cumcount(groups: np.ndarray) -> np.ndarray:
    """Each row's position among the earlier rows of its group."""
    order = np.argsort(groups, kind="stable")
    starts, sizes = group_starts(groups[order])
    out = np.empty(len(groups), dtype=np.int64)
    out[order] = np.arange(len(groups)) - np.repeat(starts, sizes)
    return out


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
    b = task_inputs(scores, contacts, history)
    if b is None:
        return TaskPlan(_empty_tasks(), skipped)
    cand = _candidates(b, as_of, today, config, tz)
    row, rule = cand.row, cand.rule
    rule_names = np.asarray(RULES, dtype=object)
    task_key = _task_keys(b, cand)

    h = b.history
    key_known = np.zeros(len(row), dtype=bool)
    if len(h):
        key_known = pd.Series(task_key).isin(set(h["task_key"].dropna())).to_numpy(dtype=bool)
    done = key_known.copy()
    is_past = (h["created_at"] <= as_of).to_numpy(dtype=bool)
    past = h[is_past]

    def in_history(h_rows: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
        """The candidates whose pair is among the history rows `h_rows` (a superset of those a
        join on the texts matches), with their portal, contact_id and rule."""
        sel = np.flatnonzero(marked(b.history_pair[h_rows], b.n_pairs)[b.pair[row]])
        keys = pd.DataFrame(
            {
                "portal": b.portal[row[sel]],
                "contact_id": b.contact_id[row[sel]],
                "rule": rule_names[rule[sel]],
            }
        )
        return sel, keys

    past_rows = np.flatnonzero(is_past)
    if len(past):
        # A call (call_now, at_risk) or birthday task is a touch too: it starts the touch cooldown.
        touch_like = past[past["rule"].isin(TOUCH_LIKE_RULES)].assign(rule="touch")
        cooled = pd.concat([past, touch_like], ignore_index=True)
        last = cooled.groupby(["portal", "contact_id", "rule"])["created_at"].max().rename("last")
        sel, keys = in_history(past_rows)
        if len(sel):
            keys = keys.join(last, on=["portal", "contact_id", "rule"])
            age = (today - local_dates(keys["last"], tz)).dt.days
            cooling = (age < keys["rule"].map(t.cooldown_days)).fillna(False)
            done[sel] |= cooling.to_numpy(dtype=bool)

    # A call planned now, or created earlier today, is the touch: no separate touch or birthday
    # task for that contact (counting earlier today keeps a same-day rerun from adding one).
    is_call = (rule == CALL_NOW) | (rule == AT_RISK)
    called = np.zeros(b.n, dtype=bool)
    called[row[is_call & ~done]] = True
    called = called[row]
    if len(past):
        call_today = (
            past["rule"].isin(CALL_RULES) & (local_dates(past["created_at"], tz) == today)
        ).to_numpy(dtype=bool)
        today_calls = past[call_today]
        sel, keys = in_history(past_rows[call_today])
        if len(sel):
            called_today = pd.MultiIndex.from_frame(today_calls[["portal", "contact_id"]])
            found = pd.MultiIndex.from_frame(keys[["portal", "contact_id"]]).isin(called_today)
            called[sel] |= found
    keep = ~(((rule == TOUCH) | (rule == BIRTHDAY)) & called)
    idx = np.flatnonzero(keep)
    row, rule, done, key_known, task_key = (
        row[idx],
        rule[idx],
        done[idx],
        key_known[idx],
        task_key[idx],
    )
    variant, period, date = cand.variant[idx], cand.period[idx], cand.date[idx]
    due_at = cand.due_at.take(idx)

    dnc = b.do_not_contact[row]
    no_owner = b.no_owner[row] & ~dnc
    done = done & ~dnc & ~no_owner
    skipped["do_not_contact"] = int(dnc.sum())
    skipped["no_owner"] = int(no_owner.sum())
    skipped["already_done"] = int(done.sum())
    dropped = dnc | no_owner | done
    why = np.select([dnc, no_owner, key_known], [0, 1, 2], 3)
    reasons = np.asarray(["do_not_contact", "no_owner", "already_done", "cooldown"], dtype=object)
    gone = np.flatnonzero(dropped)

    # most urgent first: urgency_order (a burning call is "burning"), score descending, then
    # portal and contact_id as text, missing values last, ties in candidate order
    live = np.flatnonzero(~dropped)
    rank: dict[str, int] = {name: i for i, name in enumerate(t.urgency_order)}
    burning_call = variant[live] == VARIANTS.index("call_now_burning")
    urgency_rank = np.array([rank.get(r, len(rank)) for r in RULES], dtype=np.int64)[rule[live]]
    urgency_rank[burning_call] = rank.get("burning", len(rank))
    keys = [
        urgency_rank,
        _score_ranks(b.score[row[live]]),
        b.portal_rank[row[live]],
        b.contact_rank[row[live]],
    ]
    widths = [len(rank) + 1, b.n + 1, len(b.portals) + 1, int(b.contact_rank.max(initial=0)) + 1]
    if np.prod([float(w) for w in widths]) < 2**62:
        key = np.zeros(len(live), dtype=np.int64)
        for k, w in zip(keys, widths, strict=True):
            key = key * w + k
        order = live[np.argsort(key, kind="stable")]
    else:
        order = live[np.lexsort(keys[::-1])]

    # the daily cap per (portal, owner), counting today's tasks in the history
    srow = row[order]
    o_code = b.owner_code[srow]
    p_code = b.portal_code[srow]
    group = p_code.astype(np.int64) * (int(b.owner_code.max(initial=0)) + 2) + o_code
    missing = (p_code < 0) | (o_code < 0)
    position = _cumcount(np.where(missing, -1, group))
    g_code, _ = pd.factorize(group)
    first = srow[first_of_codes(g_code)]
    reps = pd.DataFrame({"portal": b.portal[first], "owner_id": b.owner_id[first]})
    used = _used_today(b, past, past_rows, as_of, today, tz)
    taken = (
        reps.join(used, on=["portal", "owner_id"])["used"].fillna(0).to_numpy()
        if len(used)
        else np.zeros(len(reps))
    )
    room = np.clip(t.daily_cap - taken, 0, None)[g_code]
    fits = (position < room) & ~missing
    urgency_burning = variant[order] == VARIANTS.index("call_now_burning")
    if not t.cap_burning:
        fits |= urgency_burning
    skipped["over_cap"] = int((~fits).sum())
    o_rows = order[np.flatnonzero(~fits)]
    left_out = _object_frame(
        {
            "contact_id": b.contact_id[row[o_rows]],
            "owner_id": b.owner_id[row[o_rows]],
            "rule": rule_names[rule[o_rows]],
            "display_name": b.display_name(row[o_rows]),
            "portal": b.portal[row[o_rows]],
        }
    )
    left_out.insert(3, "score", b.score[row[o_rows]])
    # the candidates dropped, in candidate order, then those over the cap, most urgent first
    both = np.concatenate([gone, o_rows])
    if len(both):
        not_created = _object_frame(
            {
                "contact_id": b.contact_id[row[both]],
                "rule": rule_names[rule[both]],
                "task_key": task_key[both],
                "reason": np.concatenate(
                    [reasons[why[gone]], np.full(len(o_rows), "over_cap", dtype=object)]
                ),
            }
        )
    else:
        not_created = _empty_not_created().astype("object")
    kept = order[np.flatnonzero(fits)]
    if len(kept) == 0:
        return TaskPlan(_empty_tasks(), skipped, left_out, not_created)
    return TaskPlan(
        _tasks(
            b, config, texts, kept, row, rule, variant, cand.periods[period], due_at, date, task_key
        ),
        skipped,
        left_out,
        not_created,
    )


def _object_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A frame of fresh columns, taken as they are (not copied into one block)."""
    return pd.DataFrame(columns, copy=False)


def _used_today(
    b: TaskInputs,
    past: pd.DataFrame,
    past_rows: np.ndarray,
    as_of: pd.Timestamp,
    today: pd.Timestamp,
    tz: str,
) -> pd.Series:
    """Tasks created today in the history per (portal, owner_id) of their contact (the first
    contact row of its pair)."""
    if len(past) == 0:
        return pd.Series(dtype="int64")
    is_today = (local_dates(past["created_at"], tz) == today).to_numpy(dtype=bool)
    today_h = past[is_today]
    if len(today_h) == 0:
        return pd.Series(dtype="int64")
    # only the contacts of today's tasks need their owners
    mine = marked(b.history_pair[past_rows[is_today]], b.n_pairs)[b.contact_pair]
    owners = b.contacts.loc[mine, ["portal", "contact_id", "owner_id"]]
    return (
        today_h.merge(owners.drop_duplicates(["portal", "contact_id"]), on=["portal", "contact_id"])
        .groupby(["portal", "owner_id"])
        .size()
        .rename("used")
    )


def _tasks(
    b: TaskInputs,
    config: ScoringConfig,
    texts: dict[str, Any],
    kept: np.ndarray,
    row: np.ndarray,
    rule: np.ndarray,
    variant: np.ndarray,
    period: np.ndarray,
    due_at: pd.Series,
    date: np.ndarray,
    task_key: np.ndarray,
) -> pd.DataFrame:
    """The tasks kept, with TASK_COLUMNS and their subject and body texts."""
    t = config.tasks
    rows = row[kept]
    rules = rule[kept]
    variants = np.asarray(VARIANTS, dtype=object)[variant[kept]]
    priority = np.asarray(["HIGH", "HIGH", "MEDIUM", "MEDIUM", None], dtype=object)[rules]
    task_type = np.asarray(
        ["CALL", "CALL", "TODO", t.touch_channels["congratulate"], None], dtype=object
    )[rules]
    touch = rules == TOUCH
    temperature = b.temperature.values(rows[touch])
    priority[touch] = pd.Series(temperature, dtype=object).map(t.touch_priority).to_numpy()
    task_type[touch] = pd.Series(variants[touch]).map(t.touch_channels).to_numpy()
    cand = pd.DataFrame(
        {
            "task_key": task_key[kept],
            "portal": b.portal[rows],
            "contact_id": b.contact_id[rows],
            "owner_id": b.owner_id[rows],
            "rule": np.asarray(RULES, dtype=object)[rules],
            "period": period[kept],
            "due_at": due_at.take(kept).reset_index(drop=True),
            "priority": priority,
            "task_type": task_type,
            "score": b.score[rows],
        }
    )
    display = pd.Series(b.display_name(rows), dtype=object)
    subject = pd.Series("", index=cand.index, dtype="object")
    body = pd.Series("", index=cand.index, dtype="object")
    values = {
        "name": display.astype(str),
        "score": cand["score"].map("{:.0f}".format),
        "date": pd.Series(date[kept], dtype=object).fillna(""),
    }
    variant_col = pd.Series(variants)
    for v in variant_col.unique():
        entry = texts["touch"][v] if v in texts["touch"] else texts[v]
        idx = cand.index[variant_col == v]
        sub = {k: val[idx] for k, val in values.items()}
        subject[idx] = fill(entry["subject"], sub, idx)
        body[idx] = fill(entry["body"], sub, idx)
    why = pd.Series(b.reasons(rows), dtype=object).fillna("")
    why_block = "\n\n" + texts["reasons_header"] + "\n- " + why.str.replace("; ", "\n- ")
    body = body + why_block.where(why != "", "")
    cand["subject"] = subject
    cand["body"] = body
    return cand[TASK_COLUMNS]
