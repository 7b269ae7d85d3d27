"""Memory of a full extract: does the peak stay flat as the account grows?

For each CRM and size, a sandbox account is generated and served in a process of its own, and a
fresh process runs the extract step (`pipelines.steps.extract`: the connector's full extract and
its merge into an empty store) against it over loopback HTTP, then reports its own peak resident
memory (`ru_maxrss`), wall and CPU seconds. The sandbox runs on a clock `--time-scale` times
faster (its rate windows and latency divided by the scale, the client's window likewise), so a
100k account is read in minutes; the memory does not depend on the clock. Prints a table and the
ratio of the largest size's peak to the smallest's. `--code DIR` runs the extract from another
checkout of heatsync (e.g. an earlier commit, for a before/after); the sandbox always runs from
this one.

python benchmarks/extract_memory.py [--crm amocrm hubspot] [--sizes 10000 100000]
    [--time-scale 20] [--latency-ms 300] [--code DIR] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(args: argparse.Namespace) -> None:
    """The measured process: one extract step into a fresh store; prints its figures as JSON."""
    import resource

    import pandas as pd

    from pipelines import steps
    from pipelines.run.asof import AsOf
    from pipelines.store import PortalStore

    home = Path(args.home)
    # this checkout's benchmarks/ (the script's folder); the connectors of the code measured
    from sandbox_serving import connector_for

    connector, _ = connector_for(
        args.crm[0], args.base_url, args.token, args.time_scale, home / "tokens"
    )
    store = PortalStore(home, "bench", location=str(home))
    now = pd.Timestamp.now(tz="UTC")
    as_of = AsOf.resolve(now.strftime("%Y-%m-%d"), "UTC", now)
    wall, cpu = time.perf_counter(), time.process_time()
    result = steps.extract(connector, store, as_of)
    meta = result.metadata
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "contacts": meta["contacts_in_store"],
                "activities": meta["activities_in_store"],
                "deals": meta["deals_in_store"],
                "requests": meta["api_requests"],
                "wall_s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
                "peak_mb": usage.ru_maxrss / 1024,
            }
        )
    )


def measure(crm: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.sandbox_serving import serve

    parent, end = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=serve,
        args=(crm, size, args.seed, args.latency_ms, args.time_scale, end),
        daemon=True,
    )
    proc.start()
    base_url, token, seeded = parent.recv()
    try:
        with tempfile.TemporaryDirectory(prefix="heatsync-memory-") as home:
            code = Path(args.code).resolve() if args.code else ROOT
            env = {**os.environ, "PYTHONPATH": str(code), "HEATSYNC_HOME": home}
            env.pop("HEATSYNC_STORE_URI", None)
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                "--crm",
                crm,
                "--base-url",
                base_url,
                "--token",
                token,
                "--home",
                home,
                "--time-scale",
                str(args.time_scale),
            ]
            done = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"the extract of {size:,} contacts failed:\n{done.stderr}")
            figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        parent.send("stop")
        proc.join(timeout=60)
    figures.update(size=size, seeded_s=seeded, load=os.getloadavg()[0])
    return figures


def main() -> None:
    sys.path.insert(1, str(ROOT))  # the sandbox always runs from this checkout
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", nargs="+", choices=["amocrm", "hubspot"], default=["amocrm"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--code", default="", help="the checkout the extract runs from")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(
        f"latency {args.latency_ms} ms, clock ×{args.time_scale:g}; code: {args.code or ROOT}"
        "\n\n| CRM | contacts | activities | deal rows | requests | wall s | CPU s | peak MB | "
        "load (1 min) |\n|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    for crm in args.crm:
        rows = []
        for size in args.sizes:
            f = measure(crm, size, args)
            rows.append(f)
            print(
                f"| {crm} | {f['contacts']:,} | {f['activities']:,} | {f['deals']:,} | "
                f"{f['requests']:,} | {f['wall_s']:.0f} | {f['cpu_s']:.0f} | "
                f"{f['peak_mb']:.0f} | {f['load']:.1f} |",
                flush=True,
            )
        if len(rows) > 1:
            ratio = rows[-1]["peak_mb"] / rows[0]["peak_mb"]
            print(f"{crm}: peak memory {rows[-1]['size']:,} ÷ {rows[0]['size']:,}: {ratio:.2f}")


if __name__ == "__main__":
    main()
