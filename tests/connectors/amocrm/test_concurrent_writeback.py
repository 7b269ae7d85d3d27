"""amoCRM's write-back on several threads: the same report as one request at a time (one bad
element per batch, the first batch answering last, 5xx retried), and every task created exactly
once when answers are lost, against the sandbox over loopback."""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from connectors.amocrm import AmoCrmConnector
from connectors.amocrm.markers import markers_in, task_marker
from connectors.base import field_changes
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState
from tests.connectors.amocrm.conftest import fresh_options, llt_settings
from tests.connectors.amocrm.test_writeback import _scores, _tasks

# not in the account, one in each batch of 50 (in an order their ids do not sort in)
GHOSTS = {10: "999993", 60: "999991", 110: "999992"}


class CountingSandbox(AmoSandboxServer):
    """The sandbox counting requests in flight per route; a PATCH naming `slow` answers late."""

    def __init__(self, *args: Any, slow: str = "", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.slow = slow
        self.flight: collections.Counter[str] = collections.Counter()
        self.peak: collections.Counter[str] = collections.Counter()
        self._flight_lock = threading.Lock()

    def handle(self, req: Any) -> Any:
        route = f"{req.method} {req.path.rstrip('/')}"
        with self._flight_lock:
            self.flight[route] += 1
            self.peak[route] = max(self.peak[route], self.flight[route])
        try:
            if self.slow and req.method == "PATCH" and req.body:
                if any(str(i.get("id")) == self.slow for i in json.loads(req.body)):
                    time.sleep(0.4)  # before the state's lock: the other batches answer first
            return super().handle(req)
        finally:
            with self._flight_lock:
                self.flight[route] -= 1


def _serve(state_json: str, slow: str = "") -> CountingSandbox:
    state = AmoState.from_json(json.loads(state_json))
    return CountingSandbox(state, fresh_options(latency_ms=20), port=0, slow=slow).start()


def _conn(srv: AmoSandboxServer, workers: int) -> AmoCrmConnector:
    return AmoCrmConnector(
        llt_settings(srv, read_workers=workers, reconcile_wait_s=0.05, create_attempts=6)
    )


def _write_once(state_json: str, workers: int) -> tuple[Any, CountingSandbox, pd.DataFrame]:
    probe = _serve(state_json)
    try:
        first = sorted(probe.state.contacts, key=int)[0]
    finally:
        probe.stop()
    srv = _serve(state_json, slow=str(first))
    try:
        conn = _conn(srv, workers)
        conn.ensure_schema("en")
        contacts = conn.extract(None, datetime.now(UTC)).contacts
        contacts = contacts.sort_values("contact_id", key=lambda s: s.astype(int))
        updates = field_changes(_scores(contacts), contacts).reset_index(drop=True)
        assert updates["contact_id"].iloc[0] == str(first)
        for row, ghost in GHOSTS.items():
            extra = updates.iloc[[0]].assign(contact_id=ghost)
            updates = pd.concat([updates.iloc[:row], extra, updates.iloc[row:]], ignore_index=True)
        # an option amoCRM does not have: refused before sending
        updates.loc[30, ["segment", "changed_segment"]] = ["vip_plus", True]
        srv.reset_stats()
        srv.set_faults(fail_rate_5xx=0.3, seed=4)
        report = conn.write_fields(updates)
        srv.set_faults(fail_rate_5xx=0.0)
        conn.client.close()
        return report, srv, updates
    finally:
        srv.stop()


def test_concurrent_field_writes_report_as_one_at_a_time(amo_state_json: str) -> None:
    one, srv_one, updates = _write_once(amo_state_json, 1)
    many, srv_many, _ = _write_once(amo_state_json, 4)
    assert srv_one.peak["PATCH /api/v4/contacts"] == 1
    assert srv_many.peak["PATCH /api/v4/contacts"] >= 2
    assert srv_one.stats()["5xx"] > 0 and srv_many.stats()["5xx"] > 0
    assert dataclasses.asdict(many) == dataclasses.asdict(one)
    # failures in batch order although the first batch answered last
    ids = list(updates["contact_id"])
    assert [f["contact_id"] for f in one.failed] == [ids[30], *GHOSTS.values()]
    assert "vip_plus" in one.failed[0]["reason"] and "NotFound" in one.failed[1]["reason"]
    assert one.written == 119 and one.attempted == 123
    assert one.fields_changed["temperature"] == 119
    # what both accounts hold afterwards is the same
    assert _held(srv_many) == _held(srv_one)
    held = _held(srv_one)
    assert "HEATSYNC_TEMPERATURE" not in held[ids[30]]
    assert sum("HEATSYNC_TEMPERATURE" in v for v in held.values()) == 119


def _held(srv: AmoSandboxServer) -> dict[str, dict[str, Any]]:
    """heatsync's field values per contact, as the account holds them."""
    return {
        str(cid): {
            v["field_code"]: v["values"]
            for v in contact["custom_fields_values"] or []
            if str(v.get("field_code") or "").startswith("HEATSYNC_")
        }
        for cid, contact in srv.state.contacts.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_task_batches_create_each_task_once(amo_state_json: str, seed: int) -> None:
    srv = _serve(amo_state_json)
    try:
        conn = _conn(srv, 4)
        portal = f"amocrm-{conn.portal_info().portal_id}"
        contacts = sorted(srv.state.contacts, key=int)
        owners = {str(c): srv.state.contacts[c]["responsible_user_id"] for c in contacts}
        tasks = _tasks([str(c) for c in contacts], "0", portal).assign(
            owner_id=lambda t: t["contact_id"].map(owners).astype(str)
        )
        second = tasks.assign(task_key=tasks["task_key"].str.replace("call_now", "at_risk"))
        tasks = pd.concat([tasks, second], ignore_index=True)  # 240 tasks, 5 batches
        srv.reset_stats()
        srv.set_faults(drop_after_apply_rate=0.4, fail_rate_5xx=0.1, seed=seed)
        report = conn.create_tasks(tasks)
        srv.set_faults(drop_after_apply_rate=0.0, fail_rate_5xx=0.0)
        assert srv.peak["POST /api/v4/tasks"] >= 2
        assert srv.stats()["dropped_after_apply"] > 0
        key_of = {task_marker(k): k for k in tasks["task_key"]}

        def held() -> dict[str, list[str]]:
            out: dict[str, list[str]] = collections.defaultdict(list)
            for task in srv.state.tasks.values():
                for mark in markers_in(str(task.get("text") or "")):
                    if mark in key_of:
                        out[key_of[mark]].append(str(task["id"]))
            return out

        now = held()
        assert {k: v for k, v in now.items() if len(v) > 1} == {}
        done = {**report.created, **report.already_existed}
        assert done == {k: v[0] for k, v in now.items() if k in done}
        failed = {f["task_key"] for f in report.failed}
        assert set(done) | failed == set(tasks["task_key"]) and not set(done) & failed
        rerun = conn.create_tasks(tasks)
        assert rerun.ok
        after = held()
        assert sorted(after) == sorted(tasks["task_key"])
        assert all(len(v) == 1 for v in after.values())
        conn.client.close()
    finally:
        srv.stop()
