"""Thin Dagster assets: extract → scores → field write-back and tasks, per day × portal.

The work happens in the run layer (pipelines.run, and below it pipelines.steps, connectors/ and
scoring/); each asset resolves its partition, calls the run layer with the moment its run
started (so every step of a run resolves the same as-of), and records metadata and checks.
Backfilled past days extract and score, but only today's partition ever writes to the CRM: on a
past day the write-back and tasks assets do not materialize (an observation and a log line say
why) and their checks do not run. A day after the portal's today is refused before anything is
extracted, and credentials the CRM rejects fail the step without Dagster retrying it.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import dagster as dg
import pandas as pd

from connectors.http import AuthError, UnreachableError
from pipelines import insights
from pipelines.crms import DEFAULT_CRM
from pipelines.partitions import day_by_portal, split_key
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.run import calibration as recalibration
from pipelines.run import day as run
from pipelines.run.asof import FutureDayError
from pipelines.steps import StepResult
from pipelines.store import PortalStore

RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
EXTRACT_KEY = dg.AssetKey(["crm", "extract"])
SCORES_KEY = dg.AssetKey(["heatsync", "scores"])
FIELDS_KEY = dg.AssetKey(["crm", "field_writeback"])
TASKS_KEY = dg.AssetKey(["crm", "tasks"])
BACKTEST_KEY = dg.AssetKey(["heatsync", "backtest"])
CALIBRATION_KEY = dg.AssetKey(["heatsync", "calibration"])
PAST_DAY = "past partition: backfills compute and record scores but never write to the CRM"
# Decimal places of the backtest's fractions (3: a tenth of a percent) and of the lift.
ROUNDING = {"lift_hot_over_cold": 2}
FRACTION_DIGITS = 3
BACKTEST_TABLES = ("by_band", "by_segment", "calibration", "by_signal")
# The Dagster pool of the steps that call a CRM's API, across all runs and portals (the limit is
# in dagster.yaml); each portal's own limiter paces its requests within its CRM's budget.
CRM_POOL = "crm_api"


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


def _run_started(context: dg.AssetExecutionContext) -> pd.Timestamp:
    """The moment this run started: every step of the run resolves its as-of from it."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is not None and record.start_time is not None:
        return pd.Timestamp(record.start_time, unit="s", tz="UTC").floor("us")
    if record is not None and record.create_timestamp is not None:
        return pd.Timestamp(record.create_timestamp).tz_convert("UTC")
    return pd.Timestamp.now(tz="UTC")


