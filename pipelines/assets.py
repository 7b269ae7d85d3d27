"""Thin Dagster assets: extract → scores → field write-back and tasks, per day × portal.

The work happens in pipelines.steps (and below it in connectors/ and scoring/); these wrappers
resolve the partition, hold the portal lock, and record metadata and checks. Backfilled past days
extract and score, but only today's partition ever writes to the CRM: on a past day the
write-back and tasks assets do not materialize (an observation and a log line say why) and their
checks do not run. A day after the portal's today is refused before anything is extracted, and
credentials the CRM rejects fail the step without Dagster retrying it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd

from connectors.http import AuthError, UnreachableError
from pipelines import steps
from pipelines.partitions import day_by_portal, split_key
from pipelines.resources import HeatsyncSettings, HubSpotResource

RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
EXTRACT_KEY = dg.AssetKey(["hubspot", "extract"])
SCORES_KEY = dg.AssetKey(["heatsync", "scores"])
FIELDS_KEY = dg.AssetKey(["hubspot", "field_writeback"])
TASKS_KEY = dg.AssetKey(["hubspot", "tasks"])
BACKTEST_KEY = dg.AssetKey(["heatsync", "backtest"])
PAST_DAY = "past partition: backfills compute and record scores but never write to the CRM"
# Decimal places of the backtest's fractions (3: a tenth of a percent) and of the lift.
ROUNDING = {"lift_hot_over_cold": 2}
FRACTION_DIGITS = 3
BACKTEST_TABLES = ("by_band", "by_segment", "calibration")


def _metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Dagster metadata: dicts and lists as JSON, everything else as is."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key.endswith("_md") and isinstance(value, str):
            out[key] = dg.MetadataValue.md(value)
        elif isinstance(value, dict | list):
            out[key] = dg.MetadataValue.json(value)
        else:
            out[key] = value
    return out


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@contextmanager
def _crm_access() -> Iterator[None]:
    """Credentials the CRM rejects (401/403) stay rejected, and a server the client could not
    reach after its own short retries is most likely a wrong base URL: fail now with the
    one-line reason, never retry the step."""
    try:
        yield
    except (AuthError, UnreachableError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


@dg.asset(
    key=EXTRACT_KEY,
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
    connector = hubspot.connector(portal)
    now = _now()
    with _crm_access(), store.lock():
        meta = store.portal_meta()
        tz = meta.get("time_zone") or connector.portal_info().time_zone
        today = steps.local_today(tz, now)
        if day > today:
            raise dg.Failure(
                description=(
                    f"partition {day} is after the portal's today ({today} in {tz}): "
                    "there is nothing to score yet"
                ),
                allow_retries=False,
            )
        last = meta.get("last_extract_at")
        if last and day < today:
            as_of, _ = steps.as_of_for(day, tz, now)
            if pd.Timestamp(last) >= as_of:
                return dg.MaterializeResult(
                    metadata={"mode": "skipped", "reason": f"store already covers {day}"}
                )
        result = steps.extract(connector, store, now)
    context.log.info("extract: %s", result.metadata)
    return dg.MaterializeResult(metadata=_metadata(result.metadata))


@dg.asset(
    key=SCORES_KEY,
    deps=[hubspot_extract],
    partitions_def=day_by_portal,
    group_name="heatsync",
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "every_contact_scored",
            asset=SCORES_KEY,
            blocking=True,
            description="Every contact that existed on the day has a score; blocks the write-back.",
        ),
        dg.AssetCheckSpec(
            "scores_in_range",
            asset=SCORES_KEY,
            blocking=True,
            description="Scores lie in 0–100 and temperatures are cold, warm or hot; blocks the "
            "write-back.",
        ),
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


def _not_written(context: dg.AssetExecutionContext, key: dg.AssetKey) -> None:
    """A past day: no materialization (nothing in the CRM changed), only a note of why."""
    context.log.info(f"{key.to_user_string()}: {PAST_DAY}; nothing written, not materialized")
    context.log_event(
        dg.AssetObservation(
            asset_key=key, partition=context.partition_key, metadata={"skipped": PAST_DAY}
        )
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


# Multi-assets of one skippable asset: on a past day neither the asset nor its checks (optional
# outputs with can_subset) are emitted, so the partition is not shown as materialized.
@dg.multi_asset(
    name="hubspot__field_writeback",
    specs=[
        dg.AssetSpec(
            FIELDS_KEY,
            deps=[SCORES_KEY],
            skippable=True,
            group_name="hubspot",
            kinds={"hubspot"},
            description="heatsync's contact properties in HubSpot, changed only where the value "
            "differs. Materialized for the portal's today only.",
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "all_fields_written",
            asset=FIELDS_KEY,
            description="HubSpot accepted every field update (a warning lists the refused "
            "contacts; the next run tries them again).",
        )
    ],
    can_subset=True,
    partitions_def=day_by_portal,
    pool="hubspot_api",
    retry_policy=RETRY,
)
def hubspot_field_writeback(
    context: dg.AssetExecutionContext, hubspot: HubSpotResource, heatsync: HeatsyncSettings
) -> Iterator[dg.MaterializeResult]:
    portal, store, scores, _ = _today_scores(context, heatsync)
    if scores is None:
        _not_written(context, FIELDS_KEY)
        return
    connector = hubspot.connector(portal)
    with _crm_access(), store.lock():
        created = [] if heatsync.dry_run else connector.ensure_schema(heatsync.locale)
        _, result = steps.write_fields(
            connector, store, scores, context.run.run_id, _now(), dry_run=heatsync.dry_run
        )
    result.metadata["properties_created"] = created
    yield _write_result(result, connector, "all_fields_written")


@dg.multi_asset(
    name="hubspot__tasks",
    specs=[
        dg.AssetSpec(
            TASKS_KEY,
            deps=[SCORES_KEY],
            skippable=True,
            group_name="hubspot",
            kinds={"hubspot"},
            description="Follow-up tasks for the owner: call now, touch, birthday, retention, "
            "review. Materialized for the portal's today only.",
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "all_tasks_created",
            asset=TASKS_KEY,
            description="HubSpot created every planned task (a warning lists the refused ones; "
            "the next run tries them again).",
        ),
        dg.AssetCheckSpec(
            "no_duplicate_tasks",
            asset=TASKS_KEY,
            blocking=True,
            description="No task key appears twice in the task ledger: no contact got the same "
            "task twice.",
        ),
    ],
    can_subset=True,
    partitions_def=day_by_portal,
    pool="hubspot_api",
    retry_policy=RETRY,
)
def hubspot_tasks(
    context: dg.AssetExecutionContext, hubspot: HubSpotResource, heatsync: HeatsyncSettings
) -> Iterator[dg.MaterializeResult]:
    portal, store, scores, as_of = _today_scores(context, heatsync)
    if scores is None:
        _not_written(context, TASKS_KEY)
        return
    connector = hubspot.connector(portal)
    with _crm_access(), store.lock():
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
    yield _write_result(result, connector, "all_tasks_created", (no_duplicates,))


def _backtest_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Typed, rounded values: the flat figures stay plain numbers (the CLI and the UI's plots read
    them), the breakdowns become tables with the conversion in percent."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in BACKTEST_TABLES and isinstance(value, list):
            out[key] = _table(value)
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(round(value, ROUNDING.get(key, FRACTION_DIGITS)))
        elif isinstance(value, str):
            out[key] = dg.MetadataValue.text(value)
        else:
            out[key] = dg.MetadataValue.json(value)
    return out


def _cell(value: Any, digits: int) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return round(number, digits)


def _table(records: list[dict[str, Any]]) -> dg.MetadataValue:
    """Backtest rows (label, n, converted, [mean_score,] rate) as a table; rate in percent."""
    columns: list[dg.TableColumn] = []
    names = list(records[0]) if records else []
    for name in names:
        if name == "rate":
            columns.append(dg.TableColumn("conversion_pct", "float", "converted, % of n"))
        else:
            sample = next((r[name] for r in records if r.get(name) is not None), None)
            kind = (
                "int"
                if isinstance(sample, int) and not isinstance(sample, bool)
                else "float"
                if isinstance(sample, float)
                else "string"
            )
            columns.append(dg.TableColumn(name, kind))
    rows = []
    for record in records:
        data = {}
        for name in names:
            if name == "rate":
                rate = _cell(record.get(name), 6)
                data["conversion_pct"] = None if rate is None else round(rate * 100, 1)
            else:
                data[name] = _cell(record.get(name), 1)
        rows.append(dg.TableRecord(data))
    return dg.MetadataValue.table(rows, schema=dg.TableSchema(columns))


@dg.asset(
    key=BACKTEST_KEY,
    deps=[contact_scores],
    partitions_def=day_by_portal,
    group_name="heatsync",
    kinds={"pandas"},
    check_specs=[
        dg.AssetCheckSpec(
            "hot_converts_best",
            asset=BACKTEST_KEY,
            description="Of the contacts scored a horizon ago, hot ones bought more often than "
            "warm ones, and warm more than cold (a warning: the scoring needs a look).",
        )
    ],
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
    typed = _backtest_metadata(meta)
    return dg.MaterializeResult(
        metadata=typed,
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
                    k: typed[k]
                    for k in ("conversion_hot", "conversion_warm", "conversion_cold")
                    if k in typed
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
