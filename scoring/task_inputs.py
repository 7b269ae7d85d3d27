"""The inputs plan_tasks works from: scores joined with the contact fields tasks need, and the
task history, as arrays keyed by dense integer (portal, contact_id) pairs.

The CRM's current owner and opt-out win over what was copied into the scores; each score finds
its contact (the last row of its (portal, contact_id)) on integer codes (scoring/task_keys.py),
and the history's pairs are coded in the same vocabulary. Only the score and contact columns that
tasks read are typed as contract.conform types them: temperature, previous temperature and segment
by their distinct values, the scores' reasons and the contacts' names and emails only for the rows
shown (reading them can never fail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring import contract
from scoring.features import DAY_NS
from scoring.groups import NAT
from scoring.task_keys import last_row_of, pair_ids, shared_codes, text_ranks

HISTORY_COLUMNS = ("task_key", "contact_id", "rule", "created_at")
# typed up front; temperature, previous_temperature and segment are coded (text_codes types each
# distinct value), reasons and the contacts' name and email are typed for the rows shown only
SCORE_COLUMNS = {
    "portal": "str",
    "contact_id": "str",
    "owner_id": "str",
    "do_not_contact": "bool",
    "score": "float",
    "is_vip": "bool",
    "hot_since": "ts",
    "segment_since": "ts",
    "next_touch_due": "date",
}
CONTACT_COLUMNS = ["portal", "contact_id", "owner_id", "do_not_contact", "birthday"]


@dataclass(frozen=True)
class Coded:
    """A text column as codes (-1 where missing) into its distinct texts."""

    codes: np.ndarray
    names: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str) -> Coded:
        values = frame[column] if column in frame.columns else pd.Series(None, index=frame.index)
        # as text_codes, but hashing the values: faster than by object identity for a column of
        # a few distinct texts
        codes, uniques = pd.factorize(values)
        typed = contract._series(pd.Series(np.asarray(uniques, dtype=object), dtype=object), "str")
        merged, names = pd.factorize(typed)
        if len(names) < len(typed) or (merged < 0).any():
            codes = np.append(merged, -1)[codes]
        return cls(codes, np.asarray(names, dtype=object))

    def eq(self, text: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Whether each value (of `rows`) is `text`."""
        codes = self.codes if rows is None else self.codes[rows]
        found = np.flatnonzero(self.names == text)
        if len(found) == 0:
            return np.zeros(len(codes), dtype=bool)
        return np.asarray(codes == found[0])

    def values(self, rows: np.ndarray) -> np.ndarray:
        """The texts of `rows`, None where missing."""
        table = np.append(np.asarray(self.names, dtype=object), np.array([None], dtype=object))
        out: np.ndarray = table[self.codes[rows]]
        return out


@dataclass(frozen=True)
class TaskInputs:
    """Per score row (arrays of length n) the fields tasks read, and the history."""

    n: int
    portal: np.ndarray
    contact_id: np.ndarray
    portal_code: np.ndarray  # text code (-1 missing) in `portals`
    contact_code: np.ndarray  # text code (-1 missing)
    portals: np.ndarray  # distinct portal texts
    portal_rank: np.ndarray  # per row: place in text order, missing last
    contact_rank: np.ndarray
    pair: np.ndarray  # dense (portal, contact_id) id, shared with the history and contacts
    n_pairs: int
    owner_id: np.ndarray
    owner_code: np.ndarray  # -1 where missing
    no_owner: np.ndarray  # owner missing or ""
    do_not_contact: np.ndarray
    score: np.ndarray
    temperature: Coded
    previous_temperature: Coded
    segment: Coded
    is_vip: np.ndarray
    hot_since: pd.Series
    segment_since: pd.Series
    next_touch_due: pd.Series
    birthday: pd.Series
    contact_row: np.ndarray  # row in `contacts` of each score's contact, -1 if none
    scores_in: pd.DataFrame  # the scores as given
    contacts_in: pd.DataFrame  # the contacts as given
    history: pd.DataFrame  # _history: typed, with portal
    history_pair: np.ndarray
    contacts: pd.DataFrame  # conformed CONTACT_COLUMNS, every row
    contact_pair: np.ndarray

    def reasons(self, rows: np.ndarray) -> np.ndarray:
        """The scores' reasons texts of `rows`."""
        return _texts(self.scores_in, "reasons", rows)

    def display_name(self, rows: np.ndarray) -> np.ndarray:
        """name, else email, else contact_id, of the score rows `rows` (as
        name.fillna(email).fillna(contact_id) gives it)."""
        crow = self.contact_row[rows]
        known = np.flatnonzero(crow >= 0)
        out = np.full(len(rows), np.nan, dtype=object)
        out[known] = _texts(self.contacts_in, "name", crow[known])
        nameless = np.flatnonzero(pd.isna(out))
        email = np.full(len(nameless), np.nan, dtype=object)
        has = np.flatnonzero(crow[nameless] >= 0)
        email[has] = _texts(self.contacts_in, "email", crow[nameless[has]])
        out[nameless] = email
        blank = nameless[pd.isna(email)]
        out[blank] = self.contact_id[rows[blank]]
        return out


