"""Write-back against the HubSpot sandbox: schema, fields, tasks, partial failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.base import WRITABLE_FIELDS
from tests.connectors.conftest import connector_for, needs_sandbox

pytestmark = needs_sandbox


def _updates(contact_ids: list[str], **values: object) -> pd.DataFrame:
    frame = pd.DataFrame({"contact_id": contact_ids})
    for name in WRITABLE_FIELDS:
        frame[name] = values.get(name)
        frame[f"changed_{name}"] = name in values
    return frame


def _tasks(contact_ids: list[str], owner: str | None = None, prefix: str = "t") -> pd.DataFrame:
    due = pd.Timestamp("2026-03-03 09:00", tz="UTC")
    return pd.DataFrame(
        {
            "task_key": [f"{prefix}:{c}:call_now:2026-03-02" for c in contact_ids],
            "portal": "sandbox",
            "contact_id": contact_ids,
            "owner_id": owner,
            "rule": "call_now",
            "period": "2026-03-02",
            "due_at": due,
            "priority": "HIGH",
            "task_type": "CALL",
            "subject": "Call back — hot lead",
            "body": "Asked for a price today.",
            "score": 91.0,
        }
    )


def _read_contacts(hub, ids: list[str], props: list[str]) -> dict[str, dict[str, str | None]]:
    outcome = hub.client.batch_read("contacts", ids, props)
    return {r["id"]: r["properties"] for r in outcome.results}


def _live_ids(hub, n: int) -> list[str]:
    ids = [r["id"] for _, r in zip(range(n), hub.client.list_objects("contacts", []), strict=False)]
    return [str(i) for i in ids]


def test_ensure_schema_is_idempotent(server) -> None:
    hub = connector_for(server)
    created = hub.ensure_schema("lv")
    assert "contacts/heatsync_temperature" in created
    assert "tasks/heatsync_task_key" in created
    temp = hub.client.get_property("contacts", "heatsync_temperature")
    assert temp is not None and temp.type == "enumeration"
    assert {o.value: o.label for o in temp.options}["hot"] == "Karsts"
    vip = hub.client.get_property("contacts", "heatsync_vip")
    assert vip is not None and vip.type == "bool"
    before = hub.stats.write_requests
    server.reset_stats()
    assert hub.ensure_schema("lv") == []
    assert hub.stats.write_requests == before
    assert server.stats()["writes"] == 0
    # a locale change patches labels, creates nothing
    assert hub.ensure_schema("en") == []
    temp = hub.client.get_property("contacts", "heatsync_temperature")
    assert {o.value: o.label for o in temp.options}["hot"] == "Hot"


def test_write_fields_renders_and_writes_only_changed(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 3)
    updates = _updates(
        ids,
        temperature="hot",
        score=87.4,
        next_touch_due=pd.Timestamp("2026-03-05"),
        reasons="Asked for a price today",
    )
    report = hub.write_fields(updates)
    assert report.ok and report.written == 3 and report.attempted == 3
    assert report.fields_changed == {
        "temperature": 3,
        "score": 3,
        "next_touch_due": 3,
        "reasons": 3,
    }
    props = _read_contacts(
        hub,
        ids,
        [
            "heatsync_temperature",
            "heatsync_score",
            "heatsync_next_touch_due",
            "heatsync_updated_at",
        ],
    )
    for contact_id in ids:
        p = props[contact_id]
        assert p["heatsync_temperature"] == "hot"
        assert p["heatsync_score"] == "87"
        assert str(p["heatsync_next_touch_due"]).startswith("2026-03-05")
        assert str(p["heatsync_updated_at"]).startswith(datetime.now(UTC).date().isoformat())
    # clearing a field sends ""
    report = hub.write_fields(_updates(ids[:1], next_touch_due=None))
    assert report.written == 1
    assert not _read_contacts(hub, ids[:1], ["heatsync_next_touch_due"])[ids[0]].get(
        "heatsync_next_touch_due"
    )


def test_write_fields_without_changes_sends_nothing(server) -> None:
    hub = connector_for(server)
    ids = _live_ids(hub, 2)
    server.reset_stats()
    before = hub.stats.requests
    report = hub.write_fields(_updates(ids))  # no changed_* flag set
    assert report.unchanged == 2 and report.written == 0
    report = hub.write_fields(_updates([]))
    assert report.attempted == 0
    assert hub.stats.requests == before
    assert server.stats()["requests"] == 0


def test_partial_failure_is_reported_and_the_rest_written(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 4)
    archived = ids[3]
    hub.client.http.request(
        "DELETE", f"{hub.settings.objects_path('contacts')}/{archived}", write=True
    )
    targets = [*ids[:3], "999999999", archived]
    report = hub.write_fields(_updates(targets, temperature="warm"))
    assert report.written == 3
    failed = {f["contact_id"]: f["reason"] for f in report.failed}
    assert set(failed) == {"999999999", archived}
    assert all("OBJECT_NOT_FOUND" in r or "not found" in r.lower() for r in failed.values())
    props = _read_contacts(hub, ids[:3], ["heatsync_temperature"])
    assert all(p["heatsync_temperature"] == "warm" for p in props.values())


def test_transient_failures_on_batch_update_are_retried(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 250)
    server.reset_stats()
    server.set_faults(fail_rate_5xx=0.3, seed=7)  # seed 7: the 1st and 4th requests fail
    report = hub.write_fields(_updates(ids, segment="loyal"))
    server.set_faults(fail_rate_5xx=0.0)
    assert server.stats()["5xx"] > 0
    assert report.ok and report.written == 250
    assert hub.stats.retries > 0 and hub.stats.server_errors > 0
    props = _read_contacts(hub, ids, ["heatsync_segment"])
    assert {p["heatsync_segment"] for p in props.values()} == {"loyal"}


def test_create_tasks_and_find_them_again(server) -> None:
    hub = connector_for(server)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 5)
    tasks = _tasks(ids, owner="61230001")
    report = hub.create_tasks(tasks)
    assert report.ok and len(report.created) == 5 and not report.already_existed
    found = hub.find_tasks(dict(zip(tasks["task_key"], tasks["contact_id"], strict=True)))
    assert found == report.created
    task = hub.client.batch_read(
        "tasks",
        [report.created[tasks["task_key"].iloc[0]]],
        ["hs_task_subject", "hs_task_status", "hs_task_priority", "hs_task_type", "hs_timestamp"],
    ).results[0]["properties"]
    assert task["hs_task_status"] == "NOT_STARTED" and task["hs_task_priority"] == "HIGH"
    assert task["hs_task_type"] == "CALL"
    # second run creates nothing
    server.reset_stats()
    again = hub.create_tasks(tasks)
    assert again.created == {} and again.already_existed == report.created
    assert server.stats()["writes"] == 0
    # heatsync's own tasks are not read back as contact activity
    result = hub.extract(None, datetime.now(UTC) + timedelta(seconds=1))
    assert not result.activities["crm_id"].isin(list(report.created.values())).any()


def test_dropped_connections_during_task_create_do_not_duplicate(server) -> None:
    hub = connector_for(server, create_attempts=6, reconcile_wait_s=0.05)
    hub.ensure_schema("en")
    ids = _live_ids(hub, 230)
    tasks = _tasks(ids, prefix="drop")
    server.set_faults(drop_rate=0.35)
    report = hub.create_tasks(tasks)
    server.set_faults(drop_rate=0.0)
    assert hub.stats.server_errors > 0  # connections were dropped and reconciled
    done = {**report.created, **report.already_existed}
    failed = {f["task_key"] for f in report.failed}
    assert set(done) | failed == set(tasks["task_key"])
    # whatever happened, no key exists twice in the portal
    outcome = hub.client.batch_read(
        "tasks",
        [
            t
            for targets in hub.client.associations("contacts", "tasks", ids).values()
            for t in targets
        ],
        ["heatsync_task_key"],
    )
    keys = [r["properties"].get("heatsync_task_key") for r in outcome.results]
    keys = [k for k in keys if k and k.startswith("drop:")]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(done)
    # a clean rerun completes the rest without duplicates
    rerun = hub.create_tasks(tasks)
    assert rerun.ok
    assert set(rerun.already_existed) | set(rerun.created) == set(tasks["task_key"])


def _patches(server) -> int:
    return sum(n for route, n in server.stats()["by_route"].items() if route.startswith("PATCH "))


def test_every_property_has_a_description_in_each_locale() -> None:
    from connectors.hubspot.labels import DESCRIPTIONS
    from connectors.hubspot.writeback import property_specs

    names = [body["name"] for _, body in property_specs("en", "heatsync_vip")]
    for locale in ("en", "ru", "lv"):
        specs = property_specs(locale, "heatsync_vip")
        assert all(body["description"] for _, body in specs), locale
        assert {body["name"]: body["description"] for _, body in specs} == {
            name: DESCRIPTIONS[locale][name] for name in names
        }
    for name in names:
        assert len({DESCRIPTIONS[loc][name] for loc in ("en", "ru", "lv")}) == 3, name
    assert "70" in DESCRIPTIONS["en"]["heatsync_score"]


def test_created_properties_carry_the_locale_description(server) -> None:
    from connectors.hubspot.labels import description

    hub = connector_for(server)
    hub.ensure_schema("ru")
    temp = hub.client.get_property("contacts", "heatsync_temperature")
    assert temp is not None
    assert temp.description == description("ru", "heatsync_temperature")
    assert "горячий" in temp.description
    key = hub.client.get_property("tasks", "heatsync_task_key")
    assert key is not None and key.description == description("ru", "heatsync_task_key")
    # the team's VIP flag existed before: it gets the description too
    vip = hub.client.get_property("contacts", "heatsync_vip")
    assert vip is not None and vip.description == description("ru", "heatsync_vip")


def test_a_locale_change_updates_descriptions_once(server) -> None:
    from connectors.hubspot.labels import description
    from connectors.hubspot.writeback import property_specs

    hub = connector_for(server)
    hub.ensure_schema("en")
    server.reset_stats()
    assert hub.ensure_schema("lv") == []
    stats = server.stats()
    # one PATCH per property, nothing else written
    assert _patches(server) == stats["writes"] == len(property_specs("lv", "heatsync_vip"))
    score = hub.client.get_property("contacts", "heatsync_score")
    assert score is not None and score.description == description("lv", "heatsync_score")
    assert score.label == "Temperatūras punkti (heatsync)"
    # a second call writes nothing
    server.reset_stats()
    assert hub.ensure_schema("lv") == []
    assert server.stats()["writes"] == 0
    # a description edited by hand is put back with one PATCH of that property only
    hub.client.update_property("contacts", "heatsync_reasons", {"description": "mine"})
    server.reset_stats()
    hub.ensure_schema("lv")
    stats = server.stats()
    assert stats["writes"] == _patches(server) == 1
    assert stats["by_route"]["PATCH properties/contacts/{id}"] == 1
    reasons = hub.client.get_property("contacts", "heatsync_reasons")
    assert reasons is not None and reasons.description == description("lv", "heatsync_reasons")
