"""A whole amoCRM cycle (extract, fields, values, tasks) under injected 5xx, dropped connections
and lost write answers, with 7 requests/s enforced: it completes, duplicates nothing, is never
blocked and meets few 429s; a second cycle writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connectors.amocrm import AmoCrmConnector
from connectors.base import field_changes
from sandbox.amocrm.state import AmoState
from tests.connectors.amocrm.conftest import oauth_settings, serve
from tests.connectors.amocrm.test_writeback import _scores, _tasks


def test_a_cycle_under_faults_completes_without_duplicates(
    amo_state: AmoState, tmp_path: Path
) -> None:
    with serve(
        amo_state, fail_rate_5xx=0.1, drop_rate=0.05, drop_after_apply_rate=0.5, seed=11
    ) as server:
        conn = AmoCrmConnector(oauth_settings(server, tmp_path, reconcile_wait_s=0.05))
        conn.ensure_schema("ru")
        result = conn.extract(None, datetime.now(UTC))
        assert len(result.contacts) == 120
        scores = _scores(result.contacts)
        report = conn.write_fields(field_changes(scores, result.contacts))
        assert report.ok and report.written == 120
        portal = f"amocrm-{conn.portal_info().portal_id}"
        owners = result.contacts.set_index("contact_id")["owner_id"]
        ids = list(result.contacts["contact_id"].head(60))
        tasks = _tasks(ids, "", portal).assign(owner_id=[owners[c] for c in ids])
        created = conn.create_tasks(tasks)
        assert created.ok, created.failed
        assert set(created.created) | set(created.already_existed) == set(tasks["task_key"])
        ours = [t for t in server.state.tasks.values() if "[hs:" in t["text"]]
        assert len(ours) == 60  # none twice

        # the next run (another connector, the stored token chain) writes nothing
        again = AmoCrmConnector(oauth_settings(server, tmp_path, reconcile_wait_s=0.05))
        later = again.extract(None, datetime.now(UTC))
        assert field_changes(scores, later.contacts).empty
        second = again.create_tasks(tasks)
        assert second.created == {} and len(second.already_existed) == 60

        stats = server.stats()
        assert stats["5xx"] > 0 and stats["dropped"] + stats["dropped_after_apply"] > 0
        assert stats["403"] == 0
        assert stats["429"] <= 0.01 * stats["requests"]
        assert len([t for t in server.state.tasks.values() if "[hs:" in t["text"]]) == 60
        fields = [f for f in server.state.custom_fields["contacts"] if f.get("code")]
        codes = [f["code"] for f in fields]
        assert len(codes) == len(set(codes))  # the fields too were created once
