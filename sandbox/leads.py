"""Lead portals with a known truth: development data for scoring and calibration.

    from sandbox.leads import generate_leads
    portal = generate_leads(8_000, seed=1)

`generate_leads(n, seed, ...)` returns canonical contacts, activities and deals
(scoring/contract.py) of a portal whose leads arrive over `periods * horizon_days + 30` days and
whose TRUE conversion model is known and differs from heatsync's defaults:

- some signals are stronger than the defaults say (a form, an inbound call), some are useless (email
  opens, our own emails), and one predicts the opposite: page views, which bots from the "other"
  source generate by the dozen;
- engagement depth matters: minutes on the site and on connected calls count, the number of
  sessions hardly at all;
- sources differ (a referral is worth much more than social), do-not-contact predicts not buying.

The truth is a logistic model over decayed evidence, the same at every as-of day: each event counts
0.5 ** (age_days / half_life), age in whole UTC days, with the half-lives of heatsync's signal
classes (`TRUE_HALF_LIFE`). Leads are tested at as-of days `as_of - k * horizon_days` (k = periods
- 1 .. 0, oldest first): a lead not converted before an as-of day converts in (as-of, as-of +
horizon] with probability sigmoid(intercept + sum coefficient * feature), and gets a won deal then.
So a converted lead has its won deal within the horizon after the as-of day it was tested on, and
any as-of day of the grid is a fair cut for calibration. Activities run up to `as_of` (nothing later
is known); deals run to `as_of + horizon_days` (the outcomes of the last window).

`LeadPortal.true_features(as_of)` gives the truth's features per contact,
`LeadPortal.open_leads(as_of)` the contacts that exist and have not converted by then,
`LeadPortal.truth` the coefficients. Seeds are reproducible; everything is vectorized numpy/pandas.
Used by tests and benchmarks only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scoring import contract

PORTAL = "leads"
AS_OF = pd.Timestamp("2026-10-01", tz="UTC")
HORIZON_DAYS = 14

# the truth's coefficients: log-odds per decayed event, per decayed minute, or per flag
TRUE_COEFFICIENTS: dict[str, float] = {
    "urgent_form": 1.6,  # a form with intent words (defaults: 70 points)
    "form": 0.9,  # any other form: stronger than the defaults' 20 points
    "web_session": 0.0,  # the number of sessions: useless beyond their minutes
    "session_minutes": 0.06,  # time on the site: what a session is worth
    "page_view": -0.05,  # bots view dozens of pages: page views predict NOT buying
    "email_open": 0.0,  # useless (defaults: 2 points)
    "email_click": 0.3,
    "inbound_message": 0.6,
    "inbound_call": 1.2,  # stronger than the defaults' 40 points
    "call_minutes": 0.09,  # minutes on connected calls we made
    "unanswered_call": -0.3,
    "email_sent": 0.0,  # our own outreach: useless
    "unsubscribe": -1.5,
    "source_paid_search": 0.5,  # sources, against organic search
    "source_referral": 1.0,
    "source_social": -0.5,
    "source_direct": 0.4,
    "source_other": -1.0,  # bot-like traffic
    "do_not_contact": -0.8,
    "lifecycle_subscriber": -0.4,  # against "lead"
}
TRUE_INTERCEPT = -3.0
# half-life in days of each decayed feature: heatsync's signal classes (defaults.yaml)
TRUE_HALF_LIFE: dict[str, float] = {
    "urgent_form": 3.0,
    "form": 14.0,
    "web_session": 14.0,
    "session_minutes": 14.0,
    "page_view": 14.0,
    "email_open": 14.0,
    "email_click": 14.0,
    "inbound_message": 14.0,
    "inbound_call": 3.0,
    "call_minutes": 14.0,
    "unanswered_call": 14.0,
    "email_sent": 14.0,
    "unsubscribe": 30.0,
}
SOURCES = ("organic_search", "paid_search", "referral", "social", "direct", "other")
SOURCE_SHARES = (0.3, 0.25, 0.1, 0.15, 0.1, 0.1)
URGENT_TEXTS = np.array(["Need a price today", "Срочно: сколько стоит?", "Cena šodien?"], object)
PLAIN_TEXTS = np.array(["Please send the brochure", "Question about the schedule", None], object)


@dataclass(frozen=True)
class Truth:
    """The true conversion model: log-odds = intercept + sum coefficients[f] * feature f."""

    intercept: float
    coefficients: dict[str, float]
    half_life: dict[str, float]

    def logit(self, features: pd.DataFrame) -> np.ndarray:
        w = np.array([self.coefficients[c] for c in features.columns])
        return np.asarray(self.intercept + features.to_numpy(dtype=float) @ w)


@dataclass(frozen=True)
class LeadPortal:
    contacts: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    as_of: pd.Timestamp
    horizon_days: int
    truth: Truth
    periods: int
    _events: pd.DataFrame = field(repr=False)  # feature, cidx, at, value

    def as_of_days(self) -> list[pd.Timestamp]:
        """The as-of grid, oldest first; the last is `as_of`."""
        step = pd.Timedelta(days=self.horizon_days)
        return [self.as_of - k * step for k in range(self.periods - 1, -1, -1)]

    def true_features(self, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        """The truth's features per contact (rows aligned with `contacts`) as of a day."""
        return _features(self.contacts, self._events, as_of or self.as_of, self.truth)

    def open_leads(self, as_of: pd.Timestamp | None = None) -> np.ndarray:
        """Contacts created by `as_of` without a won deal closed by then."""
        at = as_of or self.as_of
        won = self.deals[self.deals["closed_at"] <= at]["contact_id"]
        created = (self.contacts["created_at"] <= at).to_numpy()
        return np.asarray(created & ~self.contacts["contact_id"].isin(won).to_numpy())

    def converted(self, as_of: pd.Timestamp | None = None) -> np.ndarray:
        """Per contact: a won deal in (as_of, as_of + horizon_days]."""
        at = as_of or self.as_of
        end = at + pd.Timedelta(days=self.horizon_days)
        d = self.deals[(self.deals["closed_at"] > at) & (self.deals["closed_at"] <= end)]
        return np.asarray(self.contacts["contact_id"].isin(d["contact_id"]).to_numpy())


