"""Lead portals with a known truth (sandbox/leads.py): calibrate learns what the truth says, the
defaults convert in order, too little history keeps the default and says so."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from sandbox.leads import LeadPortal, generate_leads
from scoring import load_config, score_contacts
from scoring.backtest import backtest, roc_auc, signal_lift
from scoring.calibrate import CalibrationReport, band_auc, calibrate_report, choose_thresholds
from scoring.config import ScoringConfig

CFG = load_config(None)
SEEDS = (0, 1, 2)
N = 6_000


@dataclass
class Run:
    portal: LeadPortal
    report: CalibrationReport
    open_: np.ndarray  # open leads at as_of
    y: np.ndarray  # converted in the horizon after as_of (all contacts)
    default: pd.DataFrame
    calibrated: pd.DataFrame
    true_lr_auc: float


def _known(p: LeadPortal) -> pd.DataFrame:
    return p.deals[p.deals["closed_at"] <= p.as_of]


def true_lr_auc(p: LeadPortal, cuts: list[pd.Timestamp]) -> float:
    """A LogisticRegression fitted on the truth's own features, on the open leads of the same
    cuts calibrate learned from, judged on the open leads at as_of."""
    x = [p.true_features(c)[p.open_leads(c)] for c in cuts]
    y = [p.converted(c)[p.open_leads(c)] for c in cuts]
    model = LogisticRegression(C=1.0, max_iter=3000).fit(pd.concat(x), np.concatenate(y))
    m = p.open_leads()
    auc = roc_auc(model.decision_function(p.true_features()[m]), p.converted()[m])
    assert auc is not None
    return auc


@pytest.fixture(scope="module", params=SEEDS)
def run(request) -> Run:
    p = generate_leads(N, seed=request.param)
    report = calibrate_report(p.contacts, p.activities, _known(p), p.as_of, p.horizon_days)
    default = score_contacts(p.contacts, p.activities, p.deals, p.as_of)
    calibrated = score_contacts(p.contacts, p.activities, p.deals, p.as_of, config=report.config)
    return Run(
        portal=p,
        report=report,
        open_=p.open_leads(),
        y=p.converted(),
        default=default,
        calibrated=calibrated,
        true_lr_auc=true_lr_auc(p, report.cuts),
    )


def test_generator_is_reproducible_and_canonical():
    a, b, c = generate_leads(800, seed=3), generate_leads(800, seed=3), generate_leads(800, seed=4)
    for name in ("contacts", "activities", "deals"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.activities.equals(c.activities)
    assert (a.activities["occurred_at"] <= a.as_of).all()
    assert a.activities["type"].isin(["web_session", "page_view", "call", "form_submission"]).any()
    assert (a.deals["status"] == "won").all()
    # every won deal lies within the horizon after an as-of day of the grid
    days = a.as_of_days()
    closed = a.deals["closed_at"]
    after = np.array(
        [(closed > d) & (closed <= d + pd.Timedelta(days=a.horizon_days)) for d in days]
    )
    assert after.any(axis=0).all()
    # the truth differs from the defaults: something useless, something negative
    assert a.truth.coefficients["email_open"] == 0 and a.truth.coefficients["page_view"] < 0


def _rule(config: ScoringConfig, code: str, type_: str) -> int:
    return next(i for i, r in enumerate(config.signals) if r.code == code and type_ in r.types)


def learned_effects(config: ScoringConfig) -> dict[str, float]:
    """The calibrated points of each true effect (sources against organic search, subscribers
    against leads, as in the truth)."""
    s = config.signals
    src, stage = config.profile.source, config.profile.lifecycle_stage
    return {
        "urgent_form": s[_rule(config, "urgent_request", "form_submission")].points,
        "form": s[_rule(config, "form_submitted", "form_submission")].points,
        "session_minutes": s[_rule(config, "site_visits", "web_session")].points_per_minute,
        "page_view": s[_rule(config, "site_visits", "page_view")].points,
        "email_click": s[_rule(config, "email_engagement", "email_click")].points,
        "inbound_message": s[_rule(config, "inbound_message", "chat_message")].points,
        "inbound_call": s[_rule(config, "inbound_call", "call")].points,
        "call_minutes": s[_rule(config, "call_connected", "call")].points_per_minute,
        "unanswered_call": s[_rule(config, "unanswered_calls", "call")].points,
        "unsubscribe": s[_rule(config, "unsubscribed", "unsubscribe")].points,
        **{
            f"source_{k}": src.get(k, 0.0) - src.get("organic_search", 0.0)
            for k in ("paid_search", "referral", "social", "direct", "other")
        },
        "do_not_contact": config.profile.do_not_contact,
        "lifecycle_subscriber": stage.get("subscriber", 0.0) - stage.get("lead", 0.0),
    }


def test_calibrated_reaches_the_true_feature_logistic_regression(run: Run):
    m = run.open_
    auc = roc_auc(run.calibrated["score"].to_numpy()[m], run.y[m])
    default = roc_auc(run.default["score"].to_numpy()[m], run.y[m])
    assert auc is not None and default is not None
    assert auc >= run.true_lr_auc - 0.01, (auc, run.true_lr_auc)
    assert auc > default
    assert run.report.calibrated and run.report.validation["beats"]


def test_signs_of_the_true_effects_are_recovered(run: Run):
    learned = learned_effects(run.report.config)
    truth = run.portal.truth.coefficients
    wrong = {k: v for k, v in learned.items() if truth[k] != 0 and np.sign(v) != np.sign(truth[k])}
    assert not wrong
    # the effect the defaults have upside down: page views predict not buying here
    assert learned["page_view"] < 0 < CFG.signals[_rule(CFG, "site_visits", "page_view")].points


def test_default_bands_convert_in_order(run: Run):
    r = backtest(run.default[run.open_], run.portal.deals, run.portal.as_of, 14)
    rates = r.by_band.set_index("band")["rate"]
    assert r.band_order_ok and rates["hot"] > rates["warm"] > rates["cold"]
    assert r.auc is not None and r.auc > 0.65


def test_calibrated_bands_come_near_the_best_three_band_split(run: Run):
    # the whole portal, as the backtest sees it (customers who bought before included)
    m = np.ones(len(run.y), dtype=bool)
    score, y = run.calibrated["score"].to_numpy(), run.y
    t = run.report.config.temperature
    bands = band_auc(score, y, t.warm, t.hot)
    _, _, best = choose_thresholds(score, y, run.report.config)
    assert bands is not None and bands >= best["band_auc"] - 0.03
    rates = backtest(run.calibrated[m], run.portal.deals, run.portal.as_of, 14).by_band
    rate = rates.set_index("band")["rate"]
    assert rate["hot"] > rate["warm"] > rate["cold"]


def test_reasons_still_name_the_evidence_and_the_config_round_trips(run: Run, tmp_path):
    hot = run.calibrated[run.calibrated["temperature"] == "hot"]
    # who they are (source, do-not-contact) counts but is not a reason yet: a few hot leads are
    # hot by their source alone
    assert len(hot) and hot["reasons"].str.len().gt(0).mean() > 0.9
    assert hot["reasons"].str.contains("Filled in a form|Urgent request|Called us").any()
    path = tmp_path / "leads.yaml"
    path.write_text(yaml.safe_dump(run.report.config.model_dump()), encoding="utf-8")
    assert load_config(path) == run.report.config


def test_too_little_history_keeps_the_default_and_says_so(caplog):
    p = generate_leads(400, seed=5)
    with caplog.at_level(logging.WARNING, logger="heatsync"):
        report = calibrate_report(p.contacts, p.activities, _known(p), p.as_of, p.horizon_days)
    assert report.conversions < 30
    assert not report.calibrated
    assert report.config.signals == CFG.signals and report.config.profile == CFG.profile
    assert report.config.temperature == CFG.temperature
    own = {"horizon_days", "value_reference"}  # the only settings taken from this history
    assert report.config.customers.model_dump(exclude=own) == CFG.customers.model_dump(exclude=own)
    assert "too little history" in report.notes[-1]
    assert "too little history" in caplog.text


def test_per_signal_lift_shows_what_predicts_and_what_does_not(run: Run):
    r = backtest(run.default[run.open_], run.portal.deals, run.portal.as_of, 14)
    lift = r.by_signal.set_index("signal")["lift"]
    assert lift["urgent_request"] > 2 and lift["form_submitted"] > 1
    assert lift["unsubscribed"] < 1 and lift["no_recent_activity"] < 1
    assert r.to_dict()["by_signal"][0]["signal"] == r.by_signal["signal"].iloc[0]


def test_signal_lift_counts_with_and_without():
    codes = pd.Series(["a,b", "a", "", None, "b,b"])
    lift = signal_lift(codes, np.array([True, True, False, False, False]))
    a = lift.set_index("signal").loc["a"]
    assert (a["n_with"], a["converted_with"], a["rate_with"], a["rate_without"]) == (2, 2, 1.0, 0.0)
    assert a["lift"] == np.inf
    b = lift.set_index("signal").loc["b"]  # a code listed twice counts once
    assert (b["n_with"], b["converted_with"]) == (2, 1)
    assert b["lift"] == pytest.approx(0.5 / (1 / 3))
    assert list(lift["signal"]) == ["a", "b"]
