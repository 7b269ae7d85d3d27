"""Full extracts under a real API's latency: how much of the rate budget heatsync uses, one
request at a time against concurrent reads (`connectors.fanout`).

Each sandbox runs in a process of its own (so that its request handling does not share the
client's interpreter lock), on a clock `--time-scale` times faster: its rate windows and its
latency are divided by the scale (HubSpot: 190 requests per 10 s and 5 searches per second;
amoCRM: 7 per second; 300 ms a request), and the client's windows likewise, so every ratio holds
and the figures below are given in the API's own seconds (wall seconds × scale). Prints, per
CRM and mode: requests, seconds, requests per second, that ÷ the server's budget, 429s ÷
requests, and on a line below the wall seconds, the CPU seconds of the client and of the sandbox
process (steadier than wall time on a shared machine) and the load average. Asserts nothing.

python benchmarks/extract_latency.py [--hubspot-contacts 100000] [--amocrm-contacts 20000]
    [--latency-ms 300] [--time-scale 10] [--skip-sequential]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sandbox_serving import connector_for, serve
from connectors.base import ExtractResult
from connectors.hubspot import HubSpotSettings


@dataclass
class Figure:
    crm: str
    mode: str
    workers: int
    requests: int
    api_seconds: float
    budget: float  # the server's requests per API second
    server_429: int
    rows: str

    def line(self) -> str:
        rate = self.requests / self.api_seconds
        return (
            f"| {self.crm} | {self.mode} ({self.workers}) | {self.requests:,} | "
            f"{self.api_seconds:,.0f} s | {rate:.1f} | {rate / self.budget:.2f} | "
            f"{self.server_429 / max(1, self.requests):.2%} | {self.rows} |"
        )


def measure(
    crm: str, pipe: Connection, connector: Any, mode: str, workers: int, scale: float, budget: float
) -> tuple[Figure, ExtractResult]:
    pipe.send("reset")
    pipe.recv()
    before = connector.stats.requests
    start, cpu = time.perf_counter(), time.process_time()
    result = connector.extract(None, datetime.now(UTC))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    seconds = wall * scale
    pipe.send("stats")
    stats = pipe.recv()
    rows = (
        f"{len(result.contacts):,} contacts, {len(result.activities):,} activities, "
        f"{len(result.deals):,} deal rows"
    )
    figure = Figure(
        crm, mode, workers, connector.stats.requests - before, seconds, budget, stats["429"], rows
    )
    print(figure.line(), flush=True)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"  ({crm} {mode}: {wall:.0f} s wall; CPU-s client {cpu:.0f}, sandbox "
        f"{stats['cpu_s']:.0f}; load average {load})",
        flush=True,
    )
    return figure, result


def same(a: ExtractResult, b: ExtractResult) -> bool:
    tables = ("contacts", "activities", "deals", "quarantine", "own_tasks")
    return all(getattr(a, t).equals(getattr(b, t)) for t in tables) and (
        a.removed_contact_ids == b.removed_contact_ids and a.warnings == b.warnings
    )


def run_crm(crm: str, contacts: int, args: argparse.Namespace) -> None:
    scale = args.time_scale
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(
        target=serve, args=(crm, contacts, args.seed, args.latency_ms, scale, child), daemon=True
    )
    proc.start()
    base_url, token, seeded = parent.recv()
    print(f"{crm}: {contacts:,} contacts generated and served in {seeded:.0f} s", flush=True)
    tokens = Path(tempfile.mkdtemp(prefix="heatsync-bench-"))
    modes = [("concurrent", args.hubspot_workers if crm == "hubspot" else args.amocrm_workers)]
    if not args.skip_sequential:
        modes.insert(0, ("sequential", 1))
    results = []
    try:
        for mode, workers in modes:
            connector, budget = connector_for(crm, base_url, token, scale, tokens / mode, workers)
            results.append(measure(crm, parent, connector, mode, workers, scale, budget)[1])
            connector.client.close()
        if len(results) == 2:
            print(f"{crm}: sequential and concurrent results identical: {same(*results)}")
    finally:
        parent.send("stop")
        proc.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubspot-contacts", type=int, default=100_000)
    parser.add_argument("--amocrm-contacts", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=10.0)
    hubspot_workers = HubSpotSettings.model_fields["read_workers"].default
    parser.add_argument("--hubspot-workers", type=int, default=hubspot_workers)
    parser.add_argument("--amocrm-workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--only", choices=["hubspot", "amocrm"])
    args = parser.parse_args()
    print(
        f"latency {args.latency_ms} ms a request; clock ×{args.time_scale:g} (figures in API "
        "seconds)\n\n| CRM | mode (threads) | requests | seconds | req/s | ÷ budget | "
        "429s ÷ requests | rows |\n|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    if args.only in (None, "hubspot"):
        run_crm("hubspot", args.hubspot_contacts, args)
    if args.only in (None, "amocrm"):
        run_crm("amocrm", args.amocrm_contacts, args)


if __name__ == "__main__":
    main()
