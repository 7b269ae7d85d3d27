"""The inputs plan_tasks works from: scores joined with the contact fields tasks need, and the
task history, as arrays keyed by dense integer (portal, contact_id) pairs.

The CRM's current owner and opt-out win over what was copied into the scores; each score finds
its contact (the last row of its (portal, contact_id)) on integer codes (scoring/task_keys.py),
and the history's pairs are coded in the same vocabulary. Only the score and contact columns that
tasks read are conformed (contract._series).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring import contract
from scoring.task_keys import last_row_of, pair_ids, shared_codes, text_ranks

HISTORY_COLUMNS = ("task_key", "contact_id", "rule", "created_at")
SCORE_COLUMNS = {
    "portal": "str",
    "contact_id": "str",
    "owner_id": "str",
    "do_not_contact": "bool",
    "score": "float",
    "reasons": "str",
    "temperature": "str",
    "previous_temperature": "str",
    "segment": "str",
    "is_vip": "bool",
    "hot_since": "ts",
    "segment_since": "ts",
    "next_touch_due": "date",
}
CONTACT_COLUMNS = [
    "portal",
    "contact_id",
    "owner_id",
    "do_not_contact",
    "name",
    "email",
    "birthday",
]


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
    do_not_contact: np.ndarray
    score: np.ndarray
    reasons: np.ndarray
    temperature: np.ndarray
    previous_temperature: np.ndarray
    segment: np.ndarray
    is_vip: np.ndarray
    hot_since: pd.Series
    segment_since: pd.Series
    next_touch_due: pd.Series
    birthday: pd.Series
    name: np.ndarray
    email: np.ndarray
    history: pd.DataFrame  # _history: typed, with portal
    history_pair: np.ndarray
    contacts: pd.DataFrame  # conformed CONTACT_COLUMNS, every row
    contact_pair: np.ndarray

    def display_name(self, rows: np.ndarray) -> np.ndarray:
        """name, else email, else contact_id, of the score rows `rows` (as
        name.fillna(email).fillna(contact_id) gives it)."""
        out: np.ndarray = self.name[rows]
        for other in (self.email, self.contact_id):
            missing = np.flatnonzero(pd.isna(out))
            out[missing] = other[rows[missing]]
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
        do_not_contact=dnc,
        score=m["score"].to_numpy(),
        reasons=m["reasons"].to_numpy(),
        temperature=m["temperature"].to_numpy(),
        previous_temperature=m["previous_temperature"].to_numpy(),
        segment=m["segment"].to_numpy(),
        is_vip=m["is_vip"].to_numpy(dtype=bool),
        hot_since=m["hot_since"],
        segment_since=m["segment_since"],
        next_touch_due=m["next_touch_due"],
        birthday=pd.Series(field("birthday")).where(known),
        name=np.where(known, field("name"), np.nan),
        email=np.where(known, field("email"), np.nan),
        history=h,
        history_pair=h_pair,
        contacts=c,
        contact_pair=c_pair,
    )


def _conformed(frame: pd.DataFrame, spec: dict[str, str], table: str) -> pd.DataFrame:
    """Only the columns of `spec`, each typed as contract.conform types it."""
    index = pd.RangeIndex(len(frame))
    out = {}
    for col, kind in spec.items():
        if col in frame.columns:
            values = frame[col].set_axis(index, copy=False)
        else:
            values = pd.Series(None, index=index, dtype=object)
        try:
            out[col] = contract._series(values, kind)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{table}.{col}: {exc}") from exc
    return pd.DataFrame(out, index=index, copy=False)


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
