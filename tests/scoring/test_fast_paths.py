"""The fast paths of scoring give exactly what a straightforward implementation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sandbox.synthetic import synthetic_portal
from scoring import contract, load_config, score_contacts
from scoring.codes import _activity_contacts, text_codes
from scoring.explain import strongest_first
from scoring.features import (
    UNKNOWN,
    _contact_index,
    _match_rules,
    _touch_mask,
    age_days,
    intent_pattern,
    local_date,
    prepare,
)
from scoring.groups import (
    dense_groups,
    group_count,
    group_int_min,
    group_latest,
    group_max,
    group_min,
    group_sum,
)
from scoring.tasks import _formatted
from scoring.temperature import _activity_evidence, evidence, unanswered_penalty

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
CFG = load_config(None)
TZ = "Europe/Riga"


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
    assert list(a["code"].astype(object).where(a["code"].notna(), None)) == list(codes[expected])


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


def test_text_codes_equal_converting_every_value_to_text() -> None:
    rng = np.random.default_rng(5)
    # equal texts in distinct objects, None, NaN, numbers: codes must follow the text
    pool = np.array(["a", "b", "".join(["a"]), "b" + "", None, np.nan, 7, 7.5, "7"], dtype=object)
    values = pool[rng.integers(0, len(pool), 5_000)]
    expected = contract._series(pd.Series(values, dtype=object), "str")
    for given in (values, pd.Series(values), pd.Series(values).astype("category")):
        codes, names = text_codes(given)
        assert len(set(names)) == len(names)
        got = pd.Series(np.append(names, None)[codes], dtype=object)
        pd.testing.assert_series_equal(got, expected, check_names=False)
    texts = pd.Series(values[[isinstance(v, str) for v in values]], dtype=object)
    for dtype in ("string[pyarrow]", pd.ArrowDtype(pa.string())):
        codes, names = text_codes(texts.astype(dtype))
        assert list(names[codes]) == list(texts)


def test_activity_contacts_equal_the_multiindex_lookup() -> None:
    contacts, activities, _ = _portal()
    contacts.loc[contacts.index[:50], "portal"] = None
    contacts = contracts_unique(contacts)
    acts = activities.copy()
    acts.loc[acts.index[::97], "portal"] = None
    acts.loc[acts.index[::89], "contact_id"] = "nobody"
    acts.loc[acts.index[::83], "contact_id"] = None
    expected = _contact_index(acts, contacts)
    assert (expected == -1).any() and (expected >= 0).any()
    np.testing.assert_array_equal(_activity_contacts(acts, contacts)[0], expected)
    # many portals: the hash lookup instead of the table of every (portal, id) pair
    many = contacts.assign(portal=[f"p{i}" for i in range(len(contacts))])
    acts_many = acts.assign(
        portal=acts["contact_id"].map(
            dict(zip(contacts["contact_id"], many["portal"], strict=True))
        )
    )
    expected = _contact_index(acts_many, many)
    np.testing.assert_array_equal(_activity_contacts(acts_many, many)[0], expected)


def contracts_unique(contacts: pd.DataFrame) -> pd.DataFrame:
    c = contract.conform(contacts, "contacts")
    return c.drop_duplicates(["portal", "contact_id"], keep="last").reset_index(drop=True)


def test_group_reductions_equal_pandas_group_bys() -> None:
    rng = np.random.default_rng(9)
    n, size = 50_000, 3_000
    groups = rng.integers(0, size, n)
    values = rng.normal(size=n)
    values[::13] = np.nan
    ints = rng.integers(-5, 400, n)
    stamps = rng.integers(0, 2 * 10**18, n).astype("datetime64[ns]")
    frame = pd.DataFrame({"g": groups, "v": values, "i": ints, "t": stamps})
    by = frame.groupby("g")
    index = pd.RangeIndex(size + 5)  # groups with no rows at the end
    m = len(index)
    np.testing.assert_array_equal(group_min(groups, values, m), by["v"].min().reindex(index))
    np.testing.assert_array_equal(group_max(groups, values, m), by["v"].max().reindex(index))
    np.testing.assert_array_equal(group_int_min(groups, ints, m), by["i"].min().reindex(index))
    np.testing.assert_array_equal(group_latest(groups, stamps, m), by["t"].max().reindex(index))
    np.testing.assert_allclose(
        group_sum(groups, values, m), by["v"].sum().reindex(index, fill_value=0), rtol=1e-12
    )
    np.testing.assert_array_equal(group_count(groups, m), by.size().reindex(index, fill_value=0))
    number, keys = dense_groups(groups * 7 + ints % 7, size * 7)
    codes, uniques = pd.factorize(groups * 7 + ints % 7, sort=True)
    np.testing.assert_array_equal(number, codes)
    np.testing.assert_array_equal(keys, uniques)


def _prepared_row_by_row(contacts, activities, deals) -> pd.DataFrame:
    """The activity columns of prepare, each computed on every row of conformed activities."""
    c = contracts_unique(contacts[contacts["created_at"] <= AS_OF])
    a = contract.conform(activities, "activities")
    a["cidx"] = _contact_index(a, c)
    a = a[(a["occurred_at"] <= AS_OF) & (a["cidx"] >= 0)].reset_index(drop=True)
    a["age"] = age_days(a["occurred_at"], local_date(AS_OF, TZ), TZ).astype("int64")
    has_text = a["text"].notna() & a["type"].isin(CFG.intent_types)
    a["intent"] = a["text"].where(has_text).str.contains(intent_pattern(CFG), na=False)
    a["is_touch"] = _touch_mask(a, CFG).to_numpy()
    return a


def test_prepared_activities_equal_row_by_row() -> None:
    contacts, activities, deals = _portal()
    activities.loc[activities.index[::5], "text"] = "please send me a quote"
    activities.loc[activities.index[::211], "contact_id"] = "nobody"
    expected = _prepared_row_by_row(contacts, activities, deals)
    got = prepare(contacts, activities, deals, AS_OF, CFG, TZ).activities
    assert expected["intent"].any()
    duration = np.nan_to_num(expected["duration_s"].to_numpy(dtype=float), nan=0.0)
    max_minutes = _match_rules(expected, CFG)["max_minutes"].to_numpy(dtype=float)
    expected["minutes"] = np.clip(duration / 60.0, 0.0, max_minutes)
    assert (expected["minutes"] > 0).any()
    for col in ("cidx", "age", "intent", "is_touch", "occurred_at", "minutes", "is_rollup"):
        np.testing.assert_array_equal(got[col].to_numpy(), expected[col].to_numpy(), err_msg=col)
    for col in ("contact_id", "type", "direction", "outcome"):
        assert list(got[col].astype(object).where(got[col].notna(), None)) == list(expected[col])


def test_evidence_equals_pandas_group_bys() -> None:
    prep = prepare(*_portal(), AS_OF, CFG, TZ)
    a = prep.activities
    a = a[a["rule"] >= 0]
    window = (a["age"] <= CFG.reasons.count_window_days).astype("int64")
    per_code = (
        a.assign(w=window, code=a["code"].astype(object))
        .groupby(["cidx", "code"])
        .agg(strength=("contrib", "sum"), days=("age", "min"), count=("w", "sum"))
    )
    got = _activity_evidence(prep, CFG).set_index(["cidx", "code"]).sort_index()
    assert len(got) == len(per_code)
    caps = {r.code: r.cap for r in CFG.signals if r.cap is not None}
    cap = per_code.index.get_level_values("code").map(caps).to_numpy(dtype=float)
    cap = np.where(np.isnan(cap), np.inf, cap)
    strength = np.clip(per_code["strength"].to_numpy(), -cap, cap)
    np.testing.assert_allclose(got["strength"].to_numpy(), strength, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got["days"].to_numpy(), per_code["days"].to_numpy())
    np.testing.assert_array_equal(got["count"].to_numpy(), per_code["count"].to_numpy())
    ev = evidence(prep, CFG)
    assert not ev.duplicated(["cidx", "code"]).any()
    merged = pd.concat([got.reset_index(), unanswered_penalty(prep, CFG)], ignore_index=True)
    merged = merged.groupby(["cidx", "code"]).agg(
        strength=("strength", "sum"), days=("days", "min"), count=("count", "max")
    )
    ours = ev.set_index(["cidx", "code"]).loc[merged.index]
    np.testing.assert_allclose(ours["strength"], merged["strength"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ours["days"].to_numpy(), merged["days"].to_numpy(dtype=float))


def test_strongest_first_equals_sort_values() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    allr = pd.DataFrame(
        {
            "cidx": rng.integers(0, 2_000, n),
            "code": rng.choice(["b", "a", "c_x", "Z", "aa"], n),
            "abs": rng.integers(0, 6, n) / 2.0,  # many ties
        }
    )
    expected = allr.sort_values(
        ["cidx", "abs", "code"], ascending=[True, False, True], kind="stable"
    )
    expected = expected.assign(rank=expected.groupby("cidx").cumcount())
    pd.testing.assert_frame_equal(strongest_first(allr), expected)


def test_formatted_dates_equal_strftime() -> None:
    dates = pd.Series(pd.to_datetime(["2026-01-05", None, "2026-12-31", "2026-01-05", None]))
    for fmt in ("%Y-%m-%d", "%d.%m"):
        expected = dates.dt.strftime(fmt).to_numpy()
        got = _formatted(dates, fmt)
        assert [str(v) for v in got] == [str(v) for v in expected]
    years = dates.dt.year.fillna(0).astype("int64").astype(str).to_numpy()
    assert list(_formatted(dates, "%Y", missing="0")) == list(years)


def test_scores_equal_whatever_the_text_columns_dtype() -> None:
    contacts, activities, deals = _portal()
    expected = score_contacts(contacts, activities, deals, AS_OF, CFG, tz=TZ)

    def recast(frame: pd.DataFrame, dtype: object) -> pd.DataFrame:
        text = [c for c in frame.columns if frame[c].dtype == object]
        return frame.astype(dict.fromkeys(text, dtype))

    for dtype in ("category", "string[pyarrow]", pd.ArrowDtype(pa.string())):
        got = score_contacts(
            recast(contacts, dtype),
            recast(activities, dtype),
            recast(deals, dtype),
            AS_OF,
            CFG,
            tz=TZ,
        )
        pd.testing.assert_frame_equal(got, expected, obj=str(dtype))


@pytest.mark.parametrize("threads", [1, 2])
def test_per_activity_points_in_pieces_equal_whole_columns(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    from scoring import features

    whole = prepare(*_portal(), AS_OF, CFG, TZ).activities
    monkeypatch.setattr(features, "ROWS_PER_PIECE", 7)  # pieces that end mid-way through rules
    monkeypatch.setattr(features, "PIECE_THREADS", threads)
    pieces = prepare(*_portal(), AS_OF, CFG, TZ).activities
    assert len(whole) > 7 * 10 and (whole["points"] > 0).any() and (whole["minutes"] > 0).any()
    for column in ("minutes", "points", "decay", "contrib"):
        np.testing.assert_array_equal(pieces[column].to_numpy(), whole[column].to_numpy())


def test_decay_table_and_listed_combinations_equal_the_per_row_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scoring import features

    fast = prepare(*_portal(), AS_OF, CFG, TZ).activities
    monkeypatch.setattr(features, "DECAY_TABLE_CELLS", 0)  # 0.5 ** (age / half-life) per row
    monkeypatch.setattr(features, "EVERY_COMBINATION", 0)  # only the combinations that occur
    slow = prepare(*_portal(), AS_OF, CFG, TZ).activities
    assert (fast["decay"] > 0).any() and (fast["decay"] < 1).any() and (fast["rule"] < 0).any()
    columns = ["decay", "contrib", "points", "rule", "is_touch", "signal_class", "code"]
    pd.testing.assert_frame_equal(fast[columns], slow[columns], check_exact=True)