@contextmanager
def _no_retry() -> Iterator[None]:
    """Credentials the CRM rejects (401/403) stay rejected, a server the client could not reach
    after its own short retries is most likely a wrong base URL, and a day after the portal's
    today stays in the future: fail now with the one-line reason, never retry the step."""
    try:
        yield
    except (AuthError, UnreachableError, FutureDayError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def crm_extract(
    context: dg.AssetExecutionContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    day, portal = split_key(context)
    with _no_retry():
        _, result = run.extract_day(
            crm.connector(portal, heatsync.values(portal)),
            heatsync.store(portal),
            day,
            _run_started(context),
        )
    if result.metadata.get("mode") != "skipped":
        context.log.info("extract: %s", result.metadata)
    return dg.MaterializeResult(metadata=_metadata(result.metadata))


def contact_scores(
    context: dg.AssetExecutionContext, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    day, portal = split_key(context)
    settings = heatsync.values(portal)
    store = settings.store(portal)
    choice = recalibration.scoring_choice(store, settings.scoring_config)
    with _no_retry():
        scored = run.score_day(store, day, _run_started(context), choice.config, settings.locale)
    scores = scored.scores
    meta = {
        **scored.result.metadata,
        "scoring_config": choice.describe(),
        "is_today": scored.as_of.is_today,
        "distribution": _distribution_md(scores),
        **_manager_metadata(store, day, scores),
    }
    return dg.MaterializeResult(
        metadata=_metadata(meta),
        check_results=[
            dg.AssetCheckResult(
                check_name="every_contact_scored",
                passed=scored.contacts_expected == scored.contacts_scored,
                metadata={"contacts": scored.contacts_expected, "scored": scored.contacts_scored},
            ),
            dg.AssetCheckResult(
                check_name="scores_in_range",
                passed=scored.in_range,
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


def _manager_metadata(store: PortalStore, day: str, scores: pd.DataFrame) -> dict[str, Any]:
    """Transitions since the previous scored day and the hot contacts nobody attends to (past
    days too: both come from the scores)."""
    previous_day, previous = store.previous_scores(day)
    moved = insights.moves(previous, scores)
    contacts = store.table("contacts")
    unattended = insights.hot_unattended(scores, day, store.time_zone(), contacts)
    return {
        "transitions": _frame_table(insights.transitions(previous, scores).reset_index()),
        "transitions_since": previous_day or "none",
        "warmed_up": int((moved["direction"] > 0).sum()),
        "cooled_down": int((moved["direction"] < 0).sum()),
        "hot_unattended": len(unattended),
        "hot_unattended_md": dg.MetadataValue.md(insights.markdown_table(unattended)),
    }


def _column_kind(column: pd.Series) -> str:
    if pd.api.types.is_integer_dtype(column):
        return "int"
    return "float" if pd.api.types.is_float_dtype(column) else "string"


def _typed_cell(kind: str, value: Any) -> Any:
    if pd.isna(value):
        return None
    return int(value) if kind == "int" else float(value) if kind == "float" else str(value)


def _frame_table(frame: pd.DataFrame) -> dg.MetadataValue:
    """A small frame as a typed Dagster table (int, float or string columns)."""
    kinds = {str(c): _column_kind(frame[c]) for c in frame.columns}
    rows = [
        dg.TableRecord(
            {name: _typed_cell(kind, v) for (name, kind), v in zip(kinds.items(), row, strict=True)}
        )
        for row in frame.itertuples(index=False)
    ]
    schema = dg.TableSchema([dg.TableColumn(name, kind) for name, kind in kinds.items()])
    return dg.MetadataValue.table(rows, schema=schema)


def _not_written(context: dg.AssetExecutionContext, key: dg.AssetKey) -> None:
    """A past day: no materialization (nothing in the CRM changed), only a note of why."""
    context.log.info(f"{key.to_user_string()}: {PAST_DAY}; nothing written, not materialized")
    context.log_event(
        dg.AssetObservation(
            asset_key=key, partition=context.partition_key, metadata={"skipped": PAST_DAY}
        )
    )


def _write_result(
    result: StepResult,
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


def crm_field_writeback(
    context: dg.AssetExecutionContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> Iterator[dg.MaterializeResult]:
    day, portal = split_key(context)
    store = heatsync.store(portal)
    with _no_retry():
        today = run.todays_scores(store, day, _run_started(context))
    if today is None:
        _not_written(context, FIELDS_KEY)
        return
    as_of, scores = today
    settings = heatsync.values(portal)
    connector = crm.connector(portal, settings)
    with _no_retry():
        _, result = run.write_back_day(
            connector,
            store,
            as_of,
            scores,
            context.run.run_id,
            settings.locale,
            settings.dry_run,
            policy=settings.field_policy,
            human_edit_days=settings.human_edit_days,
        )
    yield _write_result(result, connector, "all_fields_written")


def crm_tasks(
    context: dg.AssetExecutionContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> Iterator[dg.MaterializeResult]:
    day, portal = split_key(context)
    store = heatsync.store(portal)
    with _no_retry():
        today = run.todays_scores(store, day, _run_started(context))
    if today is None:
        _not_written(context, TASKS_KEY)
        return
    as_of, scores = today
    settings = heatsync.values(portal)
    connector = crm.connector(portal, settings)
    tasks_config = settings.capped(
        recalibration.scoring_choice(store, settings.scoring_config).config
    )
    with _no_retry():
        done = run.tasks_day(
            connector,
            store,
            as_of,
            scores,
            tasks_config,
            settings.locale,
            context.run.run_id,
            dry_run=settings.dry_run,
        )
    load = insights.owner_load(
        insights.tasks_created_on(store.ledger(), scores, as_of.day, as_of.tz),
        insights.replanned_left_out(
            scores, store.table("contacts"), store.ledger(), tasks_config, as_of.tz
        ),
    )
    done.result.metadata["owner_load"] = _frame_table(load)
    no_duplicates = dg.AssetCheckResult(
        check_name="no_duplicate_tasks",
        passed=done.duplicate_keys == 0,
        metadata={"ledger_rows": done.ledger_rows, "duplicate_keys": done.duplicate_keys},
    )
    yield _write_result(done.result, connector, "all_tasks_created", (no_duplicates,))


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


def score_backtest(
    context: dg.AssetExecutionContext, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    day, portal = split_key(context)
    with _no_retry():
        result = run.backtest_day(
            heatsync.store(portal), day, _run_started(context), heatsync.backtest_horizon_days
        )
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


def _typed(meta: dict[str, Any]) -> dict[str, Any]:
    """Typed metadata: booleans, whole and decimal numbers, text, Markdown (`*_md`), JSON."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key.endswith("_md") and isinstance(value, str):
            out[key] = dg.MetadataValue.md(value)
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(round(value, 4))
        elif isinstance(value, str):
            out[key] = dg.MetadataValue.text(value)
        else:
            out[key] = dg.MetadataValue.json(value)
    return out


def portal_calibration(
    context: dg.AssetExecutionContext, heatsync: HeatsyncSettings
) -> dg.MaterializeResult:
    """Recalibrate the portal from its own store; adopt the learned config only when it wins."""
    day, portal = split_key(context)
    with _no_retry():
        done = recalibration.calibrate_day(
            heatsync.store(portal),
            day,
            _run_started(context),
            heatsync.backtest_horizon_days,
            pinned=heatsync.values(portal).scoring_config,
        )
    context.log.info("calibration: %s", done.why)
    return dg.MaterializeResult(metadata=_typed(done.metadata))


# What the UI shows beside each asset and check; shared by every build of the assets.
SCORES_CHECKS = [
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
]
FIELDS_SPEC = dg.AssetSpec(
    FIELDS_KEY,
    deps=[SCORES_KEY],
    skippable=True,
    group_name="crm",
    description="heatsync's contact fields in the CRM, changed only where the value "
    "differs. Materialized for the portal's today only.",
)
FIELDS_CHECKS = [
    dg.AssetCheckSpec(
        "all_fields_written",
        asset=FIELDS_KEY,
        description="The CRM accepted every field update (a warning lists the refused "
        "contacts; the next run tries them again).",
    )
]
TASKS_SPEC = dg.AssetSpec(
    TASKS_KEY,
    deps=[SCORES_KEY],
    skippable=True,
    group_name="crm",
    description="Follow-up tasks for the owner: call now, touch, birthday, retention, "
    "review. Materialized for the portal's today only.",
)
TASKS_CHECKS = [
    dg.AssetCheckSpec(
        "all_tasks_created",
        asset=TASKS_KEY,
        description="The CRM created every planned task (a warning lists the refused ones; "
        "the next run tries them again).",
    ),
    dg.AssetCheckSpec(
        "no_duplicate_tasks",
        asset=TASKS_KEY,
        blocking=True,
        description="No task key appears twice in the task ledger: no contact got the same "
        "task twice.",
    ),
]
BACKTEST_CHECKS = [
    dg.AssetCheckSpec(
        "hot_converts_best",
        asset=BACKTEST_KEY,
        description="Of the contacts scored a horizon ago, hot ones bought more often than "
        "warm ones, and warm more than cold (a warning: the scoring needs a look).",
    )
]


class HeatsyncAssets(NamedTuple):
    """The assets of one code location, in graph order (a sequence: `dg.materialize(assets)`)."""

    extract: dg.AssetsDefinition
    scores: dg.AssetsDefinition
    field_writeback: dg.AssetsDefinition
    tasks: dg.AssetsDefinition
    backtest: dg.AssetsDefinition


def build_assets(
    partitions_def: dg.PartitionsDefinition | None = None,
    crm: str | Iterable[str] = DEFAULT_CRM,
) -> HeatsyncAssets:
    """The assets over `partitions_def`: by default day × portal from the first day configured
    now (HEATSYNC_FIRST_DAY), read when the code location is built, not when this is imported.
    `crm` (names in pipelines.crms.CRMS: the CRMs of the deployment's portals) gives the steps
    that call the CRM their kinds; the keys and the pool are the same for every CRM, and the
    portal partition decides which connector a run uses.

    The write-back and the tasks are multi-assets of one skippable asset: on a past day neither
    the asset nor its checks (optional outputs with can_subset) are emitted, so the partition is
    not shown as materialized.
    """
    partitions = partitions_def or day_by_portal()
    pool = CRM_POOL
    crms = {crm} if isinstance(crm, str) else set(crm)
    extract = dg.asset(
        key=EXTRACT_KEY,
        partitions_def=partitions,
        group_name="crm",
        kinds={*crms, "parquet"},
        pool=pool,
        retry_policy=RETRY,
        description="Incremental pull of contacts, deals and activities into the portal's "
        "local store.",
    )(crm_extract)
    scores = dg.asset(
        key=SCORES_KEY,
        deps=[EXTRACT_KEY],
        partitions_def=partitions,
        group_name="heatsync",
        kinds={"pandas", "parquet"},
        check_specs=SCORES_CHECKS,
        description="Temperature, score, segment, reasons, trend and touch status of every "
        "contact.",
    )(contact_scores)
    field_writeback = dg.multi_asset(
        name="crm__field_writeback",
        specs=[FIELDS_SPEC.replace_attributes(kinds=crms)],
        check_specs=FIELDS_CHECKS,
        can_subset=True,
        partitions_def=partitions,
        pool=pool,
        retry_policy=RETRY,
    )(crm_field_writeback)
    tasks = dg.multi_asset(
        name="crm__tasks",
        specs=[TASKS_SPEC.replace_attributes(kinds=crms)],
        check_specs=TASKS_CHECKS,
        can_subset=True,
        partitions_def=partitions,
        pool=pool,
        retry_policy=RETRY,
    )(crm_tasks)
    backtest = dg.asset(
        key=BACKTEST_KEY,
        deps=[SCORES_KEY],
        partitions_def=partitions,
        group_name="heatsync",
        kinds={"pandas"},
        check_specs=BACKTEST_CHECKS,
        description="Did the contacts scored a horizon ago buy? AUC, conversion by band, lift.",
    )(score_backtest)
    return HeatsyncAssets(extract, scores, field_writeback, tasks, backtest)


def build_calibration(partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetsDefinition:
    """The weekly recalibration asset over `partitions_def` (by default day × portal, as
    `build_assets`). Its own group, so the daily job (groups crm and heatsync) leaves it
    out; the weekly_calibration job and schedule materialize it."""
    return dg.asset(
        key=CALIBRATION_KEY,
        deps=[EXTRACT_KEY],
        partitions_def=partitions_def or day_by_portal(),
        group_name="calibration",
        kinds={"scikitlearn", "yaml"},
        description="The portal's scoring config relearned from its own store (weekly); "
        "adopted only when it beats the current one on a later time split of the same "
        "history. Not part of the daily job.",
    )(portal_calibration)
