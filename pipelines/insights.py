"""What sales managers look at after a run: transitions since the previous scored day (who warmed
up, who cooled down), hot contacts nobody attends to, and each owner's task load.

Pure pandas over the store's frames (scores/<day>.parquet, contacts, the task ledger), no Dagster:
the contact_scores and crm_tasks assets put these in their metadata and `heatsync report` draws
them into an HTML page. The scores already carry what is needed (owner_id, last_touch_at,
next_touch_due with the band's cadence applied), so nothing here re-scores a contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from scoring import ScoringConfig, plan_tasks
from scoring.features import local_dates
from scoring.tasks import LEFT_OUT_COLUMNS

TEMPERATURES = ("cold", "warm", "hot")
NEW = "new"  # a contact the previous scored day did not have
NO_OWNER = "(no owner)"
RANK = {t: i for i, t in enumerate(TEMPERATURES)}
SHOWN = 50


def _ids(frame: pd.DataFrame) -> pd.Series:
    return frame["contact_id"].astype(str)


def _local_day(day: str) -> pd.Timestamp:
    return pd.Timestamp(day).normalize()


def transitions(previous: pd.DataFrame | None, current: pd.DataFrame) -> pd.DataFrame:
    """Counts of contacts by previous temperature (rows: cold, warm, hot, new) and today's
    (columns: cold, warm, hot). `new` holds the contacts `previous` did not score (all of them
    when there is no previous day); contacts scored before but gone today are not counted."""
    before = (
        pd.Series(dtype="object")
        if previous is None or previous.empty
        else previous.set_index(_ids(previous))["temperature"]
    )
    was = _ids(current).map(before).fillna(NEW).to_numpy()
    now = current["temperature"].astype(str).to_numpy()
    counts = pd.crosstab(pd.Series(was, name="previous"), pd.Series(now, name="today"))
    table = counts.reindex(
        index=[*TEMPERATURES, NEW], columns=list(TEMPERATURES), fill_value=0
    ).astype("int64")
    table.index.name, table.columns.name = "previous", "today"
    return table


def moves(
    previous: pd.DataFrame | None, current: pd.DataFrame, contacts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Contacts scored on both days whose temperature changed: name, owner, both temperatures and
    scores, `change` (score points) and `direction` (+1 warmed up, -1 cooled down)."""
    columns = ["contact_id", "name", "owner_id", "was", "now", "previous_score", "score", "change"]
    if previous is None or previous.empty or current.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in [*columns, "direction"]})
    before = previous.assign(contact_id=_ids(previous)).set_index("contact_id")
    today = current.assign(contact_id=_ids(current))
    both = today[today["contact_id"].isin(before.index)]
    was = both["contact_id"].map(before["temperature"])
    direction = both["temperature"].map(RANK) - was.map(RANK)
    changed = direction.fillna(0) != 0
    out = pd.DataFrame(
        {
            "contact_id": both["contact_id"],
            "name": _names(both, contacts),
            "owner_id": both["owner_id"],
            "was": was,
            "now": both["temperature"],
            "previous_score": both["contact_id"].map(before["score"]).astype("float64"),
            "score": both["score"].astype("float64"),
        }
    )
    out["change"] = out["score"] - out["previous_score"]
    out["direction"] = direction.astype("int64")
    return out[changed].reset_index(drop=True)


