"""A CRM-neutral demo portal: people, their archetype and behaviour, as canonical truth.

`generate_portal` draws a deterministic population of contacts, each with an intended archetype
(cold, warm, hot, burning, key, at_risk, fan, loyal, difficult, new), and the activities and deals
that make the archetype unmistakable under the methodology of docs/domain.md. The tables conform
to `scoring.contract`; each CRM emulator (e.g. `sandbox.hubspot.state.render_truth`) renders the
same truth in its own API shapes.

The archetypes and their behaviour rules are data, in `sandbox.archetypes`; this module draws
from them. Generation is vectorised: one pass of numpy draws per (archetype, behaviour rule),
never per contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from sandbox import texts
from sandbox.archetypes import (
    ARCHETYPE_SHARES,
    ARCHETYPES,
    CREATED_AGE,
    LIFECYCLE,
    RULES,
    SOURCE_WEIGHTS,
    YOUNG,
)
from scoring import contract

# HubSpot's default deal pipeline; the neutral truth uses these stage names and probabilities.
DEAL_STAGES: dict[str, float] = {
    "appointmentscheduled": 0.2,
    "qualifiedtobuy": 0.4,
    "presentationscheduled": 0.6,
    "decisionmakerboughtin": 0.8,
    "contractsent": 0.9,
    "closedwon": 1.0,
    "closedlost": 0.0,
}
CURRENCY = "EUR"
DAY_NS = 86_400 * 10**9
CONTACT_ID_BASE = 1001
DEAL_ID_BASE = 5_000_001
ACTIVITY_ID_BASE = 20_000_001


@dataclass
class Portal:
    """Canonical truth of one demo portal (tables conform to `scoring.contract`).

    `contacts` carries an extra `archetype` column (the intended archetype) and `language`;
    `activities` an extra `subject` (e-mail subject, meeting/call title, form name, task subject);
    `deals` an extra `name`. `owners` are dicts with id, first_name, last_name, email.
    """

    contacts: pd.DataFrame
    activities: pd.DataFrame
    deals: pd.DataFrame
    owners: list[dict[str, str]]
    anchor: date
    seed: int
    portal: str = "sandbox"
    anchor_ts: pd.Timestamp = field(init=False)

    def __post_init__(self) -> None:
        self.anchor_ts = pd.Timestamp(self.anchor).tz_localize("UTC")


def _counts(n: int) -> dict[str, int]:
    """Archetype sizes for n contacts: shares rounded to sum to n; each ≥ 1 if possible."""
    raw = np.array([ARCHETYPE_SHARES[a] * n for a in ARCHETYPES])
    base = np.floor(raw).astype(int)
    if n >= len(ARCHETYPES):
        base = np.maximum(base, 1)
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while base.sum() < n:
        base[order[i % len(order)]] += 1
        i += 1
    while base.sum() > n:
        base[int(np.argmax(base))] -= 1
    return dict(zip(ARCHETYPES, base.tolist(), strict=True))


def _pick(rng: np.random.Generator, choices: tuple[tuple[str, float], ...], k: int) -> np.ndarray:
    labels = np.array([c for c, _ in choices], dtype=object)
    weights = np.array([w for _, w in choices], dtype=float)
    return labels[rng.choice(len(labels), size=k, p=weights / weights.sum())]


def _texts(rng: np.random.Generator, key: str | None, lang: np.ndarray) -> np.ndarray:
    """Pick a text from pool `key` per row, in the row's language."""
    out = np.full(len(lang), None, dtype=object)
    if key is None:
        return out
    u = rng.random(len(lang))
    for code in texts.LANGS:
        pool = np.array(texts.TEXTS[key][code], dtype=object)
        mask = lang == code
        out[mask] = pool[(u[mask] * len(pool)).astype(int)]
    return out


