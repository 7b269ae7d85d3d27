"""A random but plausible portal in canonical tables, at any size, for volume tests and the scoring
benchmark: no archetypes (unlike `sandbox.portal`), no record meant to be believable on its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import contract

_TYPE_WEIGHTS = {
    "email_open": 0.25,
    "page_view": 0.2,
    "email_sent": 0.12,
    "email_click": 0.06,
    "web_session": 0.06,
    "call": 0.08,
    "form_submission": 0.03,
    "email_reply": 0.03,
    "chat_message": 0.03,
    "meeting": 0.02,
    "sms": 0.02,
    "note": 0.02,
    "social_engagement": 0.02,
    "event_attended": 0.01,
    "referral": 0.005,
    "email_bounce": 0.005,
    "unsubscribe": 0.005,
    "complaint": 0.005,
    "payment_late": 0.003,
    "refund": 0.002,
    "task_completed": 0.01,
}
_TEXTS = np.array(
    [
        "Need a quote today",
        "Срочно, какая цена?",
        "Vai varat šodien?",
        "Just a question about sizes",
        "Thanks!",
        None,
        None,
        None,
    ],
    dtype=object,
)


def synthetic_portal(
    n_contacts: int, n_activities: int, as_of: pd.Timestamp, seed: int = 7
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """contacts, activities (about 2% after as_of) and deals (about 0.4 per contact)."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("c", np.arange(n_contacts).astype(str)).astype(object)
    bday = pd.to_datetime("1970-01-01") + pd.to_timedelta(rng.integers(0, 20000, n_contacts), "D")
    contacts = pd.DataFrame(
        {
            "contact_id": ids,
            "portal": np.where(rng.random(n_contacts) < 0.8, "p1", "p2").astype(object),
            "created_at": as_of - pd.to_timedelta(rng.uniform(0, 1000, n_contacts), unit="D"),
            "owner_id": np.where(
                rng.random(n_contacts) < 0.97,
                np.char.add("u", rng.integers(0, 50, n_contacts).astype(str)),
                np.array(None, dtype=object),
            ),
            "name": np.char.add("Person ", np.arange(n_contacts).astype(str)).astype(object),
            "birthday": pd.Series(bday).where(rng.random(n_contacts) < 0.3),
            "do_not_contact": rng.random(n_contacts) < 0.02,
            "is_vip": rng.random(n_contacts) < 0.01,
        }
    )
    # a few very active contacts, many quiet ones
    who = np.minimum(
        (rng.pareto(1.2, n_activities) * n_contacts / 20).astype(np.int64), n_contacts - 1
    )
    who = rng.permutation(n_contacts)[who]
    types = np.array(list(_TYPE_WEIGHTS), dtype=object)
    p = np.array(list(_TYPE_WEIGHTS.values()))
    t = rng.choice(types, n_activities, p=p / p.sum())
    direction = np.where(
        np.isin(t, ["email_sent", "note", "task_completed"]),
        "outbound",
        np.where(
            np.isin(t, ["call", "sms", "chat_message", "email_reply"]),
            np.where(rng.random(n_activities) < 0.5, "inbound", "outbound"),
            "inbound",
        ),
    ).astype(object)
    outcome = np.full(n_activities, None, dtype=object)
    calls, meetings = t == "call", t == "meeting"
    outcome[calls] = rng.choice(
        np.array(contract.CALL_OUTCOMES, dtype=object), calls.sum(), p=[0.5, 0.3, 0.1, 0.08, 0.02]
    )
    outcome[meetings] = rng.choice(
        np.array(contract.MEETING_OUTCOMES, dtype=object),
        meetings.sum(),
        p=[0.3, 0.5, 0.1, 0.08, 0.02],
    )
    texted = np.isin(t, ["form_submission", "email_reply", "chat_message"])
    text = np.full(n_activities, None, dtype=object)
    text[texted] = rng.choice(_TEXTS, texted.sum())
    ago = np.minimum(rng.exponential(60, n_activities), 700) - 2 * (rng.random(n_activities) < 0.02)
    activities = pd.DataFrame(
        {
            "activity_id": np.char.add("a", np.arange(n_activities).astype(str)).astype(object),
            "contact_id": ids[who],
            "portal": contacts["portal"].to_numpy()[who],
            "occurred_at": as_of - pd.to_timedelta(ago, unit="D"),
            "type": t,
            "direction": direction,
            "outcome": outcome,
            "duration_s": np.where(calls, rng.uniform(0, 600, n_activities), np.nan),
            "text": text,
            "is_rollup": rng.random(n_activities) < 0.01,
        }
    )
    n_deals = int(n_contacts * 0.4)
    dwho = rng.integers(0, n_contacts, n_deals)
    created = as_of - pd.to_timedelta(rng.uniform(0, 800, n_deals), unit="D")
    status = rng.choice(np.array(["won", "lost", "open"], dtype=object), n_deals, p=[0.5, 0.2, 0.3])
    closed = pd.Series(created + pd.to_timedelta(rng.uniform(1, 60, n_deals), unit="D")).where(
        status != "open"
    )
    deals = pd.DataFrame(
        {
            "deal_id": np.char.add("d", np.arange(n_deals).astype(str)).astype(object),
            "contact_id": ids[dwho],
            "portal": contacts["portal"].to_numpy()[dwho],
            "created_at": created,
            "closed_at": closed,
            "status": status,
            "stage_probability": np.where(
                status == "open",
                rng.choice([0.1, 0.3, 0.6, 0.9], n_deals),
                np.where(status == "won", 1.0, 0.0),
            ),
            "amount": rng.lognormal(5, 1, n_deals),
            "currency": "EUR",
        }
    )
    return contacts, activities, deals
