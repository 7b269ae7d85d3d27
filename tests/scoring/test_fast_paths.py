"""The fast paths of scoring give exactly what a straightforward implementation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.synthetic import synthetic_portal
from scoring import contract, load_config
from scoring.features import UNKNOWN, _match_rules, prepare

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
CFG = load_config(None)


def _portal() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    contacts, activities, deals = synthetic_portal(2_000, 40_000, AS_OF, seed=11)
    rng = np.random.default_rng(3)
    for col in ("direction", "outcome"):
        activities.loc[rng.random(len(activities)) < 0.05, col] = None
    activities.loc[rng.random(len(activities)) < 0.02, "direction"] = UNKNOWN
    return contacts, activities, deals


def _rules_row_by_row(acts: pd.DataFrame) -> np.ndarray:
    """The first matching rule of each row, every rule tested on every row."""
    direction = acts["direction"].astype(object).fillna(UNKNOWN)
    outcome = acts["outcome"].astype(object).fillna(UNKNOWN)
    out = np.full(len(acts), -1)
    for i, rule in enumerate(CFG.signals):
        m = acts["type"].astype(object).isin(rule.types).to_numpy()
        if rule.directions is not None:
            m &= direction.isin(rule.directions).to_numpy()
        if rule.outcomes is not None:
            m &= outcome.isin(rule.outcomes).to_numpy()
        if rule.intent is not None:
            m &= (acts["intent"] == rule.intent).to_numpy()
        out[(out == -1) & m] = i
    return out


def test_rules_matched_per_combination_equal_rules_matched_per_row() -> None:
    prep = prepare(*_portal(), AS_OF, CFG, "Europe/Riga")
    a = prep.activities
    expected = _rules_row_by_row(a)
    assert (expected >= 0).any() and (expected == -1).any()
    np.testing.assert_array_equal(a["rule"].to_numpy(), expected)
    plain = a.astype({c: object for c in ("type", "direction", "outcome")})
    np.testing.assert_array_equal(_match_rules(plain, CFG)["rule"].to_numpy(), expected)
    codes = np.array([r.code for r in CFG.signals] + [None], dtype=object)
    assert list(a["code"]) == list(codes[expected])


def _conform_column_by_column(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    spec = contract.TABLES[table]
    out = frame.copy()
    for column, kind in spec.items():
        if column not in out.columns:
            out[column] = pd.Series([None] * len(out), index=out.index, dtype="object")
        out[column] = contract._series(out[column].astype(object), kind)
    ordered = list(spec) + [c for c in out.columns if c not in spec]
    return out[ordered].reset_index(drop=True)


def test_conform_equals_converting_every_column_from_objects() -> None:
    contacts, activities, deals = _portal()
    activities["occurred_at"] = activities["occurred_at"].astype(str)  # text timestamps
    activities.loc[::7, "text"] = np.nan  # NaN, not None, for missing text
    activities["extra"] = 1
    contacts = contacts.drop(columns=["owner_id"]).set_axis(np.arange(len(contacts))[::-1])
    for frame, table in ((contacts, "contacts"), (activities, "activities"), (deals, "deals")):
        got = contract.conform(frame, table)
        pd.testing.assert_frame_equal(got, _conform_column_by_column(frame, table))
        assert not np.shares_memory(got[got.columns[0]].to_numpy(), frame[frame.columns[0]])
