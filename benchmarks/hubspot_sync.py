"""HubSpot sync through the real connector against the sandbox at HubSpot's real limits.

Serves a generated portal of N contacts with the burst limit (190 requests / 10 s) and the search
limit (5 / s), then measures with `connectors.hubspot.HubSpotConnector`: a full extract, an
incremental extract after 1% of the contacts changed, `ensure_schema` + `write_fields` for every
contact, an incremental extract that reads the written values back, and a second `write_fields`
with nothing changed. Prints figures; asserts nothing.

python benchmarks/hubspot_sync.py [--contacts 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from connectors.base import RequestStats, field_changes
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.settings import DEFAULT_BURST_LIMIT
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state, now_ms
from scoring import contract

BURST_LIMIT, BURST_WINDOW_S, SEARCH_PER_S = DEFAULT_BURST_LIMIT, 10.0, 5
T = TypeVar("T")


class Meter:
    """Request counters of one step, from the connector's and the server's side."""

    def __init__(self, hub: HubSpotConnector, srv: SandboxServer) -> None:
        self.hub, self.srv = hub, srv
        self.budget = hub.settings.burst_limit - hub.settings.burst_margin
        self.window_s = hub.settings.burst_window_s

    def floor_s(self, requests_: int) -> float:
        """Least time `requests_` non-search requests take at the client's pace (full window)."""
        return (max(0, requests_ - 1) // self.budget) * self.window_s

    def run(self, label: str, fn: Callable[[], T]) -> T:
        before = RequestStats(**self.hub.stats.as_dict())
        self.srv.reset_stats()
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        after = self.hub.stats
        requests_ = after.requests - before.requests
        server = self.srv.stats()
        rate = requests_ / seconds if seconds > 0 else 0.0
        print(
            f"{label:<34} {seconds:8.1f} s  {requests_:6d} req  {rate:6.1f} req/s  "
            f"writes {after.write_requests - before.write_requests:5d}  "
            f"429 {after.rate_limited - before.rate_limited} (server {server['429']})  "
            f"retries {after.retries - before.retries}  "
            f"pace floor {self.floor_s(requests_):.0f} s"
        )
        return out


def synthetic_scores(contact_ids: pd.Series, seed: int, today: pd.Timestamp) -> pd.DataFrame:
    """A scores-like frame with every writable field set (no scoring involved)."""
    rng = np.random.default_rng(seed)
    n = len(contact_ids)
    score = rng.uniform(0, 100, n).round(1)
    temperature = np.select([score >= 70, score >= 40], ["hot", "warm"], "cold")
    return pd.DataFrame(
        {
            "contact_id": contact_ids.astype(str).to_numpy(),
            "temperature": temperature,
            "score": score,
            "segment": rng.choice(contract.SEGMENTS, n),
            "trend": rng.choice(contract.TRENDS, n),
            "reasons": np.where(
                temperature == "hot", "Asked for a price 2 days ago", "Opened 3 e-mails this month"
            ),
            "next_touch_due": today + pd.to_timedelta(rng.integers(1, 30, n), unit="D"),
            "touches_30d": rng.integers(0, 12, n).astype(float),
        }
    )


def touch_contacts(srv: SandboxServer, share: float, seed: int) -> int:
    """Change `share` of the live contacts the way a user would (lastmodifieddate moves)."""
    rng = np.random.default_rng(seed + 1)
    with srv.lock:
        live = list(srv.state.iter_live("contacts"))
        picked = rng.choice(len(live), max(1, round(len(live) * share)), replace=False)
        now = now_ms()
        for i in picked:
            rec = live[int(i)]
            values = {"lifecyclestage": "opportunity", "phone": f"+371 2{int(i):07d}"}
            srv.state.set_props("contacts", rec, values)  # type: ignore[arg-type]
            srv.state.touch("contacts", rec, now)
    return len(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    start = time.perf_counter()
    state = generate_state(args.contacts, seed=args.seed)
    counts = {t: len(objs) for t, objs in state.objects.items() if objs}
    print(
        f"portal: {args.contacts:,} contacts generated and rendered in "
        f"{time.perf_counter() - start:.1f} s; objects {counts}"
    )
    options = SandboxOptions(
        token="bench-token",
        burst_limit=BURST_LIMIT,
        burst_window_s=BURST_WINDOW_S,
        search_per_second=SEARCH_PER_S,
        search_lag_s=0.0,
        seed=args.seed,
    )
    with SandboxServer(state, options, port=0) as srv:
        settings = HubSpotSettings.model_validate(
            {
                "access_token": srv.token,
                "base_url": srv.base_url,
                "portal": "bench",
                "burst_limit": BURST_LIMIT,
                "burst_window_s": BURST_WINDOW_S,
                "search_per_second": SEARCH_PER_S,
                "search_lag_s": 0.0,  # the sandbox indexes at once here
            }
        )
        hub = HubSpotConnector(settings)
        meter = Meter(hub, srv)
        budget = (BURST_LIMIT - settings.burst_margin) / BURST_WINDOW_S
        print(
            f"limits: server {BURST_LIMIT}/{BURST_WINDOW_S:.0f} s burst, {SEARCH_PER_S}/s search;"
            f" client paces at {BURST_LIMIT - settings.burst_margin}/{BURST_WINDOW_S:.0f} s "
            f"= {budget:.1f} req/s"
        )

        full = meter.run("full extract", lambda: hub.extract(None, datetime.now(UTC)))
        print(
            f"  -> {len(full.contacts):,} contacts, {len(full.activities):,} activities, "
            f"{len(full.deals):,} deal rows, {len(full.quarantine)} quarantined, "
            f"{len(full.removed_contact_ids)} removed"
        )

        changed = touch_contacts(srv, 0.01, args.seed)
        time.sleep(0.01)
        inc = meter.run(
            f"incremental extract ({changed} changed)",
            lambda: hub.extract(full.cursors, datetime.now(UTC) + timedelta(milliseconds=5)),
        )
        print(f"  -> {len(inc.contacts):,} contacts, {len(inc.activities):,} activities")

        meter.run("ensure_schema (first run)", lambda: hub.ensure_schema("en"))
        today = pd.Timestamp(datetime.now(UTC).date())
        scores = synthetic_scores(full.contacts["contact_id"], args.seed, today)
        updates = field_changes(scores, full.contacts)
        skip = full.removed_contact_ids
        report = meter.run(
            f"write_fields ({len(updates):,} contacts)",
            lambda: hub.write_fields(updates, skip_ids=skip),
        )
        expected = math.ceil((len(updates) - len(report.skipped)) / 100)
        print(
            f"  -> written {report.written:,}, failed {len(report.failed)}, "
            f"skipped {len(report.skipped)}, rounds {report.rounds}; "
            f"batch updates expected ceil(n/100) = {expected}"
        )

        after_write = meter.run(
            "incremental extract (after write)",
            lambda: hub.extract(inc.cursors, datetime.now(UTC) + timedelta(milliseconds=5)),
        )
        contacts = pd.concat([full.contacts, after_write.contacts]).drop_duplicates(
            "contact_id", keep="last"
        )
        again = field_changes(scores, contacts)
        print(f"  -> {len(after_write.contacts):,} contacts read back; {len(again)} still differ")
        second = meter.run("write_fields (nothing changed)", lambda: hub.write_fields(again))
        print(f"  -> written {second.written}, attempted {second.attempted}")
        meter.run("ensure_schema (second run)", lambda: hub.ensure_schema("en"))
        print(f"total connector requests {hub.stats.requests:,}; stats {hub.stats.as_dict()}")
        print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
