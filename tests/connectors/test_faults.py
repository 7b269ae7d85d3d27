"""Write-back under the sandbox's write faults: answers lost after the write landed, and
transient per-row errors inside a 207 batch update."""

from __future__ import annotations

import collections

from sandbox.hubspot.server import SandboxServer
from tests.connectors.conftest import connector_for, needs_sandbox
from tests.connectors.test_writeback import _live_ids, _read_contacts, _tasks, _updates

pytestmark = needs_sandbox

# rate 0.25, seed 6: every transient row gets through within the default three extra rounds
# (other seeds leave a row failing four times in a row, which is then reported failed)
ROW_RATE, ROW_SEED = 0.25, 6


def _task_keys_in_portal(srv: SandboxServer, prefix: str) -> list[str]:
    """Every live task's heatsync_task_key with `prefix`, read from the sandbox's own state."""
    with srv.lock:
        keys = [rec.props.get("heatsync_task_key") or "" for rec in srv.state.iter_live("tasks")]
    return [k for k in keys if k.startswith(prefix)]


def test_create_tasks_when_answers_are_lost_after_the_create_landed(server) -> None:
    hub = connector_for(server, reconcile_wait_s=0.05)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 230)  # three batches
    tasks = _tasks(ids, prefix="lost")
    server.reset_stats()
    # every create's answer lost (the batches go out together, so a seeded rate would pick
    # the lost ones by arrival order); the lookups are reads and answered
    server.set_faults(drop_after_apply_rate=1.0)
    report = hub.create_tasks(tasks)
    server.set_faults(drop_after_apply_rate=0.0)
    stats = server.stats()
    assert stats["dropped_after_apply"] == 3
    # each batch was sent once: the lost answers were reconciled by lookup, not by resending
    assert stats["by_route"]["POST objects/tasks/batch/create"] == 3
    assert hub.stats.server_errors >= stats["dropped_after_apply"]
    assert report.ok, report.failed
    assert set(report.created) | set(report.already_existed) == set(tasks["task_key"])
    keys = _task_keys_in_portal(server, "lost:")
    duplicates = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert not duplicates
    assert sorted(keys) == sorted(tasks["task_key"])
    # the ids reported are the ones the portal holds
    with server.lock:
        held = {
            rec.props["heatsync_task_key"]: str(rec.id)
            for rec in server.state.iter_live("tasks")
            if (rec.props.get("heatsync_task_key") or "").startswith("lost:")
        }
    assert {**report.already_existed, **report.created} == held


def test_write_fields_when_answers_are_lost_after_the_update_landed(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 250)
    server.reset_stats()
    server.set_faults(drop_after_apply_rate=0.5, seed=2)
    report = hub.write_fields(_updates(ids, temperature="hot", score=77.0))
    server.set_faults(drop_after_apply_rate=0.0)
    assert server.stats()["dropped_after_apply"] > 0
    assert hub.stats.retries > 0
    assert report.ok and report.written == len(ids)
    props = _read_contacts(hub, ids, ["heatsync_temperature", "heatsync_score"])
    assert len(props) == len(ids)
    assert {(p["heatsync_temperature"], p["heatsync_score"]) for p in props.values()} == {
        ("hot", "77")
    }


def test_write_fields_retries_transient_row_errors_and_reports_permanent_ones(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 250)
    unknown = "999999999"
    server.reset_stats()
    server.set_faults(row_error_rate=ROW_RATE, seed=ROW_SEED)
    report = hub.write_fields(_updates([*ids, unknown], segment="key"))
    server.set_faults(row_error_rate=0.0)
    stats = server.stats()
    assert stats["row_errors"] > 0
    # the unknown id fails at once (not retried); every transient row made it in a later round
    assert [f["contact_id"] for f in report.failed] == [unknown]
    assert "OBJECT_NOT_FOUND" in report.failed[0]["reason"]
    assert report.written == len(ids) and report.attempted == len(ids) + 1
    assert report.rounds >= 2 and report.retried == stats["row_errors"]
    # 3 batches in round one, then one batch per later round (< 100 rows left each time)
    assert stats["by_route"]["POST objects/contacts/batch/update"] == 3 + report.rounds - 1
    props = _read_contacts(hub, ids, ["heatsync_segment"])
    assert {p["heatsync_segment"] for p in props.values()} == {"key"}


def test_transient_row_errors_are_reported_when_no_round_is_left(server) -> None:
    hub = connector_for(server, write_retry_rounds=0)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 100)
    server.set_faults(row_error_rate=0.3, seed=1)
    report = hub.write_fields(_updates(ids, segment="fan"))
    server.set_faults(row_error_rate=0.0)
    failed = {f["contact_id"]: f["reason"] for f in report.failed}
    assert len(failed) == server.stats()["row_errors"] > 0
    assert report.rounds == 1 and report.retried == 0
    assert report.written == len(ids) - len(failed)
    reasons = {r.split(":")[0] for r in failed.values()}
    assert reasons <= {"LOCKED", "INTERNAL_ERROR"} and reasons
    held = _read_contacts(hub, ids, ["heatsync_segment"])
    assert {c for c, p in held.items() if p.get("heatsync_segment") != "fan"} == set(failed)