def task_inputs(
    scores: pd.DataFrame, contacts: pd.DataFrame, history: pd.DataFrame | None
) -> TaskInputs | None:
    """The inputs of plan_tasks; None when there are no scores."""
    m = _conformed(scores, SCORE_COLUMNS, "scores")
    c = _conformed(contacts, {k: contract.CONTACTS[k] for k in CONTACT_COLUMNS}, "contacts")
    n = len(m)
    if n == 0:
        return None
    h = _history(history)
    (sp, cp), portals, hp, n_p = shared_codes([m["portal"], c["portal"]], h["portal"])
    (sc, cc), ids, hc, n_c = shared_codes([m["contact_id"], c["contact_id"]], h["contact_id"])
    (s_pair, c_pair, h_pair), n_pairs = pair_ids([sp, cp, hp], [sc, cc, hc], n_p, n_c)
    # each score's contact: the last contact row of its pair
    row = last_row_of(c_pair, n_pairs)[s_pair]
    known = row >= 0
    at = np.where(known, row, 0)

    def field(name: str) -> np.ndarray:
        values = c[name].to_numpy()
        return values[at] if len(values) else np.zeros(n, dtype=values.dtype)

    # the CRM's current owner and opt-out win over what was copied into the scores
    owner = np.where(known, field("owner_id"), m["owner_id"].to_numpy())
    dnc = np.where(known, field("do_not_contact"), m["do_not_contact"].to_numpy()).astype(bool)
    owner_code, owners = pd.factorize(owner)
    blank = np.append(np.asarray(owners, dtype=object) == "", True)  # -1: missing
    return TaskInputs(
        n=n,
        portal=m["portal"].to_numpy(),
        contact_id=m["contact_id"].to_numpy(),
        portal_code=sp,
        contact_code=sc,
        portals=portals,
        portal_rank=text_ranks(portals)[sp],
        contact_rank=text_ranks(ids)[sc],
        pair=s_pair,
        n_pairs=n_pairs,
        owner_id=owner,
        owner_code=owner_code,
        no_owner=blank[owner_code],
        do_not_contact=dnc,
        score=m["score"].to_numpy(),
        temperature=Coded.of(scores, "temperature"),
        previous_temperature=Coded.of(scores, "previous_temperature"),
        segment=Coded.of(scores, "segment"),
        is_vip=m["is_vip"].to_numpy(dtype=bool),
        hot_since=m["hot_since"],
        segment_since=m["segment_since"],
        next_touch_due=m["next_touch_due"],
        birthday=pd.Series(field("birthday")).where(known),
        contact_row=row,
        scores_in=scores,
        contacts_in=contacts,
        history=h,
        history_pair=h_pair,
        contacts=c,
        contact_pair=c_pair,
    )


def _is_dates(values: pd.Series) -> bool:
    """Whether a column is naive midnights already (contract._series(values, "date") is then
    the column itself)."""
    if values.dtype != "datetime64[ns]":
        return False
    stamps = values.to_numpy().view(np.int64)
    return bool(((stamps % DAY_NS == 0) | (stamps == NAT)).all())


def _conformed(frame: pd.DataFrame, spec: dict[str, str], table: str) -> pd.DataFrame:
    """Only the columns of `spec`, each typed as contract.conform types it."""
    index = pd.RangeIndex(len(frame))
    out = {}
    for col, kind in spec.items():
        if col in frame.columns:
            values = frame[col].set_axis(index, copy=False)
        else:
            values = pd.Series(None, index=index, dtype=object)
        if kind == "date" and _is_dates(values):
            out[col] = values
            continue
        try:
            out[col] = contract._series(values, kind)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{table}.{col}: {exc}") from exc
    return pd.DataFrame(out, index=index, copy=False)


def _texts(frame: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of a text column, typed as contract.conform types it (None if no column)."""
    if column not in frame.columns:
        return np.full(len(rows), None, dtype=object)
    values = pd.Series(frame[column].to_numpy(dtype=object)[rows], dtype=object)
    out: np.ndarray = contract._series(values, "str").to_numpy()
    return out


def _history(history: pd.DataFrame | None) -> pd.DataFrame:
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
