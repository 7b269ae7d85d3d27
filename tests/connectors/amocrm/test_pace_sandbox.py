"""amoCRM's pace rule over real HTTP: two processes of one account, three threads each, against
the sandbox's 7 requests per second under latency with jitter. The account's pace file keeps
them within the budget (429s at most 1 % of the requests, never a 403 block), and they send
faster than the holding rule (each slot held until its answer plus a window) ever could."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

from connectors.amocrm import AmoCrmConnector, AmoCrmSettings
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState
from tests.connectors.amocrm.conftest import llt_settings
from tests.connectors.amocrm.conftest import serve as amo_serve

SCALE = 2.0  # a clock twice as fast: 150 ms + 0..50 ms a request, a window of 0.5 s
PER_THREAD = 50  # 300 requests: 1 % allows three 429s


def _threads(values: dict[str, Any]) -> tuple[int, int, float, float]:
    """Three threads reading pages at once; (requests, 429s met, first send, last answer)."""
    conn = AmoCrmConnector(AmoCrmSettings(**values))
    start = time.time()

    def read() -> None:
        for page in range(1, PER_THREAD + 1):
            conn.client.page("/contacts", "contacts", [], page, limit=5)

    workers = [threading.Thread(target=read) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    conn.client.close()
    return conn.stats.requests, conn.stats.rate_limited, start, time.time()


def test_two_processes_share_the_budget_under_jittered_latency(
    amo_state: AmoState, tmp_path: Path
) -> None:
    server: AmoSandboxServer
    with amo_serve(
        amo_state, latency_ms=300, latency_jitter_ms=100, time_scale=SCALE, rate_per_second=7
    ) as server:
        values = llt_settings(server, token_dir=tmp_path, rate_window_s=1.0 / SCALE).model_dump()
        values["access_token"] = server.long_lived_token
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            results = pool.map(_threads, [values, values])
        stats = server.stats()
    requests = sum(r[0] for r in results)
    assert requests == 2 * 3 * PER_THREAD + sum(r[1] for r in results)  # 429s are retried
    assert stats["429"] <= 0.01 * requests and stats["403"] == 0
    seconds = (max(r[3] for r in results) - min(r[2] for r in results)) * SCALE
    pace = json.loads(next(tmp_path.glob("pace-*.json")).read_text())
    rtts = sorted(pace["rtts"])
    holding = 7 / (1.0 + SCALE * rtts[len(rtts) // 2])  # the holding rule at the median trip
    assert requests / seconds > holding
