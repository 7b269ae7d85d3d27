"""The scores plan_tasks works from, joined with the contact fields tasks need.

The CRM's current owner and opt-out win over what was copied into the scores; each score finds
its contact (the last row of its (portal, contact_id)) on integer codes (scoring/codes.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import contract
from scoring.codes import contact_rows, last_of_each_key


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
