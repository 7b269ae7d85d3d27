"""What ops see in the Dagster UI is pinned: asset keys, partitions, checks, deps, jobs, schedules.

The snapshot in asset_graph.json is the reviewed shape of the code location. A change to an asset
key, a partition dimension, a check (or whether it blocks), a dependency, the jobs' selection or
a schedule shows up here as a failing test and a diff of that file in review. After a deliberate
change, rewrite it with `HEATSYNC_UPDATE_SNAPSHOT=1 pytest tests/pipelines/test_asset_graph.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.definitions import build_defs

SNAPSHOT = Path(__file__).with_name("asset_graph.json")


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> Any:
    """The dimensions and their kind; a daily dimension's first day is configuration, not shape."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return {d.name: _partitions(d.partitions_def) for d in partitions_def.partitions_defs}
    if isinstance(partitions_def, dg.DailyPartitionsDefinition):
        return {
            "kind": "daily",
            "timezone": partitions_def.timezone,
            "end_offset": partitions_def.end_offset,
        }
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return {"kind": "dynamic", "name": partitions_def.name}
    return {"kind": type(partitions_def).__name__}


def _retry(policy: dg.RetryPolicy | None) -> Any:
    if policy is None:
        return None
    return {"max_retries": policy.max_retries, "delay": policy.delay}


def graph_shape() -> dict[str, Any]:
    defs = build_defs()
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets: dict[str, Any] = {}
    for asset_def in sorted(
        (a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)),
        key=lambda a: a.node_def.name,
    ):
        for key in sorted(asset_def.keys, key=lambda k: k.to_user_string()):
            node = graph.get(key)
            spec = asset_def.specs_by_key[key]
            checks = {
                check.name: {"blocking": check.blocking}
                for check in sorted(asset_def.check_specs, key=lambda c: c.name)
                if check.asset_key == key
            }
            assets[key.to_user_string()] = {
                "step": asset_def.node_def.name,
                "group": node.group_name,
                "kinds": sorted(node.kinds),
                "deps": sorted(p.to_user_string() for p in node.parent_keys),
                "skippable": spec.skippable,
                "partitions": _partitions(node.partitions_def),
                "checks": checks,
                "pool": getattr(asset_def.node_def, "pool", None),
                "retry_policy": _retry(asset_def.node_def.retry_policy),
            }
    jobs = [defs.resolve_job_def(job.name) for job in defs.jobs or []]
    schedules = [defs.resolve_schedule_def(s.name) for s in defs.schedules or []]
    return {
        "assets": assets,
        "jobs": {
            job.name: {
                "steps": sorted(job.graph.node_dict),
                "partitioned": job.partitions_def is not None,
            }
            for job in jobs
        },
        "schedules": {
            schedule.name: {
                "job": schedule.job_name,
                "cron": schedule.cron_schedule,
                "timezone": schedule.execution_timezone,
            }
            for schedule in schedules
        },
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "resources": sorted(defs.resources or {}),
    }


def test_the_asset_graph_matches_its_reviewed_snapshot(monkeypatch: Any) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "placeholder-token")
    shape = graph_shape()
    text = json.dumps(shape, indent=2, sort_keys=True) + "\n"
    if os.environ.get("HEATSYNC_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        "the asset graph changed; if on purpose, rewrite the snapshot "
        "(HEATSYNC_UPDATE_SNAPSHOT=1) and let review see the diff"
    )
