"""A sandbox CRM served from a process of its own for the benchmarks, and a connector to it.

`serve` generates an account (HubSpot or amoCRM) and serves it over loopback HTTP at the CRM's
real limits (HubSpot: 190 requests per 10 s and 5 searches a second; amoCRM: 7 a second), every
request delayed `latency_ms` before the server counts it, windows and latency divided by
`scale`. It sends (base URL, token, seconds to generate) on `pipe`, then answers:
"stats" (the server's counters and its CPU seconds), "reset" (counters back to 0), "ids" (the
live contacts as (id, owner id)); anything else stops it. `connector_for` makes the matching
connector, windows scaled alike, and returns it with the server's budget in requests per API
second. Used by extract_latency.py, extract_memory.py and writeback_latency.py.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HUBSPOT_BURST, HUBSPOT_WINDOW_S, HUBSPOT_SEARCH = 190, 10.0, 5
AMO_RATE, AMO_CLIENT_WINDOW_S = 7, 1.0


def serve(
    crm: str, contacts: int, seed: int, latency_ms: int, scale: float, pipe: Connection
) -> None:
    """The sandbox process (see the module docstring)."""
    start = time.perf_counter()
    srv: Any
    token: str | None
    if crm == "hubspot":
        from sandbox.hubspot.render import generate_state
        from sandbox.hubspot.server import SandboxOptions, SandboxServer

        options = SandboxOptions(
            token="bench-token",
            burst_limit=HUBSPOT_BURST,
            burst_window_s=HUBSPOT_WINDOW_S,
            search_per_second=HUBSPOT_SEARCH,
            latency_ms=latency_ms,
            time_scale=scale,
            seed=seed,
        )
        srv = SandboxServer(generate_state(contacts, seed=seed), options, port=0)
        token = options.token
    else:
        from sandbox.amocrm.common import AmoOptions
        from sandbox.amocrm.render import generate_state as amo_state
        from sandbox.amocrm.server import AmoSandboxServer

        amo = AmoOptions(rate_per_second=AMO_RATE, latency_ms=latency_ms, time_scale=scale)
        srv = AmoSandboxServer(amo_state(contacts, seed=seed), amo, port=0)
        token = amo.long_lived_token
    with srv:
        pipe.send((srv.base_url, token, time.perf_counter() - start))
        cpu = time.process_time()
        while True:
            command = pipe.recv()
            if command == "ids":
                with srv.lock:
                    pipe.send(_live_contacts(crm, srv.state))
            elif command == "stats":
                pipe.send({**srv.stats(), "cpu_s": time.process_time() - cpu})
            elif command == "reset":
                srv.reset_stats()
                cpu = time.process_time()
                pipe.send(None)
            else:
                return


def _live_contacts(crm: str, state: Any) -> list[tuple[str, str | None]]:
    if crm == "hubspot":
        return [(str(r.id), r.props.get("hubspot_owner_id")) for r in state.iter_live("contacts")]
    return [
        (str(i), str(c.get("responsible_user_id") or "") or None)
        for i, c in state.contacts.items()
        if not c.get("is_deleted")
    ]


def connector_for(
    crm: str,
    base_url: str,
    token: str,
    scale: float,
    token_dir: Path,
    workers: int | None = None,
) -> tuple[Any, float]:
    """The connector to a sandbox `serve` started (its default threads unless `workers`), and
    the server's budget in requests per API second."""
    threads = {} if workers is None else {"read_workers": workers}
    if crm == "hubspot":
        from connectors.hubspot import HubSpotConnector, HubSpotSettings

        settings = HubSpotSettings.model_validate(
            {
                "access_token": token,
                "base_url": base_url,
                "portal": "bench",
                "burst_limit": HUBSPOT_BURST,
                "burst_window_s": HUBSPOT_WINDOW_S / scale,
                "search_per_second": HUBSPOT_SEARCH,
                "search_window_s": 1.0 / scale,
                "search_lag_s": 0.0,
                "reconcile_wait_s": 2.0 / scale,
                **threads,
            }
        )
        return HubSpotConnector(settings), HUBSPOT_BURST / HUBSPOT_WINDOW_S
    from connectors.amocrm import AmoCrmConnector, AmoCrmSettings

    amo = AmoCrmSettings.model_validate(
        {
            "base_url": base_url,
            "access_token": token,
            "portal": "bench",
            "token_dir": token_dir,
            "rate_window_s": AMO_CLIENT_WINDOW_S / scale,
            "reconcile_wait_s": 1.0 / scale,
            **threads,
        }
    )
    return AmoCrmConnector(amo), float(AMO_RATE)
