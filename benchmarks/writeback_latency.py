"""The write-back under a real API's latency: how much of the rate budget heatsync uses writing
fields and creating tasks, one request at a time against concurrent batches (`connectors.fanout`).

Each sandbox runs in a process of its own, as in benchmarks/extract_latency.py (HubSpot: 190
requests per 10 s; amoCRM: 7 per second; every request delayed `--latency-ms` before the server
counts it; `--time-scale` divides windows and latency alike, figures in API seconds). Per CRM
and mode (`--workers 1` and the connector's default threads) the script writes changed fields
for N contacts through `connector.write_fields`, `--chunk` contacts a call as
pipelines/steps.py's write loop does (0: one call), then creates M tasks on M other contacts in
one `connector.create_tasks` (its lookup of existing tasks included). Prints a markdown table:
CRM, phase, mode, requests, seconds, requests/s, that ÷ the server's budget, 429s ÷ requests
(counted by the server), and below each figure the wall and CPU seconds and the load average.
Asserts nothing but that every field was written and every task created.

python benchmarks/writeback_latency.py [--hubspot-contacts 20000] [--amocrm-contacts 5000]
    [--tasks 2000] [--latency-ms 300] [--time-scale 1] [--via step|connector] [--chunk 1000]
    [--workers N] [--skip-sequential] [--only hubspot|amocrm]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sandbox_serving import connector_for, serve
from connectors.amocrm import AmoCrmSettings
from connectors.base import WRITABLE_FIELDS
from connectors.hubspot import HubSpotSettings
from pipelines import steps
from pipelines.run.asof import AsOf
from pipelines.steps import WRITE_CHUNK
from pipelines.store import PortalStore, _write_parquet
from scoring import contract


def updates_for(ids: list[str], mode_no: int) -> pd.DataFrame:
    """Every heatsync field changed, to values that differ between modes."""
    n = len(ids)
    frame = pd.DataFrame({"contact_id": ids})
    values: dict[str, Any] = {
        "temperature": ["hot", "warm", "cold"][mode_no % 3],
        "score": float(40 + mode_no),
        "segment": ["key", "fan", "loyal"][mode_no % 3],
        "trend": ["warming", "cooling", "steady"][mode_no % 3],
        "reasons": f"benchmark pass {mode_no}: asked for a quote",
        "next_touch_due": pd.Timestamp("2026-12-20") + pd.Timedelta(days=mode_no),
        "touches_30d": float(mode_no),
    }
    for name in WRITABLE_FIELDS:
        if name in values:
            frame[name] = [values[name]] * n
            frame[f"changed_{name}"] = True
    return frame


def through_step(connector: Any, updates: pd.DataFrame, home: Path) -> str:
    """The daily run's write step on a store holding only these contacts (no value in the CRM
    known to it, so every field of every contact differs)."""
    store = PortalStore(home=home, portal="bench")
    ids = updates["contact_id"].astype(str)
    root = store._root()
    root.mkdir(parents=True, exist_ok=True)
    contacts = contract.conform(pd.DataFrame({"contact_id": ids, "portal": "bench"}), "contacts")
    _write_parquet(root / "contacts.parquet", contacts)
    now = pd.Timestamp.now(tz="UTC")
    as_of = AsOf.resolve(now.date().isoformat(), "UTC", now)
    names = [n for n in WRITABLE_FIELDS if n in updates.columns]
    scores = updates[["contact_id", *names]].assign(as_of=now)
    policy = dict.fromkeys(WRITABLE_FIELDS, "overwrite")
    _, result = steps.write_fields(connector, store, scores, as_of, "bench", policy=policy)
    written = result.metadata["contacts_written"]
    failed = result.metadata["write_failures"]
    assert written == len(updates) and not failed, (written, failed)
    size = steps.write_chunk(len(updates))
    calls = -(-len(updates) // size)
    return f"{written:,} contacts written, {calls} chunk(s) of {size:,} recorded"


def tasks_for(contacts: list[tuple[str, str | None]], prefix: str, portal: str) -> pd.DataFrame:
    due = pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1, hours=9)
    ids = [c for c, _ in contacts]
    return pd.DataFrame(
        {
            "task_key": [f"{portal}:{c}:call_now:{prefix}" for c in ids],
            "portal": portal,
            "contact_id": ids,
            "owner_id": [o for _, o in contacts],
            "rule": "call_now",
            "period": prefix,
            "due_at": due,
            "priority": "HIGH",
            "task_type": "CALL",
            "subject": "Call now: asked for a quote today",
            "body": "heatsync write-back benchmark",
            "score": 91.0,
        }
    )


@dataclass
class Figure:
    crm: str
    phase: str
    mode: str
    requests: int
    api_seconds: float
    budget: float
    server_429: int
    server_requests: int
    outcome: str

    def line(self) -> str:
        rate = self.requests / self.api_seconds
        return (
            f"| {self.crm} | {self.phase} | {self.mode} | {self.requests:,} | "
            f"{self.api_seconds:,.1f} s | {rate:.1f} | {rate / self.budget:.2f} | "
            f"{self.server_429} ({self.server_429 / max(1, self.server_requests):.2%}) | "
            f"{self.outcome} |"
        )


def measure(
    crm: str,
    phase: str,
    mode: str,
    pipe: Connection,
    connector: Any,
    scale: float,
    budget: float,
    work: Callable[[], str],
) -> Figure:
    pipe.send("reset")
    pipe.recv()
    before = connector.stats.requests
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    outcome = work()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    pipe.send("stats")
    stats = pipe.recv()
    figure = Figure(
        crm,
        phase,
        mode,
        connector.stats.requests - before,
        wall * scale,
        budget,
        stats["429"],
        stats["requests"],
        outcome,
    )
    print(figure.line(), flush=True)
    print(
        f"  ({crm} {phase} {mode}: {wall:.1f} s wall; CPU-s client {cpu:.1f}, sandbox "
        f"{stats['cpu_s']:.1f}; 1-min load average {load:.1f} → {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    return figure


def run_crm(crm: str, contacts: int, args: argparse.Namespace) -> list[Figure]:
    scale = args.time_scale
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(
        target=serve, args=(crm, contacts, args.seed, args.latency_ms, scale, child), daemon=True
    )
    proc.start()
    base_url, token, seeded = parent.recv()
    print(f"{crm}: {contacts:,} contacts generated and served in {seeded:.0f} s", flush=True)
    tokens = Path(tempfile.mkdtemp(prefix="heatsync-bench-"))
    default = (
        HubSpotSettings.model_fields["read_workers"].default
        if crm == "hubspot"
        else AmoCrmSettings.model_fields["read_workers"].default
    )
    modes = [("concurrent", args.workers or default)]
    if not args.skip_sequential:
        modes.insert(0, ("sequential", 1))
    figures: list[Figure] = []
    try:
        setup, _ = connector_for(crm, base_url, token, scale, tokens, default)
        setup.ensure_schema("en")
        portal = f"{crm}-{setup.portal_info().portal_id}"
        setup.client.close()
        parent.send("ids")
        live: list[tuple[str, str | None]] = parent.recv()
        ids = [c for c, _ in live][: args.fields_for or contacts]
        if len(live) < len(modes) * args.tasks:
            raise SystemExit(f"{crm}: {len(live)} contacts, too few for {args.tasks} tasks a mode")
        chunk = args.chunk or len(ids)
        for mode_no, (mode, workers) in enumerate(modes):
            connector, budget = connector_for(crm, base_url, token, scale, tokens, workers)
            connector.portal_info()
            if crm == "amocrm":
                connector.fields()
                connector.account()
            label = f"{mode} ({workers})"
            updates = updates_for(ids, mode_no)

            def write(
                connector: Any = connector, updates: pd.DataFrame = updates, mode: str = mode
            ) -> str:
                if args.via == "step":
                    return through_step(connector, updates, tokens / f"store-{mode}")
                written = failed = 0
                for start in range(0, len(updates), chunk):
                    report = connector.write_fields(updates.iloc[start : start + chunk])
                    written += report.written
                    failed += len(report.failed)
                assert written == len(updates) and not failed, (written, failed)
                return f"{written:,} contacts written, {-(-len(updates) // chunk)} call(s)"

            figures.append(measure(crm, "fields", label, parent, connector, scale, budget, write))
            mine = live[mode_no * args.tasks : (mode_no + 1) * args.tasks]
            tasks = tasks_for(mine, f"bench-{mode}", portal)

            def create(connector: Any = connector, tasks: pd.DataFrame = tasks) -> str:
                report = connector.create_tasks(tasks)
                assert report.ok and len(report.created) == len(tasks), report.failed[:3]
                return f"{len(report.created):,} tasks created"

            if args.tasks:
                figures.append(
                    measure(crm, "tasks", label, parent, connector, scale, budget, create)
                )
            connector.client.close()
    finally:
        parent.send("stop")
        proc.join(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubspot-contacts", type=int, default=20_000)
    parser.add_argument("--amocrm-contacts", type=int, default=5_000)
    parser.add_argument("--fields-for", type=int, default=0, help="contacts written (0: all)")
    parser.add_argument("--tasks", type=int, default=2_000, help="tasks a mode (0: none)")
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--via", choices=["step", "connector"], default="step")
    parser.add_argument(
        "--chunk", type=int, default=WRITE_CHUNK, help="--via connector: contacts a call (0: all)"
    )
    parser.add_argument("--workers", type=int, default=0, help="threads (0: the connector's)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--only", choices=["hubspot", "amocrm"])
    args = parser.parse_args()
    print(
        f"latency {args.latency_ms} ms a request; clock ×{args.time_scale:g} (figures in API "
        f"seconds); fields written through {args.via}"
        + (f", {args.chunk or 'all'} contacts a call" if args.via == "connector" else "")
        + "\n\n"
        "| CRM | phase | mode (threads) | requests | seconds | req/s | ÷ budget | 429s | "
        "outcome |\n|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    if args.only in (None, "hubspot"):
        run_crm("hubspot", args.hubspot_contacts, args)
    if args.only in (None, "amocrm"):
        run_crm("amocrm", args.amocrm_contacts, args)


if __name__ == "__main__":
    main()
