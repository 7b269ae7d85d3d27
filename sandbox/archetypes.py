"""The archetypes of the demo portal and the behaviour that makes each one unmistakable.

Data only, read by `sandbox.portal.generate_portal`: each archetype's share of the population,
how long ago its contacts were created, its lifecycle stages and lead sources, and its behaviour
rules (`Rule`: how many events of which type, how long ago, with what outcome and text). The deal
rhythms of key, at-risk, difficult and fan contacts are drawn by the generator itself.
"""

from __future__ import annotations

from dataclasses import dataclass

ARCHETYPES = (
    "cold",
    "warm",
    "hot",
    "burning",
    "key",
    "at_risk",
    "fan",
    "loyal",
    "difficult",
    "new",
)
ARCHETYPE_SHARES = {
    "cold": 0.30,
    "warm": 0.25,
    "hot": 0.08,
    "burning": 0.03,
    "key": 0.06,
    "at_risk": 0.04,
    "fan": 0.05,
    "loyal": 0.10,
    "difficult": 0.03,
    "new": 0.06,
}

# created_at, in days before the anchor
CREATED_AGE = {
    "cold": (150, 730),
    "warm": (60, 600),
    "hot": (30, 600),
    "burning": (0.2, 7),
    "key": (420, 730),
    "at_risk": (500, 730),
    "fan": (200, 730),
    "loyal": (150, 730),
    "difficult": (200, 730),
    "new": (8, 60),
}
# Archetypes whose whole history must fit after their (recent) creation.
YOUNG = ("burning", "new")

LIFECYCLE = {
    "cold": (("lead", 0.5), ("subscriber", 0.3), ("other", 0.2)),
    "warm": (("marketingqualifiedlead", 0.6), ("lead", 0.4)),
    "hot": (("salesqualifiedlead", 0.5), ("opportunity", 0.5)),
    "burning": (("lead", 1.0),),
    "key": (("customer", 1.0),),
    "at_risk": (("customer", 1.0),),
    "fan": (("evangelist", 0.5), ("customer", 0.3), ("subscriber", 0.2)),
    "loyal": (("subscriber", 0.6), ("lead", 0.4)),
    "difficult": (("customer", 1.0),),
    "new": (("lead", 0.6), ("subscriber", 0.4)),
}
SOURCE_WEIGHTS = {
    "organic_search": 0.25,
    "paid_search": 0.12,
    "social": 0.12,
    "referral": 0.10,
    "direct": 0.12,
    "email": 0.09,
    "chat": 0.04,
    "offline": 0.06,
    "import": 0.06,
    "api": 0.03,
    "other": 0.01,
}


@dataclass(frozen=True)
class Rule:
    """One behaviour: `lo..hi` events of `type` (probability `p` per contact), `age` days ago."""

    type: str
    lo: int
    hi: int
    age: tuple[float, float]
    p: float = 1.0
    direction: str | None = None
    outcomes: tuple[tuple[str, float], ...] = ()
    text: str | None = None
    duration: tuple[float, float] | None = None


_OUT_EMAIL = Rule("email_sent", 1, 3, (2, 30), direction="outbound", text="outreach")
_UNANSWERED = (("no_answer", 0.5), ("busy", 0.2), ("voicemail", 0.2), ("wrong_number", 0.1))

