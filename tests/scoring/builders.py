"""Hand-made canonical tables for scoring tests: a tiny portal built event by event.

Times are given as days (and hours) before AS_OF; with AS_OF at 14:00 UTC (16:00 in Riga) an
event `n` days before falls on the local date n days earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
TZ = "Europe/Riga"
PORTAL = "p1"


@dataclass
class World:
    as_of: pd.Timestamp = AS_OF
    contacts: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)

    def at(self, days_ago: float, hours: float = 0) -> pd.Timestamp:
        return self.as_of - pd.Timedelta(days=days_ago) + pd.Timedelta(hours=hours)

    def contact(
        self, cid: str, created_days_ago: float = 400, owner: str | None = "u1", **kw: Any
    ) -> str:
        row = {
            "contact_id": cid,
            "portal": PORTAL,
            "created_at": self.at(created_days_ago),
            "owner_id": owner,
            "name": f"Name {cid}",
            "do_not_contact": False,
            "is_vip": False,
        }
        row.update(kw)
        self.contacts.append(row)
        return cid

    def act(
        self,
        cid: str,
        type_: str,
        days_ago: float,
        direction: str | None = None,
        outcome: str | None = None,
        text: str | None = None,
        n: int = 1,
        hours: float = 0,
        is_rollup: bool = False,
    ) -> None:
        for _ in range(n):
            self.activities.append(
                {
                    "activity_id": f"a{len(self.activities)}",
                    "contact_id": cid,
                    "portal": PORTAL,
                    "occurred_at": self.at(days_ago, hours),
                    "type": type_,
                    "direction": direction,
                    "outcome": outcome,
                    "text": text,
                    "is_rollup": is_rollup,
                }
            )

    def deal(
        self,
        cid: str,
        status: str,
        created_days_ago: float,
        closed_days_ago: float | None = None,
        prob: float | None = None,
        amount: float | None = 100.0,
    ) -> None:
        self.deals.append(
            {
                "deal_id": f"d{len(self.deals)}",
                "contact_id": cid,
                "portal": PORTAL,
                "created_at": self.at(created_days_ago),
                "closed_at": None if closed_days_ago is None else self.at(closed_days_ago),
                "status": status,
                "stage_probability": prob,
                "amount": amount,
                "currency": "EUR",
            }
        )

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return (
            pd.DataFrame(self.contacts),
            pd.DataFrame(self.activities),
            pd.DataFrame(self.deals),
        )


def build_archetype(w: World, name: str, cid: str | None = None) -> str:
    """Add one contact behaving like archetype `name`; returns its id."""
    cid = cid or name
    if name == "cold":
        w.contact(cid, created_days_ago=400)
        w.act(cid, "email_sent", 100, direction="outbound")
        w.act(cid, "call", 60, direction="outbound", outcome="no_answer", n=2)
        w.act(cid, "email_open", 120, direction="inbound")
    elif name == "warm":
        w.contact(cid, created_days_ago=300)
        for d in (2, 4, 6):
            w.act(cid, "email_click", d, direction="inbound")
        w.act(cid, "page_view", 3, n=4)
        w.act(cid, "meeting", 3, outcome="scheduled")
    elif name == "hot":
        w.contact(cid, created_days_ago=200)
        w.act(cid, "form_submission", 1, direction="inbound", text="Need a price quote today")
        w.act(cid, "call", 1, direction="inbound", outcome="connected")
        w.deal(cid, "open", 20, prob=0.8)
    elif name == "burning":
        w.contact(cid, created_days_ago=1, source="paid_search")
        w.act(
            cid,
            "form_submission",
            0,
            direction="inbound",
            text="Срочно нужен кондиционер сегодня",
            hours=-1,
        )
    elif name == "key":
        w.contact(cid, created_days_ago=900)
        for d in (20, 100, 190, 280):
            w.deal(cid, "won", d + 5, closed_days_ago=d, amount=500)
        w.act(cid, "meeting", 5, outcome="completed")
        w.act(cid, "email_open", 10, direction="inbound", n=3)
    elif name == "at_risk":
        w.contact(cid, created_days_ago=900)
        for d in (400, 370, 340, 310):
            w.deal(cid, "won", d + 2, closed_days_ago=d, amount=300)
    elif name == "fan":
        w.contact(cid, created_days_ago=500)
        for d in (30, 100, 200):
            w.act(cid, "event_attended", d)
        w.act(cid, "social_engagement", 5, n=2)
        w.act(cid, "referral", 40)
        w.deal(cid, "won", 300, closed_days_ago=290)
    elif name == "loyal":
        w.contact(cid, created_days_ago=250)
        w.act(cid, "email_open", 20, direction="inbound", n=6)
        w.act(cid, "page_view", 25, n=4)
        w.act(cid, "email_click", 12, direction="inbound")
    elif name == "difficult":
        w.contact(cid, created_days_ago=700)
        w.deal(cid, "won", 205, closed_days_ago=200)
        w.deal(cid, "won", 65, closed_days_ago=60)
        w.act(cid, "complaint", 20, direction="inbound")
        w.act(cid, "payment_late", 50)
    elif name == "new":
        w.contact(cid, created_days_ago=10)
        w.act(cid, "page_view", 9)
    else:
        raise ValueError(name)
    return cid


def world_of(*names: str, as_of: pd.Timestamp = AS_OF) -> World:
    w = World(as_of=as_of)
    for name in names:
        build_archetype(w, name)
    return w