def _features(
    contacts: pd.DataFrame, events: pd.DataFrame, at: pd.Timestamp, truth: Truth
) -> pd.DataFrame:
    n = len(contacts)
    names = list(truth.coefficients)
    out = pd.DataFrame(0.0, index=pd.RangeIndex(n), columns=names)
    e = events[events["at"] <= at]
    age = (at.normalize() - e["at"].dt.normalize()).dt.days.to_numpy(dtype=float)
    hl = e["feature"].map(truth.half_life).to_numpy(dtype=float)
    w = e["value"].to_numpy(dtype=float) * np.power(0.5, age / hl)
    sums = (
        pd.DataFrame({"cidx": e["cidx"].to_numpy(), "feature": e["feature"].to_numpy(), "w": w})
        .groupby(["cidx", "feature"])["w"]
        .sum()
        .unstack(fill_value=0.0)
    )
    for col in sums.columns:
        out.loc[sums.index, col] = sums[col].to_numpy()
    source = contacts["source"].to_numpy()
    for s in SOURCES:
        if f"source_{s}" in out:
            out[f"source_{s}"] = (source == s).astype(float)
    out["do_not_contact"] = contacts["do_not_contact"].to_numpy(dtype=float)
    out["lifecycle_subscriber"] = (contacts["lifecycle_stage"] == "subscriber").to_numpy(float)
    return out


