"""HubSpot's write-back on several threads: the same report as one request at a time, and every
task key created exactly once under ambiguous failures, against the sandbox over loopback."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.client import HubSpotClient
from sandbox.hubspot.server import SandboxServer
from sandbox.hubspot.transport import Request, Response
from tests.connectors.conftest import needs_sandbox, options, settings_for
from tests.connectors.test_writeback import _live_ids, _read_contacts, _tasks, _updates

pytestmark = needs_sandbox

LOCKED = ("LOCKED", "This record is locked by another write in progress.")
INTERNAL = ("INTERNAL_ERROR", "An internal error occurred while updating this record.")


class KeyedSandbox(SandboxServer):
    """The sandbox with per-contact 207 row faults (the n-th update of a contact draws the n-th
    fault of its list), one slow contact whose batch answers last, and a count of the requests
    in flight per route."""

    def __init__(
        self, *args: Any, faults: dict[str, list[tuple[str, str]]], slow: str, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.faults = {cid: list(seq) for cid, seq in faults.items()}
        self.slow = slow
        self.flight: collections.Counter[str] = collections.Counter()
        self.peak: collections.Counter[str] = collections.Counter()
        self._local = threading.local()
        self._flight_lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        route = req.path.rsplit("/", 2)[-2] + "/" + req.path.rsplit("/", 1)[-1]
        with self._flight_lock:
            self.flight[route] += 1
            self.peak[route] = max(self.peak[route], self.flight[route])
        try:
            if req.path.endswith("/batch/update") and any(
                str(i.get("id")) == self.slow for i in req.json().get("inputs", [])
            ):
                time.sleep(0.3)  # outside the state's lock: the other parts answer first
            return super().handle(req)
        finally:
            with self._flight_lock:
                self.flight[route] -= 1

    def h_batch_update(self, req: Request, flavor: str, type_name: str) -> Response:
        inputs = req.json().get("inputs", [])
        ids = [str((i or {}).get("id", "")) for i in inputs]
        live = [
            i
            for i in ids
            if (rec := self.state.get(self._type(type_name), i)) is not None and not rec.archived
        ]
        self._local.rows = live
        return super().h_batch_update(req, flavor, type_name)

    def _row_fault(self) -> tuple[str, str] | None:
        cid = self._local.rows.pop(0)
        seq = self.faults.get(cid)
        if seq:
            with self._meta:
                self._stats["row_errors"] += 1
            return seq.pop(0)
        return None


@contextmanager
def keyed_server(state: Any, **kw: Any) -> Iterator[KeyedSandbox]:
    with KeyedSandbox(state, options(latency_ms=20), port=0, **kw) as srv:
        yield srv


def _hub(srv: SandboxServer, workers: int, sleeps: list[float] | None = None) -> HubSpotConnector:
    settings = settings_for(srv, read_workers=workers, reconcile_wait_s=0.05, create_attempts=6)
    pause = sleeps.append if sleeps is not None else time.sleep
    return HubSpotConnector(settings, client=HubSpotClient(settings, sleep=pause))


def _write_once(base_state: Any, workers: int) -> tuple[Any, dict[str, Any], KeyedSandbox]:
    """Write 250 contacts + an unknown id + an invalid value on a fresh copy of the portal."""
    with keyed_server(base_state.copy(), faults={}, slow="") as probe:
        ids = _live_ids(_hub(probe, 1), 250)
    # parts of 100: faults in each part, the first part slowest
    faults = {
        ids[5]: [LOCKED],  # part 1, through in round 2 after the lock wait
        ids[150]: [INTERNAL, INTERNAL],  # part 2, through in round 3
        ids[240]: [INTERNAL] * 4,  # part 3, transient in every round: failed at last
        ids[60]: [INTERNAL] * 4,  # part 1, the same: reported before ids[240]
    }
    with keyed_server(base_state.copy(), faults=faults, slow=ids[0]) as srv:
        sleeps: list[float] = []
        hub = _hub(srv, workers, sleeps)
        hub.ensure_schema("en")
        updates = _updates([*ids, "999999999"], temperature="hot", score=61.0, segment="key")
        # rejected by HubSpot for good: in the slow first part and in the second
        updates.loc[[30, 120], "temperature"] = "lukewarm"
        srv.reset_stats()
        report = hub.write_fields(updates)
        names = ["heatsync_temperature", "heatsync_segment"]
        held = {c: {n: p.get(n) for n in names} for c, p in _read_contacts(hub, ids, names).items()}
        stats = srv.stats()
        return (
            report,
            {"held": held, "sleeps": sleeps, "updates": stats["by_route"], "ids": ids},
            srv,
        )


def test_concurrent_field_writes_report_as_one_at_a_time(base_state: Any) -> None:
    one, seen_one, srv_one = _write_once(base_state, 1)
    many, seen_many, srv_many = _write_once(base_state, 12)
    ids = seen_one["ids"]
    assert seen_many["ids"] == ids
    # the batches really overlapped with 12 threads, and never with one
    assert srv_one.peak["batch/update"] == 1
    assert srv_many.peak["batch/update"] >= 2
    assert dataclasses.asdict(many) == dataclasses.asdict(one)
    # what that report is: failures in part order, transient rows retried in later rounds
    failed = [f["contact_id"] for f in one.failed]
    assert failed == [ids[30], ids[120], "999999999", ids[60], ids[240]]
    reasons = {f["contact_id"]: f["reason"] for f in one.failed}
    assert reasons[ids[60]].startswith("INTERNAL_ERROR")
    assert reasons[ids[30]].startswith("VALIDATION_ERROR")
    assert reasons["999999999"].startswith("OBJECT_NOT_FOUND")
    assert one.written == 246 and one.attempted == 251
    assert one.rounds == 4 and one.retried == 4 + 3 + 2
    assert one.fields_changed == {"temperature": 246, "score": 246, "segment": 246}
    # round 2 waited out the lock, later rounds their backoff; the same waits either way
    assert seen_one["sleeps"][0] >= 2.0
    assert seen_many["sleeps"] == seen_one["sleeps"]
    assert seen_many["updates"] == seen_one["updates"]
    assert seen_many["held"] == seen_one["held"]
    bad = {ids[30], ids[60], ids[120], ids[240]}
    assert {c for c, p in seen_one["held"].items() if p["heatsync_temperature"] != "hot"} == bad


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_task_batches_create_each_key_once(base_state: Any, seed: int) -> None:
    with keyed_server(base_state.copy(), faults={}, slow="") as srv:
        hub = _hub(srv, 12)
        hub.ensure_schema("en")
        ids = _live_ids(hub, 240)
        tasks = _tasks(ids, prefix=f"many{seed}")
        second = tasks.assign(task_key=tasks["task_key"].str.replace("call_now", "at_risk"))
        tasks = pd.concat([tasks, second], ignore_index=True)  # 480 keys, 5 batches
        srv.reset_stats()
        # answers lost after the create landed, and 5xx before anything was applied
        srv.set_faults(drop_after_apply_rate=0.4, fail_rate_5xx=0.1, seed=seed)
        report = hub.create_tasks(tasks)
        srv.set_faults(drop_after_apply_rate=0.0, fail_rate_5xx=0.0)
        stats = srv.stats()
        assert srv.peak["batch/create"] >= 2
        assert stats["dropped_after_apply"] > 0
        with srv.lock:
            held: dict[str, list[str]] = collections.defaultdict(list)
            for rec in srv.state.iter_live("tasks"):
                key = rec.props.get("heatsync_task_key") or ""
                if key.startswith(f"many{seed}:"):
                    held[key].append(str(rec.id))
        assert {k: v for k, v in held.items() if len(v) > 1} == {}
        done = {**report.created, **report.already_existed}
        assert done == {k: v[0] for k, v in held.items() if k in done}
        failed = {f["task_key"] for f in report.failed}
        assert set(done) | failed == set(tasks["task_key"]) and not set(done) & failed
        # a clean rerun completes what is left, still once per key
        rerun = hub.create_tasks(tasks)
        assert rerun.ok
        assert set(rerun.already_existed) | set(rerun.created) == set(tasks["task_key"])
        with srv.lock:
            keys = [
                rec.props.get("heatsync_task_key") or "" for rec in srv.state.iter_live("tasks")
            ]
        mine = [k for k in keys if k.startswith(f"many{seed}:")]
        assert sorted(mine) == sorted(tasks["task_key"])