def warmed_up(moved: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The `n` contacts of `moves` that moved to a warmer band, largest score gain first."""
    up = moved[moved["direction"] > 0]
    return up.sort_values(["change", "contact_id"], ascending=[False, True]).head(n)


def cooled_down(moved: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The `n` contacts of `moves` that moved to a colder band, largest score loss first."""
    down = moved[moved["direction"] < 0]
    return down.sort_values(["change", "contact_id"], ascending=[True, True]).head(n)


def _names(scores: pd.DataFrame, contacts: pd.DataFrame | None) -> pd.Series:
    ids = _ids(scores)
    if contacts is None or contacts.empty:
        return ids
    known = contacts.assign(contact_id=_ids(contacts)).drop_duplicates("contact_id", keep="last")
    known = known.set_index("contact_id")
    name = known["name"].where(known["name"].notna() & (known["name"] != ""), known["email"])
    return ids.map(name).fillna(ids)


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def hot_unattended(
    scores: pd.DataFrame, day: str, tz: str = "UTC", contacts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Hot contacts on `day` (the portal's local calendar) with no owner, never touched, or whose
    next touch was due before `day` (last touch + their band's cadence, `next_touch_due` in the
    scores), highest score first: contact_id, name, owner_id, score, segment, last_touch,
    touch_due, days_overdue, why."""
    hot = scores[scores["temperature"] == "hot"]
    today = _local_day(day)
    no_owner = _missing(hot["owner_id"])
    never = hot["last_touch_at"].isna()
    due = pd.to_datetime(hot["next_touch_due"]).dt.normalize()
    overdue = ~never & (due < today)
    picked = hot[no_owner | never | overdue]
    last_touch = local_dates(pd.to_datetime(picked["last_touch_at"], utc=True), tz)
    why = (
        no_owner.map({True: "no owner; ", False: ""})
        + never.map({True: "never touched; ", False: ""})
        + overdue.map({True: "touch overdue; ", False: ""})
    )[picked.index].str.rstrip("; ")
    out = pd.DataFrame(
        {
            "contact_id": _ids(picked),
            "name": _names(picked, contacts),
            "owner_id": picked["owner_id"].where(~no_owner.reindex(picked.index), None),
            "score": picked["score"].astype("float64"),
            "segment": picked["segment"],
            "last_touch": last_touch.dt.strftime("%Y-%m-%d"),
            "touch_due": due.reindex(picked.index).dt.strftime("%Y-%m-%d"),
            "days_overdue": (today - due.reindex(picked.index)).dt.days.where(
                overdue.reindex(picked.index)
            ),
            "why": why,
        }
    )
    out["days_overdue"] = out["days_overdue"].astype("Int64")
    return out.sort_values(["score", "contact_id"], ascending=[False, True]).reset_index(drop=True)


def tasks_created_on(ledger: pd.DataFrame, scores: pd.DataFrame, day: str, tz: str) -> pd.DataFrame:
    """The ledger's tasks created on `day` (local calendar), with the owner the day's scores give
    their contact: contact_id, owner_id, rule."""
    created = ledger[ledger["status"] == "created"]
    when = local_dates(pd.to_datetime(created["created_at"], utc=True), tz)
    on_day = created[when == _local_day(day)]
    owners = scores.assign(contact_id=_ids(scores)).drop_duplicates("contact_id")
    owner_of = owners.set_index("contact_id")["owner_id"]
    return pd.DataFrame(
        {
            "contact_id": _ids(on_day),
            "owner_id": _ids(on_day).map(owner_of),
            "rule": on_day["rule"].astype(str),
        }
    ).reset_index(drop=True)


def replanned_left_out(
    scores: pd.DataFrame,
    contacts: pd.DataFrame,
    ledger: pd.DataFrame,
    config: ScoringConfig,
    tz: str,
    locale: str = "en",
) -> pd.DataFrame:
    """Who the daily cap left without a task on the scores' day (scoring's LEFT_OUT_COLUMNS).

    The tasks step keeps only the first rows of its left-out list, so plan again exactly as it
    did: as of the scores' instant, with the tasks created before that instant as history.
    """
    if scores.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in LEFT_OUT_COLUMNS})
    instant = pd.Timestamp(pd.to_datetime(scores["as_of"], utc=True).iloc[0])
    created = pd.to_datetime(ledger["created_at"], utc=True)
    history = ledger[(ledger["status"] == "created") & (created < instant)]
    plan = plan_tasks(
        scores, contacts, as_of=instant, config=config, history=history, locale=locale, tz=tz
    )
    return plan.left_out


def owner_load(created: pd.DataFrame, left_out: pd.DataFrame) -> pd.DataFrame:
    """Per owner: tasks created, by rule (one column per rule), their total, and how many
    candidates the daily cap left out; most loaded first. A missing owner is NO_OWNER."""

    def owners(frame: pd.DataFrame) -> pd.Series:
        return frame["owner_id"].where(~_missing(frame["owner_id"]), NO_OWNER).astype(str)

    by_rule = pd.crosstab(owners(created), created["rule"].astype(str)) if len(created) else None
    left = owners(left_out).value_counts() if len(left_out) else pd.Series(dtype="int64")
    index = sorted(set(left.index) | (set(by_rule.index) if by_rule is not None else set()))
    table = (
        by_rule.reindex(index, fill_value=0)
        if by_rule is not None
        else pd.DataFrame(index=pd.Index(index))
    )
    table = table.astype("int64")
    table.columns = [str(c) for c in table.columns]
    table.insert(0, "created", table.sum(axis=1).astype("int64"))
    table["left_out"] = left.reindex(index, fill_value=0).astype("int64")
    table.index.name = "owner_id"
    table = table.reset_index()
    return table.sort_values(
        ["created", "left_out", "owner_id"], ascending=[False, False, True]
    ).reset_index(drop=True)


def markdown_table(frame: pd.DataFrame, limit: int = SHOWN) -> str:
    """The first `limit` rows as a Markdown table, with a last row saying how many more."""
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.head(limit).itertuples(index=False):
        lines.append("| " + " | ".join(_text(v) for v in row) + " |")
    if len(frame) > limit:
        lines.append(f"| … {len(frame) - limit} more |" + " |" * (len(columns) - 1))
    return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value).replace("|", "/")


@dataclass(frozen=True)
class DayInsights:
    """Everything the manager report shows for one portal and day."""

    day: str
    previous_day: str | None
    scores: pd.DataFrame
    transitions: pd.DataFrame
    moves: pd.DataFrame
    hot_unattended: pd.DataFrame
    owner_load: pd.DataFrame


def day_insights(
    scores: pd.DataFrame,
    day: str,
    previous: tuple[str | None, pd.DataFrame | None],
    contacts: pd.DataFrame,
    ledger: pd.DataFrame,
    config: ScoringConfig,
    tz: str,
) -> DayInsights:
    """All of the above for one scored day of a store."""
    previous_day, previous_scores = previous
    left_out = replanned_left_out(scores, contacts, ledger, config, tz)
    return DayInsights(
        day=day,
        previous_day=previous_day,
        scores=scores,
        transitions=transitions(previous_scores, scores),
        moves=moves(previous_scores, scores, contacts),
        hot_unattended=hot_unattended(scores, day, tz, contacts),
        owner_load=owner_load(tasks_created_on(ledger, scores, day, tz), left_out),
    )
