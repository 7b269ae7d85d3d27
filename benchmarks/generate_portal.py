"""Timings of the sandbox: portal generation, HubSpot rendering, state save/load, 100k search.

python benchmarks/generate_portal.py [--contacts 100000] [--render 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import HubSpotState, render_truth
from sandbox.portal import generate_portal

T = TypeVar("T")


def _timed(label: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = fn()
    print(f"{label:<52} {time.perf_counter() - start:7.2f}s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--render", type=int, default=2000)
    args = parser.parse_args()
    anchor = date(2026, 5, 1)

    big = _timed(
        f"generate_portal({args.contacts:,})", lambda: generate_portal(args.contacts, anchor=anchor)
    )
    print(f"  -> {len(big.activities):,} activities, {len(big.deals):,} deals")
    small = _timed(
        f"generate_portal({args.render:,})", lambda: generate_portal(args.render, anchor=anchor)
    )
    state = _timed(f"render_truth({args.render:,})", lambda: render_truth(small))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hubspot.json"
        _timed("state.save", lambda: state.save(path))
        print(f"  -> {path.stat().st_size / 1e6:.1f} MB")
        _timed("HubSpotState.load", lambda: HubSpotState.load(path))

    synthetic = HubSpotState()

    def fill() -> None:
        for i in range(100_000):
            synthetic.add("contacts", {"email": f"c{i}@example.com"}, 1_700_000_000_000 + i * 1000)

    _timed("synthetic state with 100,000 contacts", fill)
    with SandboxServer(synthetic, SandboxOptions(token="t", search_per_second=100)) as srv:
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": "1700040000000",
                        },
                        {"propertyName": "hs_object_id", "operator": "GT", "value": "0"},
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "limit": 200,
        }
        url = f"{srv.base_url}/crm/v3/objects/contacts/search"
        headers = {"Authorization": "Bearer t"}
        _timed(
            "search over 100,000 contacts (cold cache)",
            lambda: requests.post(url, json=body, headers=headers),
        )
        answer = _timed(
            "search over 100,000 contacts (warm)",
            lambda: requests.post(url, json=body, headers=headers),
        )
        print(f"  -> total {answer.json()['total']:,}")


if __name__ == "__main__":
    main()