RULES: dict[str, tuple[Rule, ...]] = {
    "cold": (
        Rule("email_sent", 2, 6, (20, 400), direction="outbound", text="outreach"),
        Rule("email_bounce", 1, 1, (20, 300), p=0.1, direction="outbound", text="outreach"),
        Rule("unsubscribe", 1, 1, (20, 300), p=0.08),
        Rule("call", 1, 4, (20, 300), direction="outbound", outcomes=_UNANSWERED, text="no_answer"),
        Rule(
            "meeting",
            1,
            1,
            (30, 300),
            p=0.25,
            outcomes=(("no_show", 0.5), ("cancelled", 0.5)),
            text="meeting",
            duration=(1800, 1800),
        ),
        Rule("page_view", 1, 5, (120, 700)),
        Rule("email_open", 1, 3, (150, 700), p=0.6),
        Rule("form_submission", 1, 1, (150, 700), p=0.3, text="question"),
        Rule("note", 1, 1, (30, 400), p=0.3, text="note"),
        Rule("task_completed", 1, 2, (20, 300), p=0.3, text="task"),
    ),
    "warm": (
        Rule("email_open", 2, 6, (1, 18)),
        Rule("email_click", 1, 3, (2, 18)),
        Rule("page_view", 3, 12, (1, 18)),
        Rule("web_session", 1, 4, (1, 18), duration=(60, 900)),
        Rule("form_submission", 1, 1, (3, 20), p=0.6, text="newsletter"),
        Rule("event_attended", 1, 1, (5, 20), p=0.3, text="event"),
        Rule("email_reply", 1, 1, (2, 15), p=0.5, direction="inbound", text="question"),
        Rule(
            "meeting",
            1,
            1,
            (-10, -1),
            p=0.35,
            outcomes=(("scheduled", 1.0),),
            text="meeting",
            duration=(1800, 3600),
        ),
        _OUT_EMAIL,
        Rule(
            "call",
            1,
            1,
            (3, 20),
            p=0.3,
            direction="outbound",
            outcomes=(("connected", 1.0),),
            text="call_note",
            duration=(60, 600),
        ),
        Rule("sms", 1, 1, (3, 20), p=0.2, direction="outbound", text="sms"),
        Rule("page_view", 2, 8, (60, 300), p=0.5),
    ),
    "hot": (
        Rule("form_submission", 1, 1, (0.05, 3), text="urgent_request"),
        Rule("email_reply", 1, 1, (0.05, 3), p=0.5, direction="inbound", text="urgent_request"),
        Rule(
            "call",
            1,
            1,
            (0.05, 3),
            p=0.6,
            direction="inbound",
            outcomes=(("connected", 1.0),),
            text="call_note",
            duration=(120, 900),
        ),
        Rule(
            "meeting",
            1,
            1,
            (1, 7),
            p=0.5,
            outcomes=(("completed", 1.0),),
            text="meeting",
            duration=(1800, 3600),
        ),
        Rule("page_view", 3, 15, (0.05, 5)),
        Rule("web_session", 1, 3, (0.05, 5), duration=(120, 1200)),
        Rule("email_open", 1, 4, (0.5, 10)),
        Rule("email_click", 1, 2, (0.5, 10), p=0.7),
        Rule("chat_message", 1, 2, (0.05, 3), p=0.3, direction="inbound", text="chat_urgent"),
        _OUT_EMAIL,
    ),
    "burning": (
        Rule("form_submission", 1, 1, (0.02, 2), text="urgent_request"),
        Rule("chat_message", 1, 2, (0.02, 2), p=0.5, direction="inbound", text="chat_urgent"),
        Rule("sms", 1, 1, (0.02, 2), p=0.3, direction="inbound", text="sms"),
        Rule("page_view", 2, 10, (0.02, 2)),
        Rule("web_session", 1, 2, (0.02, 2), duration=(60, 600)),
    ),
    "key": (
        Rule("email_open", 2, 8, (1, 60)),
        Rule("email_click", 1, 3, (1, 60), p=0.6),
        Rule("page_view", 2, 10, (1, 45)),
        Rule("email_reply", 1, 2, (2, 60), p=0.5, direction="inbound", text="question"),
        Rule(
            "meeting",
            1,
            1,
            (5, 90),
            p=0.3,
            outcomes=(("completed", 1.0),),
            text="meeting",
            duration=(1800, 3600),
        ),
        Rule(
            "call",
            1,
            2,
            (5, 90),
            p=0.5,
            direction="outbound",
            outcomes=(("connected", 1.0),),
            text="call_note",
            duration=(60, 600),
        ),
        Rule("task_completed", 1, 2, (5, 120), p=0.5, text="task"),
        Rule("note", 1, 1, (10, 300), p=0.3, text="note"),
    ),
    "at_risk": (
        Rule("email_sent", 1, 3, (10, 60), direction="outbound", text="outreach"),
        Rule("email_open", 1, 4, (100, 300)),
        Rule("page_view", 1, 5, (100, 300)),
        Rule(
            "call",
            1,
            1,
            (10, 60),
            p=0.4,
            direction="outbound",
            outcomes=_UNANSWERED,
            text="no_answer",
        ),
    ),
    "fan": (
        Rule("event_attended", 2, 4, (5, 300), text="event"),
        Rule("social_engagement", 3, 8, (1, 120), text="social"),
        Rule("referral", 1, 3, (5, 200), text="referral"),
        Rule("email_open", 3, 10, (1, 90)),
        Rule("email_click", 1, 4, (1, 90), p=0.6),
        Rule("page_view", 2, 8, (1, 60)),
    ),
    "loyal": (
        Rule("email_open", 6, 20, (1, 240)),
        Rule("email_click", 2, 8, (3, 240)),
        Rule("page_view", 5, 30, (1, 200)),
        Rule("web_session", 3, 12, (1, 200), duration=(60, 1200)),
        Rule("email_reply", 1, 3, (5, 180), direction="inbound", text="question"),
        Rule("form_submission", 1, 2, (30, 300), text="newsletter"),
        Rule("chat_message", 1, 2, (5, 150), p=0.3, direction="inbound", text="chat"),
        Rule("email_sent", 2, 5, (5, 240), direction="outbound", text="outreach"),
    ),
    "difficult": (
        Rule("complaint", 1, 3, (5, 200), text="complaint"),
        Rule("payment_late", 1, 2, (10, 250), text="payment_late"),
        Rule("refund", 1, 1, (10, 250), p=0.6, text="refund"),
        Rule(
            "call",
            1,
            2,
            (5, 120),
            p=0.5,
            direction="inbound",
            outcomes=(("connected", 1.0),),
            text="call_note",
            duration=(120, 1200),
        ),
        Rule("email_reply", 1, 2, (5, 120), p=0.5, direction="inbound", text="question"),
        Rule("email_open", 1, 5, (5, 120)),
        Rule("task_completed", 1, 1, (5, 120), p=0.4, text="task"),
    ),
    "new": (
        Rule("page_view", 1, 3, (1, 60)),
        Rule("form_submission", 1, 1, (1, 60), p=0.5, text="newsletter"),
        Rule("email_sent", 1, 1, (1, 60), p=0.6, direction="outbound", text="welcome"),
        Rule("email_open", 1, 1, (1, 60), p=0.3),
    ),
}
