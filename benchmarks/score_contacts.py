"""Time score_contacts and plan_tasks on a synthetic portal; prints figures, asserts nothing.

    python benchmarks/score_contacts.py [n_contacts] [n_activities]

Defaults: 100,000 contacts and 1,000,000 activities.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.synthetic import synthetic_portal
from scoring import contract, load_config, plan_tasks, score_contacts
from scoring.features import prepare


def main() -> None:
    n_contacts = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_activities = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    as_of = pd.Timestamp("2026-11-23 14:00", tz="UTC")
    tz = "Europe/Riga"
    cfg = load_config(None)
    t0 = time.perf_counter()
    contacts, activities, deals = synthetic_portal(n_contacts, n_activities, as_of)
    t1 = time.perf_counter()
    print(
        f"generated {len(contacts):,} contacts, {len(activities):,} activities, "
        f"{len(deals):,} deals in {t1 - t0:.1f}s"
    )

    t = time.perf_counter()
    contract.conform(activities, "activities")
    print(f"conform(activities) alone: {time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    prepare(contacts, activities, deals, as_of, cfg, tz)
    print(f"prepare (conform + as-of + rules): {time.perf_counter() - t:.2f}s")

    t = time.perf_counter()
    scores = score_contacts(contacts, activities, deals, as_of=as_of, config=cfg, tz=tz)
    first = time.perf_counter() - t
    print(f"score_contacts: {first:.2f}s ({len(activities) / first / 1e6:.2f}M activities/s)")
    t = time.perf_counter()
    again = score_contacts(
        contacts,
        activities,
        deals,
        as_of=as_of + pd.Timedelta(days=1),
        config=cfg,
        previous=scores,
        locale="ru",
        tz=tz,
    )
    print(f"score_contacts with previous, ru: {time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    plan = plan_tasks(again, contacts, as_of=as_of + pd.Timedelta(days=1), config=cfg, tz=tz)
    print(
        f"plan_tasks: {time.perf_counter() - t:.2f}s -> {len(plan.tasks):,} tasks, "
        f"skipped {plan.skipped}"
    )
    print("temperatures:", scores["temperature"].value_counts().to_dict())
    print("segments:", scores["segment"].value_counts().to_dict())
    print("trends:", again["trend"].value_counts().to_dict())


if __name__ == "__main__":
    main()