def _people(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Names, e-mails, phones and languages for n people."""
    lang = np.array(texts.LANGS, dtype=object)[rng.choice(3, size=n, p=[0.35, 0.40, 0.25])]
    female = rng.random(n) < 0.52
    first = np.empty(n, dtype=object)
    first_ascii = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    last_ascii = np.empty(n, dtype=object)
    u_first, u_last = rng.random(n), rng.random(n)
    for code in texts.LANGS:
        for sex, fmask in (("f", female), ("m", ~female)):
            mask = (lang == code) & fmask
            pool = texts.FIRST_NAMES[code][sex]
            j = (u_first[mask] * len(pool)).astype(int)
            first[mask] = np.array([p[0] for p in pool], dtype=object)[j]
            first_ascii[mask] = np.array([p[1] for p in pool], dtype=object)[j]
            lpool = texts.LAST_NAMES[code]
            k = (u_last[mask] * len(lpool)).astype(int)
            col = 1 if sex == "f" else 0
            last[mask] = np.array([p[col] for p in lpool], dtype=object)[k]
            last_ascii[mask] = np.array([p[col + 2] for p in lpool], dtype=object)[k]
    domain = np.empty(n, dtype=object)
    u_dom = rng.random(n)
    for code in texts.LANGS:
        mask = lang == code
        domains = np.array(texts.EMAIL_DOMAINS[code], dtype=object)
        domain[mask] = domains[(u_dom[mask] * len(domains)).astype(int)]
    sep = np.array([".", "_", ""], dtype=object)[rng.choice(3, size=n, p=[0.6, 0.2, 0.2])]
    local = pd.Series(first_ascii) + pd.Series(sep) + pd.Series(last_ascii)
    email = local + "@" + pd.Series(domain)
    dup = email.groupby(email).cumcount()
    email = local.where(dup == 0, local + dup.astype(str)) + "@" + pd.Series(domain)
    email = email.where(rng.random(n) >= 0.02, None)

    digits = pd.Series(rng.integers(0, 10**9, n)).astype(str).str.zfill(9)
    phone = np.where(
        lang == "ru",
        "+7 9"
        + digits.str[:2]
        + " "
        + digits.str[2:5]
        + "-"
        + digits.str[5:7]
        + "-"
        + digits.str[7:9],
        np.where(
            lang == "lv",
            "+371 2" + digits.str[:7],
            "+44 7" + digits.str[:3] + " " + digits.str[3:9],
        ),
    )
    phone = pd.Series(phone, dtype=object).where(rng.random(n) >= 0.3, None)
    return pd.DataFrame(
        {
            "first_name": first,
            "last_name": last,
            "name": pd.Series(first) + " " + pd.Series(last),
            "email": email,
            "phone": phone,
            "language": lang,
        }
    )


def _birthdays(rng: np.random.Generator, n: int, anchor: date) -> pd.Series:
    """~60% known birthdays; some without year (stored as 1904), ~5% in the next 14 days."""
    has = rng.random(n) < 0.60
    year = rng.integers(1950, 2005, n)
    year = np.where(rng.random(n) < 0.15, contract.BIRTHDAY_UNKNOWN_YEAR, year)
    day_of_year = rng.integers(0, 365, n)
    soon = has & (rng.random(n) < 0.08)
    month_day = pd.Timestamp("1904-01-01") + pd.to_timedelta(day_of_year, unit="D")
    upcoming = pd.Timestamp(anchor) + pd.to_timedelta(rng.integers(0, 14, n), unit="D")
    months = np.where(soon, upcoming.month, month_day.month)
    days = np.where(soon, upcoming.day, month_day.day)
    frame = pd.DataFrame({"year": year, "month": months, "day": days})
    parsed = pd.to_datetime(frame, errors="coerce")
    # 29 Feb in a non-leap year -> 28 Feb
    fallback = pd.to_datetime(frame.assign(day=np.where(days == 29, 28, days)), errors="coerce")
    parsed = parsed.fillna(fallback)
    return parsed.where(has)


def _activities(
    rng: np.random.Generator,
    arche: np.ndarray,
    lang: np.ndarray,
    created_age: np.ndarray,
) -> pd.DataFrame:
    parts: list[dict[str, np.ndarray]] = []
    for name in ARCHETYPES:
        idx = np.flatnonzero(arche == name)
        if len(idx) == 0:
            continue
        for rule in RULES[name]:
            take = rng.random(len(idx)) < rule.p
            counts = rng.integers(rule.lo, rule.hi + 1, len(idx)) * take
            rows = np.repeat(idx, counts)
            m = len(rows)
            if m == 0:
                continue
            age = rng.uniform(rule.age[0], rule.age[1], m)
            if name in YOUNG:
                # the whole history fits between creation and the anchor
                age = np.minimum(age, created_age[rows] * rng.uniform(0.05, 0.95, m))
            outcome = (
                _pick(rng, rule.outcomes, m) if rule.outcomes else np.full(m, None, dtype=object)
            )
            duration = np.full(m, np.nan)
            if rule.duration:
                duration = np.round(rng.uniform(rule.duration[0], rule.duration[1], m))
            if rule.type == "call":
                connected = outcome == "connected"
                duration = np.where(
                    connected,
                    np.where(np.isnan(duration), np.round(rng.uniform(60, 600, m)), duration),
                    np.where(outcome == "voicemail", np.round(rng.uniform(20, 60, m)), 0.0),
                )
            text = _texts(rng, rule.text, lang[rows])
            subject = np.full(m, None, dtype=object)
            if rule.type == "form_submission" and rule.text:
                subject[:] = texts.FORM_NAMES[rule.text]
            elif rule.type in (
                "email_sent",
                "email_reply",
                "email_bounce",
                "meeting",
                "task_completed",
            ):
                subject = text.copy()
                if rule.type == "email_reply":
                    subject = np.where(lang[rows] == "ru", "Re: вопрос", "Re: question").astype(
                        object
                    )
            parts.append(
                {
                    "row": rows,
                    "age": age,
                    "type": np.full(m, rule.type, dtype=object),
                    "direction": np.full(m, rule.direction, dtype=object),
                    "outcome": outcome.astype(object),
                    "duration_s": duration,
                    "text": text,
                    "subject": subject.astype(object),
                }
            )
    # concatenating plain arrays avoids pandas' slow all-NA checks on object columns
    return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in parts[0]})


def _series(
    rng: np.random.Generator,
    idx: np.ndarray,
    n_lo: int,
    n_hi: int,
    interval: np.ndarray,
    last_age: np.ndarray,
    amount: tuple[float, float],
) -> pd.DataFrame:
    """Won deals at a regular rhythm: the k-th most recent closes last_age + k*interval days ago."""
    n = rng.integers(n_lo, n_hi + 1, len(idx))
    rows = np.repeat(np.arange(len(idx)), n)
    k = np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n)
    jitter = 1 + rng.normal(0, 0.06, len(rows))
    closed = last_age[rows] + k * interval[rows] * jitter
    return pd.DataFrame(
        {
            "row": idx[rows],
            "closed_age": closed,
            "created_age": closed + rng.uniform(1, 20, len(rows)),
            "stage": "closedwon",
            "amount": np.round(rng.uniform(amount[0], amount[1], len(rows)), 2),
        }
    )


def _deals(rng: np.random.Generator, arche: np.ndarray) -> pd.DataFrame:
    parts: list[pd.DataFrame] = []

    def where(name: str) -> np.ndarray:
        return np.flatnonzero(arche == name)

    idx = where("key")
    interval = rng.uniform(20, 60, len(idx))
    parts.append(
        _series(rng, idx, 5, 9, interval, interval * rng.uniform(0.05, 0.7, len(idx)), (300, 3000))
    )
    idx = where("at_risk")
    interval = rng.uniform(30, 45, len(idx))
    parts.append(
        _series(rng, idx, 5, 8, interval, interval * rng.uniform(3.0, 4.5, len(idx)), (200, 2000))
    )
    idx = where("difficult")
    interval = rng.uniform(30, 120, len(idx))
    parts.append(_series(rng, idx, 2, 4, interval, rng.uniform(10, 150, len(idx)), (100, 1500)))
    idx = where("fan")
    idx = idx[rng.random(len(idx)) < 0.4]
    parts.append(
        _series(rng, idx, 1, 1, np.zeros(len(idx)), rng.uniform(30, 300, len(idx)), (20, 120))
    )

    def open_deals(name: str, p: float, stages: tuple[str, ...], age: tuple[float, float]) -> None:
        ids = where(name)
        ids = ids[rng.random(len(ids)) < p]
        parts.append(
            pd.DataFrame(
                {
                    "row": ids,
                    "closed_age": np.nan,
                    "created_age": rng.uniform(age[0], age[1], len(ids)),
                    "stage": np.array(stages, dtype=object)[rng.integers(0, len(stages), len(ids))],
                    "amount": np.round(rng.uniform(200, 4000, len(ids)), 2),
                }
            )
        )

    open_deals("warm", 0.5, ("appointmentscheduled",), (3, 20))
    open_deals(
        "hot", 0.75, ("presentationscheduled", "decisionmakerboughtin", "contractsent"), (5, 40)
    )
    for name, p in (("cold", 0.15), ("loyal", 0.1)):
        ids = where(name)
        ids = ids[rng.random(len(ids)) < p]
        created = rng.uniform(200, 600, len(ids))
        parts.append(
            pd.DataFrame(
                {
                    "row": ids,
                    "closed_age": created - rng.uniform(10, 60, len(ids)),
                    "created_age": created,
                    "stage": "closedlost",
                    "amount": np.round(rng.uniform(200, 3000, len(ids)), 2),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _to_ts(anchor_ns: int, age_days: np.ndarray) -> pd.Series:
    """anchor minus age (days), floored to the millisecond as CRMs store it."""
    ns = anchor_ns - np.round(np.asarray(age_days, dtype=float) * DAY_NS).astype("int64")
    ns = ns - ns % 1_000_000
    return pd.Series(pd.to_datetime(ns, utc=True))


def generate_portal(
    contacts: int = 2000,
    seed: int = 7,
    anchor: date | None = None,
    portal: str = "sandbox",
) -> Portal:
    """Generate the demo portal's canonical truth, deterministic for (seed, contacts, anchor).

    Every timestamp is relative to `anchor` (midnight UTC of that date; default today UTC): history
    reaches about two years back, a few meetings are scheduled up to ten days ahead.
    """
    if anchor is None:
        anchor = datetime.now(UTC).date()
    rng = np.random.default_rng([seed, contacts])
    n = contacts
    sizes = _counts(n)
    arche = np.repeat(np.array(ARCHETYPES, dtype=object), [sizes[a] for a in ARCHETYPES])
    arche = arche[rng.permutation(n)]
    anchor_ns = pd.Timestamp(anchor).tz_localize("UTC").value

    people = _people(rng, n)
    lang = people["language"].to_numpy()

    created_age = np.zeros(n)
    lifecycle = np.empty(n, dtype=object)
    source = np.empty(n, dtype=object)
    src_names = tuple(SOURCE_WEIGHTS.items())
    for name in ARCHETYPES:
        mask = arche == name
        k = int(mask.sum())
        lo, hi = CREATED_AGE[name]
        created_age[mask] = rng.uniform(lo, hi, k)
        lifecycle[mask] = _pick(rng, LIFECYCLE[name], k)
        if name == "burning":
            source[mask] = _pick(rng, (("paid_search", 0.6), ("organic_search", 0.4)), k)
        elif name == "fan":
            source[mask] = _pick(
                rng, (("referral", 0.4), ("social", 0.4), ("organic_search", 0.2)), k
            )
        else:
            source[mask] = _pick(rng, src_names, k)

    acts = _activities(rng, arche, lang, created_age)
    deals = _deals(rng, arche)

    # Creation precedes all history (young archetypes were clipped to fit instead).
    oldest = np.zeros(n)
    np.maximum.at(oldest, acts["row"].to_numpy(), acts["age"].to_numpy())
    np.maximum.at(oldest, deals["row"].to_numpy(), deals["created_age"].to_numpy())
    young = np.isin(arche, YOUNG)
    created_age = np.where(
        young, created_age, np.maximum(created_age, oldest + rng.uniform(0.5, 10, n))
    )

    owner_ids = np.array([o["id"] for o in texts.OWNERS], dtype=object)
    owner = owner_ids[rng.integers(0, len(owner_ids), n)]
    owner[rng.random(n) < 0.05] = None

    vip_p = np.select(
        [arche == "key", arche == "difficult", arche == "at_risk"], [0.35, 0.1, 0.2], 0.035
    )
    is_vip = rng.random(n) < vip_p

    contact_ids = (CONTACT_ID_BASE + np.arange(n)).astype(str)
    unsub_rows = acts.loc[acts["type"] == "unsubscribe", "row"].to_numpy()
    do_not_contact = np.zeros(n, dtype=bool)
    do_not_contact[unsub_rows] = True
    # a few opt-outs without a recorded unsubscribe event (e.g. asked by phone)
    do_not_contact |= (rng.random(n) < 0.005) & ~np.isin(arche, ("hot", "burning"))

    contacts_df = pd.DataFrame(
        {
            "contact_id": contact_ids,
            "portal": portal,
            "created_at": _to_ts(anchor_ns, created_age),
            "owner_id": owner,
            "name": people["name"],
            "email": people["email"],
            "phone": people["phone"],
            "source": source,
            "lifecycle_stage": lifecycle,
            "birthday": _birthdays(rng, n, anchor),
            "do_not_contact": do_not_contact,
            "is_vip": is_vip,
            "archetype": arche,
            "language": lang,
            "first_name": people["first_name"],
            "last_name": people["last_name"],
        }
    )
    contacts_df = contract.conform(contacts_df, "contacts")

    acts = acts.sort_values(["row", "age"], ascending=[True, False], kind="stable")
    activities_df = pd.DataFrame(
        {
            "activity_id": (ACTIVITY_ID_BASE + np.arange(len(acts))).astype(str),
            "contact_id": contact_ids[acts["row"].to_numpy()],
            "portal": portal,
            "occurred_at": _to_ts(anchor_ns, acts["age"].to_numpy()),
            "type": acts["type"].to_numpy(),
            "direction": acts["direction"].to_numpy(),
            "outcome": acts["outcome"].to_numpy(),
            "duration_s": acts["duration_s"].to_numpy(),
            "text": acts["text"].to_numpy(),
            "is_rollup": False,
            "subject": acts["subject"].to_numpy(),
        }
    )
    activities_df = contract.conform(activities_df, "activities")

    deals = deals.sort_values(["row", "created_age"], ascending=[True, False], kind="stable")
    rows = deals["row"].to_numpy()
    stage = deals["stage"].to_numpy()
    status = np.select([stage == "closedwon", stage == "closedlost"], ["won", "lost"], "open")
    product = np.array(texts.PRODUCTS, dtype=object)[
        rng.integers(0, len(texts.PRODUCTS), len(deals))
    ]
    closed_age = deals["closed_age"].to_numpy()
    closed_at = _to_ts(anchor_ns, np.nan_to_num(closed_age)).where(~np.isnan(closed_age), None)
    deals_df = pd.DataFrame(
        {
            "deal_id": (DEAL_ID_BASE + np.arange(len(deals))).astype(str),
            "contact_id": contact_ids[rows],
            "portal": portal,
            "created_at": _to_ts(anchor_ns, deals["created_age"].to_numpy()),
            "closed_at": closed_at,
            "status": status,
            "stage": stage,
            "stage_probability": pd.Series(stage).map(DEAL_STAGES).to_numpy(),
            "amount": deals["amount"].to_numpy(),
            "currency": CURRENCY,
            "name": pd.Series(product) + " – " + contacts_df["name"].to_numpy()[rows],
        }
    )
    deals_df = contract.conform(deals_df, "deals")

    owners = [dict(o) for o in texts.OWNERS]
    return Portal(contacts_df, activities_df, deals_df, owners, anchor, seed, portal)
