"""Thin Dagster assets: extract → scores → field write-back and tasks, per day × portal.

The work happens in pipelines.steps (and below it in connectors/ and scoring/); these wrappers
resolve the partition, hold the portal lock, and record metadata and checks. Backfilled past days
extract and score, but only today's partition ever writes to the CRM.
"""

from typing import Any

import dagster as dg
import pandas as pd

from pipelines import steps
from pipelines.partitions import day_by_portal, split_key
from pipelines.resources import HeatsyncSettings, HubSpotResource

RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
SCORES_KEY = dg.AssetKey(["heatsync", "scores"])
FIELDS_KEY = dg.AssetKey(["hubspot", "field_writeback"])
TASKS_KEY = dg.AssetKey(["hubspot", "tasks"])
BACKTEST_KEY = dg.AssetKey(["heatsync", "backtest"])
PAST_DAY = "past partition: backfills compute and record scores but never write to the CRM"


def _metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Dagster metadata: dicts and lists as JSON, everything else as is."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict | list):
            out[key] = dg.MetadataValue.json(value)
        else:
            out[key] = value
    return out


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@dg.asset(
    key=["hubspot", "extract"],
    partitions_def=day_by_portal,
    group_name="hubspot",
    kinds={"hubspot", "parquet"},
    pool="hubspot_api",
    retry_policy=RETRY,
    description="Incremental pull of contacts, deals and activities into the portal's local store.",
)
def hubspot_extract(
    context: dg.AssetExecutionContext, hubspot: HubSpotResource, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    day, portal = split_key(context)
    store = heatsync.store(portal)
    now = _now()
    with store.lock():
        last = store.portal_meta().get("last_extract_at")
        if last and day < steps.local_today(store.time_zone(), now):
            as_of, _ = steps.as_of_for(day, store.time_zone(), now)
            if pd.Timestamp(last) >= as_of:
                return dg.MaterializeResult(
                    metadata={"mode": "skipped", "reason": f"store already covers {day}"}
                )
        result = steps.extract(hubspot.connector(portal), store, now)
    context.log.info("extract: %s", result.metadata)
    return dg.MaterializeResult(metadata=_metadata(result.metadata))


@dg.asset(
    key=SCORES_KEY,
    deps=[hubspot_extract],
    partitions_def=day_by_portal,
    group_name="heatsync",
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("every_contact_scored", asset=SCORES_KEY, blocking=True),
        dg.AssetCheckSpec("scores_in_range", asset=SCORES_KEY, blocking=True),
    ],
    description="Temperature, score, segment, reasons, trend and touch status of every contact.",
)
def contact_scores(
    context: dg.AssetExecutionContext, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    day, portal = split_key(context)
    store = heatsync.store(portal)
    with store.lock():
        as_of, is_today = steps.as_of_for(day, store.time_zone(), _now())
        scores, result = steps.score(store, day, as_of, heatsync.config(), heatsync.locale)
        contacts = store.table("contacts")
    expected = int((contacts["created_at"].isna() | (contacts["created_at"] <= as_of)).sum())
    missing = expected - scores["contact_id"].nunique()
    valid_labels = scores["temperature"].isin(["cold", "warm", "hot"]).all()
    in_range = bool(scores["score"].between(0, 100).all() and valid_labels)
    meta = {**result.metadata, "is_today": is_today, "distribution": _distribution_md(scores)}
    return dg.MaterializeResult(
        metadata=_metadata(meta),
        check_results=[
            dg.AssetCheckResult(
                check_name="every_contact_scored",
                passed=missing == 0,
                metadata={"contacts": expected, "scored": int(scores["contact_id"].nunique())},
            ),
            dg.AssetCheckResult(
                check_name="scores_in_range",
                passed=in_range,
                metadata={
                    "min": float(scores["score"].min()) if len(scores) else 0.0,
                    "max": float(scores["score"].max()) if len(scores) else 0.0,
                },
            ),
        ],
    )


def _distribution_md(scores: pd.DataFrame) -> dg.MetadataValue:
    table = pd.crosstab(scores["segment"], scores["temperature"], margins=True)
    lines = ["| segment | " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "---|" * (len(table.columns) + 1))
    for segment, row in table.iterrows():
        lines.append(f"| {segment} | " + " | ".join(str(int(v)) for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _today_scores(
    context: dg.AssetExecutionContext, heatsync: HeatsyncSettings
) -> tuple[str, Any, pd.DataFrame | None, pd.Timestamp]:
    day, portal = split_key(context)
    store = heatsync.store(portal)
    as_of, is_today = steps.as_of_for(day, store.time_zone(), _now())
    scores = store.scores(day) if is_today else None
    return portal, store, scores, as_of


def _skipped(*check_names: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"skipped": PAST_DAY},
        check_results=[dg.AssetCheckResult(check_name=n, passed=True) for n in check_names],
    )


def _write_result(
    result: steps.StepResult,
    connector: Any,
    completeness_check: str,
    extra_checks: tuple[dg.AssetCheckResult, ...] = (),
) -> dg.MaterializeResult:
    """Rows the CRM refused for good are reported, not raised: the next run retries them (the
    diff still shows them), and the WARN check makes them visible in the UI."""
    meta = {**result.metadata, **{f"api_{k}": v for k, v in connector.stats.as_dict().items()}}
    return dg.MaterializeResult(
        metadata=_metadata(meta),
        check_results=[
            dg.AssetCheckResult(
                check_name=completeness_check,
                passed=not result.problems,
                severity=dg.AssetCheckSeverity.WARN,
                description="; ".join(result.problems) or None,
                metadata={"examples": dg.MetadataValue.json(meta.get("failure_examples", []))},
            ),
            *extra_checks,
        ],
    )


@dg.asset(
    key=FIELDS_KEY,
    deps=[contact_scores],
    partitions_def=day_by_portal,
    group_name="hubspot",
    kinds={"hubspot"},
    pool="hubspot_api",
    retry_policy=RETRY,
    check_specs=[dg.AssetCheckSpec("all_fields_written", asset=FIELDS_KEY)],
    description="heatsync's contact properties in HubSpot, changed only where the value differs.",
)
def hubspot_field_writeback(
    context: dg.AssetExecutionContext, hubspot: HubSpotResource, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    portal, store, scores, _ = _today_scores(context, heatsync)
    if scores is None:
        return _skipped("all_fields_written")
    connector = hubspot.connector(portal)
    with store.lock():
        created = [] if heatsync.dry_run else connector.ensure_schema(heatsync.locale)
        _, result = steps.write_fields(
            connector, store, scores, context.run.run_id, _now(), dry_run=heatsync.dry_run
        )
    result.metadata["properties_created"] = created
    return _write_result(result, connector, "all_fields_written")


@dg.asset(
    key=TASKS_KEY,
    deps=[contact_scores],
    partitions_def=day_by_portal,
    group_name="hubspot",
    kinds={"hubspot"},
    pool="hubspot_api",
    retry_policy=RETRY,
    check_specs=[
        dg.AssetCheckSpec("all_tasks_created", asset=TASKS_KEY),
        dg.AssetCheckSpec("no_duplicate_tasks", asset=TASKS_KEY, blocking=True),
    ],
    description="Follow-up tasks for the owner: call now, touch, birthday, retention, review.",
)
def hubspot_tasks(
    context: dg.AssetExecutionContext, hubspot: HubSpotResource, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    portal, store, scores, as_of = _today_scores(context, heatsync)
    if scores is None:
        return _skipped("all_tasks_created", "no_duplicate_tasks")
    connector = hubspot.connector(portal)
    with store.lock():
        _, result = steps.create_tasks(
            connector,
            store,
            scores,
            as_of,
            heatsync.config(),
            heatsync.locale,
            context.run.run_id,
            dry_run=heatsync.dry_run,
        )
        ledger = store.ledger()
    duplicates = int(ledger["task_key"].duplicated().sum())
    no_duplicates = dg.AssetCheckResult(
        check_name="no_duplicate_tasks",
        passed=duplicates == 0,
        metadata={"ledger_rows": len(ledger), "duplicate_keys": duplicates},
    )
    return _write_result(result, connector, "all_tasks_created", (no_duplicates,))


@dg.asset(
    key=BACKTEST_KEY,
    deps=[contact_scores],
    partitions_def=day_by_portal,
    group_name="heatsync",
    kinds={"pandas"},
    check_specs=[dg.AssetCheckSpec("hot_converts_best", asset=BACKTEST_KEY)],
    description="Did the contacts scored a horizon ago buy? AUC, conversion by band, lift.",
)
def score_backtest(
    context: dg.AssetExecutionContext, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    day, portal = split_key(context)
    store = heatsync.store(portal)
    with store.lock():
        result = steps.backtest(store, day, heatsync.backtest_horizon_days, _now())
    meta = {k: v for k, v in result.metadata.items() if v is not None}
    evaluated = bool(meta.get("evaluated"))
    return dg.MaterializeResult(
        metadata=_metadata(meta),
        check_results=[
            dg.AssetCheckResult(
                check_name="hot_converts_best",
                passed=bool(meta.get("bands_in_order", True)) if evaluated else True,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    "hot converts better than warm, and warm better than cold"
                    if evaluated
                    else f"nothing to check yet: {meta.get('reason')}"
                ),
                metadata={
                    k: meta[k]
                    for k in ("conversion_hot", "conversion_warm", "conversion_cold")
                    if k in meta
                },
            )
        ],
    )


ALL_ASSETS = [
    hubspot_extract,
    contact_scores,
    hubspot_field_writeback,
    hubspot_tasks,
    score_backtest,
]