def generate_leads(
    n: int = 8_000,
    seed: int = 0,
    as_of: pd.Timestamp = AS_OF,
    horizon_days: int = HORIZON_DAYS,
    periods: int = 8,
    intercept: float = TRUE_INTERCEPT,
    coefficients: dict[str, float] | None = None,
    half_life: dict[str, float] | None = None,
) -> LeadPortal:
    """A lead portal of `n` contacts created over periods * horizon_days + 30 days before `as_of`;
    see the module docstring. `coefficients` and `half_life` override TRUE_COEFFICIENTS and
    TRUE_HALF_LIFE key by key (a truth whose half-lives differ from heatsync's)."""
    rng = np.random.default_rng(seed)
    coef = {**TRUE_COEFFICIENTS, **(coefficients or {})}
    hl = {**TRUE_HALF_LIFE, **(half_life or {})}
    truth = Truth(intercept=intercept, coefficients=coef, half_life=hl)
    span = periods * horizon_days + 30
    ids = np.char.add("L", np.arange(n).astype(str)).astype(object)
    created = as_of - pd.to_timedelta(rng.uniform(0, span * 86400, n).astype("int64"), unit="s")
    source = rng.choice(np.array(SOURCES, dtype=object), n, p=SOURCE_SHARES)
    bot = (source == "other") & (rng.random(n) < 0.7)
    interest = rng.normal(0.0, 1.0, n)
    contacts = pd.DataFrame(
        {
            "contact_id": ids,
            "portal": PORTAL,
            "created_at": created,
            "owner_id": np.where(rng.random(n) < 0.5, "u1", "u2").astype(object),
            "name": np.char.add("Lead ", np.arange(n).astype(str)).astype(object),
            "source": source,
            "lifecycle_stage": np.where(rng.random(n) < 0.3, "subscriber", "lead").astype(object),
            "do_not_contact": rng.random(n) < 0.06,
            "is_vip": False,
        }
    )
    lift = np.exp(0.8 * interest)
    human = (~bot).astype(float)

    # (feature, activity type, direction, outcome, mean count per contact)
    kinds: list[tuple[str, str, str | None, str | None, np.ndarray]] = [
        ("web_session", "web_session", "inbound", None, human * 2.5 * lift + bot * 12.0),
        ("page_view", "page_view", "inbound", None, human * 4.0 + bot * 45.0),
        ("form", "form_submission", "inbound", None, human * 0.5 * lift),
        ("email_sent", "email_sent", "outbound", None, np.full(n, 3.0)),
        ("email_open", "email_open", "inbound", None, np.full(n, 2.0)),
        ("email_click", "email_click", "inbound", None, human * 0.4 * lift),
        ("inbound_message", "chat_message", "inbound", None, human * 0.3 * lift),
        ("inbound_call", "call", "inbound", "connected", human * 0.15 * lift),
        ("call", "call", "outbound", None, np.full(n, 1.6)),
        ("unsubscribe", "unsubscribe", "inbound", None, np.full(n, 0.04)),
    ]
    frames = []
    for feature, type_, direction, outcome, mean in kinds:
        count = rng.poisson(mean)
        cidx = np.repeat(np.arange(n), count)
        m = len(cidx)
        # events follow the lead's creation, fading over about ten days
        delay = rng.exponential(10.0 * 86400, m).astype("int64")
        frames.append(
            pd.DataFrame(
                {
                    "cidx": cidx,
                    "feature": feature,
                    "type": type_,
                    "direction": direction,
                    "outcome": outcome,
                    "delay": delay,
                }
            )
        )
    ev = pd.concat(frames, ignore_index=True)
    born = pd.DatetimeIndex(created)[ev["cidx"].to_numpy()]
    ev["occurred_at"] = born + pd.to_timedelta(ev["delay"].to_numpy(), unit="s")
    ev = ev[ev["occurred_at"] <= as_of].reset_index(drop=True)
    m = len(ev)
    cid = ev["cidx"].to_numpy()
    duration = np.full(m, np.nan)
    text = np.full(m, None, dtype=object)
    outcome_col = ev["outcome"].to_numpy(dtype=object)

    sess = (ev["feature"] == "web_session").to_numpy()
    minutes = np.where(bot[cid], rng.exponential(0.2, m), rng.lognormal(1.0, 0.8, m) * lift[cid])
    duration[sess] = np.round(np.clip(minutes[sess], 0.05, 180.0) * 60.0)
    calls = (ev["feature"] == "call").to_numpy()
    outcome_col[calls] = rng.choice(
        np.array(["connected", "no_answer", "voicemail"], dtype=object),
        int(calls.sum()),
        p=(0.4, 0.5, 0.1),
    )
    connected = calls & (outcome_col == "connected")
    call_minutes = rng.lognormal(1.0, 0.7, m) * lift[cid]
    duration[connected] = np.round(np.clip(call_minutes[connected], 0.2, 90.0) * 60.0)
    inbound_call = (ev["feature"] == "inbound_call").to_numpy()
    duration[inbound_call] = np.round(rng.lognormal(1.0, 0.6, int(inbound_call.sum())) * 60.0)
    forms = (ev["feature"] == "form").to_numpy()
    urgent = forms & (rng.random(m) < 0.25 * np.clip(lift[cid], 0.3, 3.0))
    text[urgent] = rng.choice(URGENT_TEXTS, int(urgent.sum()))
    plain = forms & ~urgent
    text[plain] = rng.choice(PLAIN_TEXTS, int(plain.sum()))
    chats = (ev["feature"] == "inbound_message").to_numpy()
    text[chats] = rng.choice(PLAIN_TEXTS, int(chats.sum()))
    feature = ev["feature"].to_numpy(dtype=object).copy()
    feature[urgent] = "urgent_form"

    activities = pd.DataFrame(
        {
            "activity_id": np.char.add("a", np.arange(m).astype(str)).astype(object),
            "contact_id": ids[cid],
            "portal": PORTAL,
            "occurred_at": ev["occurred_at"].to_numpy(),
            "type": ev["type"].to_numpy(),
            "direction": ev["direction"].to_numpy(),
            "outcome": outcome_col,
            "duration_s": duration,
            "text": text,
            "is_rollup": False,
        }
    )

    # the truth's events: one row per (feature, contact, time, value)
    value = np.ones(m)
    feat = feature.copy()
    feat[calls & (outcome_col != "connected")] = "unanswered_call"
    feat[calls & (outcome_col == "voicemail")] = "_ignored"
    feat[connected] = "_connected"
    truth_events = [
        pd.DataFrame({"feature": feat, "cidx": cid, "at": ev["occurred_at"], "value": value})
    ]
    truth_events.append(
        pd.DataFrame(
            {
                "feature": "session_minutes",
                "cidx": cid[sess],
                "at": ev["occurred_at"].to_numpy()[sess],
                "value": duration[sess] / 60.0,
            }
        )
    )
    truth_events.append(
        pd.DataFrame(
            {
                "feature": "call_minutes",
                "cidx": cid[connected],
                "at": ev["occurred_at"].to_numpy()[connected],
                "value": duration[connected] / 60.0,
            }
        )
    )
    events = pd.concat(truth_events, ignore_index=True)
    events = events[events["feature"].isin(list(coef))].reset_index(drop=True)
    events["at"] = pd.to_datetime(events["at"], utc=True)

    # conversions: at each as-of day, oldest first, among the leads not converted yet
    step = pd.Timedelta(days=horizon_days)
    open_ = np.ones(n, dtype=bool)
    won_cidx: list[np.ndarray] = []
    won_at: list[pd.DatetimeIndex] = []
    for k in range(periods - 1, -1, -1):
        at = as_of - k * step
        feats = _features(contacts, events, at, truth)
        p = 1.0 / (1.0 + np.exp(-truth.logit(feats)))
        risk = open_ & (contacts["created_at"] <= at).to_numpy()
        buy = risk & (rng.random(n) < p)
        idx = np.flatnonzero(buy)
        offset = rng.integers(1, horizon_days * 86400, len(idx))
        won_cidx.append(idx)
        won_at.append(pd.DatetimeIndex(at + pd.to_timedelta(offset, unit="s")))
        open_ &= ~buy
    widx = np.concatenate(won_cidx)
    wat = np.concatenate([w.to_numpy() for w in won_at])
    deals = pd.DataFrame(
        {
            "deal_id": np.char.add("d", np.arange(len(widx)).astype(str)).astype(object),
            "contact_id": ids[widx],
            "portal": PORTAL,
            "created_at": wat,
            "closed_at": wat,
            "status": "won",
            "stage": "closedwon",
            "stage_probability": 1.0,
            "amount": np.round(rng.uniform(200, 900, len(widx)), 2),
            "currency": "EUR",
        }
    )
    return LeadPortal(
        contacts=contract.conform(contacts, "contacts"),
        activities=contract.conform(activities, "activities"),
        deals=contract.conform(deals, "deals"),
        as_of=as_of,
        horizon_days=horizon_days,
        truth=truth,
        periods=periods,
        _events=events,
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=8_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    p = generate_leads(args.contacts, args.seed)
    for day in p.as_of_days():
        leads = p.open_leads(day)
        y = p.converted(day)[leads]
        print(f"{day:%Y-%m-%d}: {leads.sum():,} open leads, {y.sum():,} converted ({y.mean():.1%})")
    print(f"{len(p.activities):,} activities, {len(p.deals):,} won deals")


if __name__ == "__main__":
    main()
