"""What a run costs after N contacts changed: requests and seconds of whole `heatsync run`s.

A sandbox HubSpot portal of `--contacts` contacts (HubSpot's real limits: 190 requests per 10 s,
5 searches per second; its own process) is synced once in full by `heatsync run` (extract,
scoring, field write-back, tasks) into a fresh store. Then, for each N of `--changed`, N contacts
submit a quote form in the sandbox (the form's roll-up properties move, as HubSpot records them)
and `heatsync run` runs again on the same day, `--wait` seconds after the previous run (default:
just past the extract's overlap, as a schedule would space them). A second run with no change
comes first: it reads back the fields the first run wrote to every contact (HubSpot reports
them as changed).
Each run is its own process, like a scheduled one; printed per run: wall seconds, the run
process's CPU seconds, the requests the server counted (reads, searches, writes), 429s, and
each step's seconds from Dagster's run history. Asserts nothing.

python benchmarks/incremental_cost.py [--contacts 100000] [--changed 0 100 10000] [--wait 305]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.hubspot import HubSpotSettings  # noqa: E402

BURST, WINDOW_S, SEARCH_PER_S = 190, 10.0, 5
# an extract re-reads what changed in the overlap before the previous run's extract began, so
# runs closer than that read the write-back before last again (a schedule spaces them further)
OVERLAP_S = HubSpotSettings.model_fields["overlap_s"].default
# variables of a developer's shell that would point the run somewhere else
FOREIGN_PREFIXES = ("HUBSPOT_", "AMOCRM_", "KOMMO_", "HEATSYNC_", "DAGSTER_")


def quote_forms(srv: Any, n: int, seed: int) -> int:
    """`n` live contacts (a seeded choice) submit a quote form now."""
    import numpy as np

    from sandbox.hubspot import history
    from sandbox.hubspot.state import iso_ms, now_ms

    rng = np.random.default_rng(seed)
    with srv.lock:
        live = list(srv.state.iter_live("contacts"))
        picked: list[int] = (
            rng.choice(len(live), min(n, len(live)), replace=False).tolist() if n else []
        )
        now = now_ms()
        for i in picked:
            rec = live[i]
            values: dict[str, str | None] = {
                "recent_conversion_date": iso_ms(now),
                "recent_conversion_event_name": "Request a quote",
                "message": "Please send a price quote, we want to buy this month",
                "num_conversion_events": str(int(rec.props.get("num_conversion_events") or 0) + 1),
            }
            history.record(srv.state, "contacts", rec, values, now, {"sourceType": "FORM"})
            srv.state.set_props("contacts", rec, values)
            srv.state.touch("contacts", rec, now)
    return len(picked)


def serve(contacts: int, seed: int, pipe: Connection) -> None:
    """The sandbox process: generate, serve, answer commands on `pipe` until "stop"."""
    from sandbox.hubspot.render import generate_state
    from sandbox.hubspot.server import SandboxOptions, SandboxServer

    start = time.perf_counter()
    state = generate_state(contacts, seed=seed)
    options = SandboxOptions(
        token="bench-token",
        burst_limit=BURST,
        burst_window_s=WINDOW_S,
        search_per_second=SEARCH_PER_S,
        search_lag_s=0.0,
        seed=seed,
    )
    with SandboxServer(state, options, port=0) as srv:
        pipe.send((srv.base_url, options.token, time.perf_counter() - start))
        while True:
            command, *args = pipe.recv()
            if command == "stats":
                pipe.send(srv.stats())
            elif command == "reset":
                srv.reset_stats()
                pipe.send(None)
            elif command == "forms":
                pipe.send(quote_forms(srv, *args))
            else:
                return


def kinds(stats: dict[str, Any]) -> tuple[int, int, int]:
    """(reads, searches, writes) among the requests the server counted."""
    searches = sum(n for route, n in stats["by_route"].items() if "search" in route)
    writes = int(stats["writes"])
    return int(stats["requests"]) - searches - writes, searches, writes


def run_heatsync(env: dict[str, str]) -> tuple[float, float, str]:
    """One `heatsync run` in its own process: wall seconds, its CPU seconds, its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"heatsync run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall, cpu, done.stdout


def summary_line(output: str, label: str) -> str:
    """A figure from the run's summary, e.g. 'written' -> '1,234'."""
    match = re.search(rf"^\s*{label}\s+(.*)$", output, re.MULTILINE)
    return match.group(1).strip() if match else "?"


def step_seconds(dagster_home: Path, output: str) -> dict[str, float]:
    """Seconds of each step of the run named in `output`, from Dagster's run history."""
    import dagster as dg

    match = re.search(r"^\s*run\s+([0-9a-f-]{36})", output, re.MULTILINE)
    if match is None:
        return {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        stats = instance.get_run_step_stats(match.group(1))
    return {
        s.step_key: s.end_time - s.start_time
        for s in stats
        if s.start_time is not None and s.end_time is not None
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--changed", type=int, nargs="+", default=[0, 100, 10_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--wait",
        type=float,
        default=OVERLAP_S + 5,
        help="seconds between runs (default: past the extract's overlap, as schedules space them)",
    )
    parser.add_argument("--show-output", action="store_true", help="print each run's summary")
    args = parser.parse_args()

    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(
        target=serve, args=(args.contacts, args.seed, child), daemon=True
    )
    proc.start()
    base_url, token, seeded = parent.recv()
    print(f"portal: {args.contacts:,} contacts generated and served in {seeded:.0f} s", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="heatsync-incremental-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update(
        HUBSPOT_ACCESS_TOKEN=token,
        HUBSPOT_BASE_URL=base_url,
        HEATSYNC_HOME=str(scratch / "store"),
        DAGSTER_HOME=str(scratch / "dagster"),
    )
    print(
        "\n| run | contacts changed | seconds | CPU s | requests | reads | searches | writes "
        "| 429s |\n|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    try:
        steps: list[tuple[str, dict[str, float]]] = []
        # the second run reads back what the first wrote (every contact's fields changed, so
        # the CRM reports them as changed): an echo of the first sync, not of the users' work
        plan: list[tuple[str, int | None]] = [("first run (full)", None), ("second run", 0)]
        plan += [("after changes", n) for n in args.changed]
        for label, n in plan:
            if n is not None:
                time.sleep(args.wait)
                parent.send(("forms", n, args.seed + n))
                n = parent.recv()
                time.sleep(1.0)  # the changes are older than the run's start
            parent.send(("reset",))
            parent.recv()
            wall, cpu, output = run_heatsync(env)
            parent.send(("stats",))
            stats = parent.recv()
            reads, searches, writes = kinds(stats)
            changed = "all (first sync)" if n is None else f"{n:,}"
            if label == "second run":
                changed = "0 (reads back the first run's writes)"
            print(
                f"| {label} | {changed} | {wall:,.1f} | {cpu:,.1f} | {stats['requests']:,} | "
                f"{reads:,} | {searches:,} | {writes:,} | {stats.get('429', 0)} |",
                flush=True,
            )
            steps.append((f"{label} ({changed})", step_seconds(scratch / "dagster", output)))
            if args.show_output:
                print(output, flush=True)
        names = sorted({key for _, by_step in steps for key in by_step})
        print("\nseconds per step (Dagster's run history):\n")
        print("| run | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for label, by_step in steps:
            cells = " | ".join(f"{by_step[k]:.1f}" if k in by_step else "" for k in names)
            print(f"| {label} | {cells} |")
    finally:
        parent.send(("stop",))
        proc.join(timeout=30)


if __name__ == "__main__":
    main()
