"""The hot-lead fast lane in Dagster: the `hot_signals` sensor and the `hot_lane` job.

Every HOT_SIGNALS_INTERVAL_S the sensor asks each configured portal's CRM which contacts showed
hot evidence since the portal's cursor (`CrmConnector.signals_since`: one or two requests per
portal, paced by the portal's own limiter like every other request) and launches one `hot_lane`
run per portal for them; the run (pipelines.run.fast_lane) scores the portal as of its start and
writes those contacts' fields and tasks with the daily run's store and task keys. The cursor is
the newest signal seen per portal, kept in the sensor's cursor; a portal whose CRM cannot be
asked is skipped for that tick and asked again on the next, the others go on.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from connectors.http import ConnectorError
from pipelines.partitions import PORTAL_TAG, PORTALS
from pipelines.resources import CrmResource, HeatsyncSettings
from pipelines.run import fast_lane
from pipelines.run.calibration import scoring_choice

HOT_SIGNALS_INTERVAL_S = 15
# Search indexes trail writes by seconds: each tick looks this far behind the cursor and leaves
# out the contacts whose signal it has already seen.
LOOK_BACK = timedelta(minutes=2)


class HotContacts(dg.Config):
    """Which portal and contacts a fast-lane run scores and writes."""

    portal: str
    contact_ids: list[str]


@dg.op(
    tags={"kind": "crm"},
    description="Score the portal as of now and write the fields and tasks of the contacts with "
    "fresh hot signals (the daily run's store and task keys: nothing is sent twice).",
)
def hot_contacts(
    context: dg.OpExecutionContext,
    config: HotContacts,
    crm: CrmResource,
    heatsync: HeatsyncSettings,
) -> dg.Output[None]:
    settings = heatsync.values(config.portal)
    connector = crm.connector(config.portal, settings)
    store = settings.store(config.portal)
    scoring = settings.capped(scoring_choice(store, settings.scoring_config).config)
    try:
        done = fast_lane.hot_contacts(
            connector,
            store,
            config.contact_ids,
            pd.Timestamp.now(tz="UTC"),
            scoring,
            settings.locale,
            context.run.run_id,
            policy=settings.field_policy,
            human_edit_days=settings.human_edit_days,
        )
    except ConnectorError as exc:
        raise dg.Failure(description=str(exc)) from None
    for problem in done.problems:
        context.log.warning(problem)
    context.log.info("fast lane: %s", done.metadata)
    return dg.Output(None, metadata={k: _plain(v) for k, v in done.metadata.items()})


def _plain(value: object) -> dg.MetadataValue:
    if isinstance(value, dict):
        return dg.MetadataValue.json(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    return dg.MetadataValue.text(str(value))


@dg.job(
    description="The hot-lead fast lane: one portal's contacts with fresh hot signals, scored and "
    "written as of now (launched by the hot_signals sensor).",
    tags={"heatsync/lane": "fast"},
)
def hot_lane() -> None:
    hot_contacts()


def _cursor(context: dg.SensorEvaluationContext) -> dict[str, dict[str, Any]]:
    """Per portal: the newest signal's time (`at`) and the contacts signalled at that very
    instant (`ids`: CRM timestamps may be whole seconds, and a later signal can share one)."""
    try:
        value = json.loads(context.cursor or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {p: v for p, v in value.items() if isinstance(v, dict) and isinstance(v.get("at"), str)}


@dg.sensor(
    job=hot_lane,
    minimum_interval_seconds=HOT_SIGNALS_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Asks each portal's CRM for contacts with fresh hot signals (form submissions, "
    "inbound calls and messages, meetings booked) and launches the fast lane for them.",
)
def hot_signals(
    context: dg.SensorEvaluationContext, crm: CrmResource, heatsync: HeatsyncSettings
) -> dg.SensorResult:
    cursor = _cursor(context)
    now = datetime.now(UTC)
    portals = crm.names() or list(context.instance.get_dynamic_partitions(PORTALS))
    requests = []
    for portal in portals:
        seen = cursor.get(portal)
        if seen is None:  # first look at this portal: what comes from the current second on
            start = pd.Timestamp(now).floor("s") - pd.Timedelta(seconds=1)
            cursor[portal] = {"at": start.isoformat(), "ids": []}
            continue
        since = pd.Timestamp(seen["at"])
        try:
            connector = crm.connector(portal, heatsync.values(portal))
            signals = connector.signals_since((since - LOOK_BACK).to_pydatetime())
        except (ConnectorError, dg.Failure) as exc:
            context.log.warning(f"hot signals of portal {portal}: {exc}")
            continue
        known = signals.index.astype(str).isin([str(i) for i in seen.get("ids", [])])
        fresh = signals[(signals > since) | ((signals == since) & ~known)]
        if fresh.empty:
            continue
        newest = fresh.max()
        at_newest = [str(i) for i in signals[signals == newest].index]
        cursor[portal] = {"at": newest.isoformat(), "ids": sorted(at_newest)}
        ids = sorted(str(i) for i in fresh.index)
        requests.append(
            dg.RunRequest(
                run_key=f"hot:{portal}:{newest.isoformat()}",
                run_config=dg.RunConfig(
                    ops={"hot_contacts": HotContacts(portal=portal, contact_ids=ids)}
                ),
                tags={PORTAL_TAG: portal, "heatsync/contacts": str(len(ids))},
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))
