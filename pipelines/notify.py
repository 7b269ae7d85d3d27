"""The sensors that tell someone about a failure, and the resource holding where to (notify).

- `notify_run_failure` (a run failure sensor): a run of heatsync's jobs that failed, with its
  job, portal, day, each failed step and its one-line error, and the run id. A blocking check
  that fails (every_contact_scored, scores_in_range, no_duplicate_tasks) fails its step in
  Dagster 1.13 (DagsterAssetCheckFailedError), so its run fails too: this notice names the check.
- `notify_check_warnings` (a run status sensor on success): a run that succeeded with a failed
  check worth hearing about: hot_converts_best on heatsync/backtest (a WARN check: the run
  succeeds), or a failed blocking check whose run still succeeded.

Both read the run's check evaluations from the instance's event log and send one notice per run
(the run status sensors' own cursor: a run is never reported twice) through pipelines.notices.
Where notices go is the `notify` resource, built from HEATSYNC_NOTIFY_* when the definitions are
built, its secrets as EnvVar so the UI never shows them. Nothing configured: the sensors skip.
They watch every code location of the instance, so runs of `heatsync run` (executed in the CLI's
process, outside any code location) are reported too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.assets import BACKTEST_KEY
from pipelines.notices import (
    NOTIFY_VARIABLES,
    CheckOutcome,
    NotifySettings,
    RunFacts,
    checks_failed,
    notify_settings,
    run_failed,
    send,
)
from pipelines.partitions import PORTAL_TAG

HEATSYNC_JOBS = ("daily_scoring", "weekly_calibration", "hot_lane")
# Non-blocking checks whose failure is worth a notice (the others list what the CRM refused;
# the next run tries again).
WARNING_CHECKS = {(BACKTEST_KEY, "hot_converts_best")}
PARTITION_TAG = "dagster/partition"


class NotifyResource(dg.ConfigurableResource):
    """Where failure notices go (HEATSYNC_NOTIFY_*); the webhook URL and SMTP password are
    EnvVar, resolved when a sensor runs."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_to: list[str] = Field(default_factory=list)
    smtp_starttls: bool = True
    ui_url: str = Field(default="", description="the Dagster UI's address, for a link to the run")

    def settings(self) -> NotifySettings:
        return NotifySettings(
            webhook_url=self.webhook_url,
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_user=self.smtp_user,
            smtp_password=self.smtp_password,
            smtp_from=self.smtp_from,
            smtp_to=tuple(self.smtp_to),
            smtp_starttls=self.smtp_starttls,
            ui_url=self.ui_url,
        )


def notify_resource(env: Mapping[str, str]) -> NotifyResource:
    """The environment's notice settings (validated), secrets by reference."""
    settings = notify_settings(env)
    secrets: dict[str, Any] = {
        name: dg.EnvVar(NOTIFY_VARIABLES[name])
        for name in ("webhook_url", "smtp_password")
        if getattr(settings, name)
    }
    return NotifyResource(
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_user=settings.smtp_user,
        smtp_from=settings.smtp_from,
        smtp_to=list(settings.smtp_to),
        smtp_starttls=settings.smtp_starttls,
        ui_url=settings.ui_url,
        **secrets,
    )


def run_facts(run: dg.DagsterRun, instance: dg.DagsterInstance) -> RunFacts:
    """The job, portal and day of a run: its portal tag and day × portal partition; a run
    without a day (the fast lane) is dated by when it started, in UTC."""
    tags = run.tags
    day, _, portal = (tags.get(PARTITION_TAG) or "").partition("|")
    portal = tags.get(PORTAL_TAG) or portal
    if not day:
        record = instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record is not None else None
        day = datetime.fromtimestamp(started, UTC).date().isoformat() if started else ""
    return RunFacts(job=run.job_name, run_id=run.run_id, portal=portal, day=day)


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[CheckOutcome]:
    """The run's failed blocking checks and failed warnings worth a notice."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    out = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.asset_check_evaluation_data
        if data.passed:
            continue
        if data.blocking or (data.asset_key, data.check_name) in WARNING_CHECKS:
            out.append(
                CheckOutcome(
                    asset=data.asset_key.to_user_string(),
                    check=data.check_name,
                    blocking=bool(data.blocking),
                    description=data.description or "",
                )
            )
    return out


def _error_line(event: dg.DagsterEvent) -> str:
    """A failed step's one-line error: a Failure's description, else its innermost error."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return str(event.message or "")
    lines = error.message.strip().splitlines() or [error.cls_name or ""]
    return re.sub(r"^dagster\.[\w.]*\.(\w+): ", r"\1: ", lines[0])


def _notice_settings(notify: NotifyResource) -> NotifySettings | None:
    settings = notify.settings()
    return settings if settings.configured else None


def notify_sensors(env: Mapping[str, str]) -> list[dg.SensorDefinition]:
    """The two notice sensors; their descriptions say where notices go as `env` configures."""
    where = notify_settings(env).describe()
    nothing = "no HEATSYNC_NOTIFY_* channel is configured"

    @dg.run_failure_sensor(
        name="notify_run_failure",
        monitor_all_code_locations=True,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends a notice of every failed run of "
        f"{', '.join(HEATSYNC_JOBS)} (a failed blocking check fails its run) to {where}.",
    )
    def notify_run_failure(
        context: dg.RunFailureSensorContext, notify: NotifyResource
    ) -> dg.SkipReason | None:
        run = context.dagster_run
        if run.job_name not in HEATSYNC_JOBS:
            return dg.SkipReason(f"{run.job_name} is not a heatsync job")
        settings = _notice_settings(notify)
        if settings is None:
            return dg.SkipReason(nothing)
        steps = [(str(e.step_key), _error_line(e)) for e in context.get_step_failure_events()]
        notice = run_failed(
            run_facts(run, context.instance),
            steps,
            failed_checks(context.instance, run.run_id),
            reason=str(context.failure_event.message or ""),
            ui_url=settings.ui_url,
        )
        sent = send(notice, settings, os.environ, context.log)
        context.log.info(f"run {run.run_id} failed: notice sent by {', '.join(sent) or 'nothing'}")
        return None

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="notify_check_warnings",
        monitor_all_code_locations=True,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends a notice when a run succeeds but the backtest warns "
        f"(hot_converts_best) or a blocking check failed, to {where}.",
    )
    def notify_check_warnings(
        context: dg.RunStatusSensorContext, notify: NotifyResource
    ) -> dg.SkipReason | None:
        run = context.dagster_run
        if run.job_name not in HEATSYNC_JOBS:
            return dg.SkipReason(f"{run.job_name} is not a heatsync job")
        checks = failed_checks(context.instance, run.run_id)
        if not checks:
            return dg.SkipReason(f"run {run.run_id}: no check to report")
        settings = _notice_settings(notify)
        if settings is None:
            return dg.SkipReason(nothing)
        facts = run_facts(run, context.instance)
        sent = send(
            checks_failed(facts, checks, settings.ui_url), settings, os.environ, context.log
        )
        context.log.info(f"run {run.run_id}: check notice sent by {', '.join(sent) or 'nothing'}")
        return None

    return [notify_run_failure, notify_check_warnings]
