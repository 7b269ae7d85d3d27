"""The `heatsync` command line.

`heatsync run` does what the daily schedule does (today's partition of the configured portal,
through Dagster, recorded in the run history); `heatsync run --dry-run` prints what would be
written and created and writes nothing to the CRM. Dagster is imported only by `run`, so future
file-only subcommands work without it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _load_env() -> None:
    """Read `.env` from the working directory (variables already set win)."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)


def _ensure_dagster_home() -> Path:
    from pipelines.store import default_home

    home = Path(os.environ.get("DAGSTER_HOME") or default_home() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _settings_from_env(portal: str) -> Any:
    from connectors.hubspot import HubSpotSettings

    def env(name: str) -> str | None:
        return os.environ.get(name) or None

    if not env("HUBSPOT_ACCESS_TOKEN") and not env("HUBSPOT_REFRESH_TOKEN"):
        raise SystemExit(
            "heatsync: no HubSpot credentials. Set HUBSPOT_ACCESS_TOKEN (private app or service "
            "key) or the OAuth trio HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and "
            "HUBSPOT_REFRESH_TOKEN, in the environment or in .env (see .env.example)."
        )
    return HubSpotSettings(
        access_token=env("HUBSPOT_ACCESS_TOKEN"),
        base_url=env("HUBSPOT_BASE_URL") or "https://api.hubapi.com",
        client_id=env("HUBSPOT_CLIENT_ID"),
        client_secret=env("HUBSPOT_CLIENT_SECRET"),
        refresh_token=env("HUBSPOT_REFRESH_TOKEN"),
        burst_limit=int(os.environ.get("HUBSPOT_BURST_LIMIT", "190")),
        portal=portal,
    )


def _print_summary(portal: str, day: str, meta: dict[str, dict[str, Any]]) -> None:
    extract = meta.get("hubspot/extract", {})
    scores = meta.get("heatsync/scores", {})
    fields = meta.get("hubspot/field_writeback", {})
    tasks = meta.get("hubspot/tasks", {})
    api: dict[str, int] = {}
    for step in (extract, fields, tasks):
        for key, value in step.items():
            if key.startswith("api_") and isinstance(value, int | float):
                api[key[4:]] = api.get(key[4:], 0) + int(value)
    print(f"\nheatsync · portal {portal} · {day}")
    print(
        f"  extract      {extract.get('mode', '?')}: {extract.get('contacts_pulled', 0)} contacts, "
        f"{extract.get('activities_pulled', 0)} activities, "
        f"{extract.get('deals_pulled', 0)} deals; "
        f"{extract.get('rows_quarantined', 0)} rows quarantined"
    )
    reasons = extract.get("quarantine_reasons") or {}
    for reason, count in list(reasons.items())[:5]:
        print(f"               quarantined {count} × {reason}")
    temps = " · ".join(f"{t} {scores.get(f'temperature_{t}', 0)}" for t in ("hot", "warm", "cold"))
    print(f"  temperature  {temps}  (of {scores.get('contacts_scored', 0)} contacts)")
    segments = scores.get("segments") or {}
    print("  segments     " + " · ".join(f"{k} {v}" for k, v in segments.items()))
    if fields.get("skipped"):
        print(f"  fields       skipped ({fields['skipped']})")
    else:
        changed = fields.get("fields_changed") or {}
        detail = ", ".join(f"{k} {v}" for k, v in changed.items() if v)
        print(
            f"  fields       {fields.get('contacts_written', 0)} contacts updated"
            + (f" ({detail})" if detail else "")
            + f"; {fields.get('write_failures', 0)} failed"
        )
    by_rule = tasks.get("tasks_by_rule") or {}
    skipped = tasks.get("skipped") or {}
    print(
        f"  tasks        {tasks.get('tasks_created', 0)} created"
        + (f" ({', '.join(f'{k} {v}' for k, v in by_rule.items())})" if by_rule else "")
        + (
            f"; not created: {', '.join(f'{k} {v}' for k, v in skipped.items() if v)}"
            if skipped
            else ""
        )
    )
    print(
        f"  API          {api.get('requests', 0)} requests "
        f"({api.get('write_requests', 0)} writes), "
        f"{api.get('retries', 0)} retries, {api.get('rate_limited', 0)} × 429, "
        f"{api.get('server_errors', 0)} × 5xx/dropped"
    )


def _metadata_by_asset(result: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        values: dict[str, Any] = {}
        for key, entry in mat.metadata.items():
            values[key] = getattr(entry, "value", entry)
        out["/".join(mat.asset_key.path)] = values
    return out


def run(portal: str, dry_run: bool) -> int:
    _load_env()
    settings = _settings_from_env(portal)
    from connectors.hubspot import HubSpotConnector
    from pipelines.steps import local_today
    from pipelines.store import PortalStore, default_home

    store = PortalStore(default_home(), portal)
    tz = store.portal_meta().get("time_zone")
    if not tz:
        tz = HubSpotConnector(settings).portal_info().time_zone
    now = pd.Timestamp.now(tz="UTC")
    day = local_today(tz, now)
    if dry_run:
        return _dry_run(settings, store, now)

    _ensure_dagster_home()
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.partitions import partition_key, portals

    instance = dg.DagsterInstance.get()
    if portal not in instance.get_dynamic_partitions(portals.name):
        instance.add_dynamic_partitions(portals.name, [portal])
    job = defs.resolve_job_def("daily_scoring")
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition_key(day, portal),
        raise_on_error=False,
        tags={"heatsync/launched_by": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    _print_summary(portal, day, _metadata_by_asset(result))
    print(f"  run          {result.run_id} ({'success' if result.success else 'FAILED'})")
    print(f"  history      DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_key:
                print(f"  ! {event.step_key}: {event.message}", file=sys.stderr)
    return 0 if result.success else 1


def _dry_run(settings: Any, store: Any, now: pd.Timestamp) -> int:
    """Extract (read-only on the CRM), score and plan, then print; nothing is sent or saved."""
    from connectors.base import field_changes
    from connectors.hubspot import HubSpotConnector
    from pipelines import steps
    from scoring import load_config, plan_tasks, score_contacts

    connector = HubSpotConnector(settings)
    locale = os.environ.get("HEATSYNC_LOCALE", "en")
    config = load_config(os.environ.get("HEATSYNC_SCORING_CONFIG") or None)
    with store.lock():
        extracted = steps.extract(connector, store, now)
    tz = store.time_zone()
    day = steps.local_today(tz, now)
    _, previous = store.previous_scores(day)
    contacts = store.table("contacts")
    scores = score_contacts(
        contacts,
        store.table("activities"),
        store.table("deals"),
        as_of=now,
        config=config,
        previous=previous,
        locale=locale,
        tz=tz,
    )
    updates = field_changes(scores, contacts)
    history = store.ledger()
    plan = plan_tasks(
        scores,
        contacts,
        as_of=now,
        config=config,
        history=history[history["status"] == "created"],
        locale=locale,
        tz=tz,
    )
    print(f"heatsync run --dry-run · portal {store.portal} · {day} · nothing is written to the CRM")
    print(f"  extract: {extracted.metadata.get('contacts_pulled', 0)} contacts pulled")
    print(f"  would update {len(updates)} contacts:")
    fields = [c[len("changed_") :] for c in updates.columns if c.startswith("changed_")]
    for _, row in updates.head(20).iterrows():
        diffs = ", ".join(f"{f}={row[f]!s}" for f in fields if row[f"changed_{f}"])
        print(f"    contact {row['contact_id']}: {diffs}")
    if len(updates) > 20:
        print(f"    … and {len(updates) - 20} more")
    print(f"  would create {len(plan.tasks)} tasks:")
    for _, task in plan.tasks.head(20).iterrows():
        print(f"    [{task['rule']}] owner {task['owner_id']} · {task['subject']}")
    if len(plan.tasks) > 20:
        print(f"    … and {len(plan.tasks) - 20} more")
    print(f"  not created: {plan.skipped}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="heatsync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="score today's partition of the configured portal")
    run_p.add_argument("--portal", default="default", help="portal name (default: default)")
    run_p.add_argument(
        "--dry-run", action="store_true", help="print what would change; write nothing"
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.portal, args.dry_run)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
