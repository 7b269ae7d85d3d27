"""The `heatsync` command line.

`heatsync run` does what the daily schedule does (today's partition of the configured portal,
through Dagster, recorded in the run history); `heatsync run --dry-run` prints what would be
written and created and writes nothing to the CRM; `heatsync run --day DATE` backfills a past day
(scores it as of then, writes nothing). Dagster is imported only by `run`.

The file commands work on the canonical tables (shared/contract.md) given as CSV or Parquet, with
no CRM and no Dagster (pipelines/files.py reads and validates them):
`heatsync score` writes one scores row per contact as of a date; `heatsync backtest` scores as of
a date and checks who bought within a horizon after it (conversion by band and segment, ROC AUC,
lift, calibration, optional plot); `heatsync calibrate` learns the weights from that history and
writes a config for `score --config`. A DATE is the instant 00:00 UTC that starts the day: events
at or before it are known, later ones are not. Bad input exits with status 2 and a message naming
the file, row and column.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from connectors.hubspot import HubSpotSettings
    from pipelines.config import HeatsyncConfig
    from pipelines.store import PortalStore

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
        shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _settings_from_env(portal: str) -> tuple[HubSpotSettings, HeatsyncConfig]:
    """The portal's connection settings and heatsync's own, from the environment (after .env),
    through the same functions the Dagster definitions use."""
    from pipelines.config import MissingCredentials, heatsync_config, hubspot_settings

    try:
        hubspot = hubspot_settings(portal, os.environ)
    except MissingCredentials:
        raise SystemExit(
            "heatsync: no HubSpot credentials. Set HUBSPOT_ACCESS_TOKEN (private app or service "
            "key) or the OAuth trio HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and "
            "HUBSPOT_REFRESH_TOKEN, in the environment or in .env (see .env.example)."
        ) from None
    return hubspot, heatsync_config(os.environ)


PAST_DAY = "past day: a backfill scores and records, it writes nothing to the CRM"


def _print_summary(
    portal: str, day: str, meta: dict[str, dict[str, Any]], past: bool = False
) -> None:
    extract = meta.get("hubspot/extract", {})
    scores = meta.get("heatsync/scores", {})
    fields = meta.get("hubspot/field_writeback", {})
    tasks = meta.get("hubspot/tasks", {})
    api: dict[str, int] = {}
    for step in (extract, fields, tasks):
        for key, value in step.items():
            if key.startswith("api_") and isinstance(value, int | float):
                api[key[4:]] = api.get(key[4:], 0) + int(value)
    account = f" ({extract['account']})" if extract.get("account") else ""
    print(f"\nheatsync · portal {portal}{account} · {day}")
    if extract.get("binding"):
        print(f"  account      {extract['binding']}")
    if extract.get("mode") == "skipped":
        print(f"  extract      skipped ({extract.get('reason')})")
    else:
        print(
            f"  extract      {extract.get('mode', '?')}: {extract.get('contacts_pulled', 0)} "
            f"contacts, {extract.get('activities_pulled', 0)} activities, "
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
    if past:
        print(f"  fields       skipped ({PAST_DAY})")
    elif fields.get("skipped"):
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
    if past:
        print("  tasks        skipped (past day)")
    elif isinstance(skipped, str):
        print(f"  tasks        skipped ({skipped.split(':')[0]})")
    else:
        print(
            f"  tasks        {tasks.get('tasks_created', 0)} created"
            + (f" ({', '.join(f'{k} {v}' for k, v in by_rule.items())})" if by_rule else "")
            + (
                f"; not created: {', '.join(f'{k} {v}' for k, v in skipped.items() if v)}"
                if skipped
                else ""
            )
        )
    _print_left_out(tasks)
    backtest = meta.get("heatsync/backtest", {})
    if backtest.get("evaluated"):
        rates = " · ".join(
            f"{band} {_percent(backtest.get(f'conversion_{band}'))}"
            for band in ("hot", "warm", "cold")
        )
        auc = backtest.get("auc")
        print(
            f"  backtest     of {backtest.get('contacts', 0)} scored {backtest.get('scored_day')}, "
            f"{backtest.get('converted', 0)} bought within {backtest.get('horizon_days')} days; "
            f"converted {rates}; AUC {'n/a' if auc is None else f'{auc:.3f}'}"
            + ("" if backtest.get("bands_in_order") else "  ! bands out of order")
        )
    elif backtest:
        print(
            f"  backtest     nothing to check yet ({backtest.get('reason', 'no earlier scores')})"
        )
    print(
        f"  API          {api.get('requests', 0)} requests "
        f"({api.get('write_requests', 0)} writes), "
        f"{api.get('retries', 0)} retries, {api.get('rate_limited', 0)} × 429, "
        f"{api.get('server_errors', 0)} × 5xx/dropped"
    )


LEFT_OUT_LINES = 10


def _print_left_out(tasks: dict[str, Any], indent: str = "  ") -> None:
    """Who the per-owner daily cap left without a task, most urgent first."""
    count = int(tasks.get("left_out") or 0)
    if not count:
        return
    by_rule = tasks.get("left_out_by_rule") or {}
    rules = ", ".join(f"{k} {v}" for k, v in by_rule.items())
    print(f"{indent}left out     {count} over the daily cap per owner ({rules}):")
    rows = tasks.get("left_out_list") or []
    for row in rows[:LEFT_OUT_LINES]:
        name = f" {row['name']}" if row.get("name") else ""
        print(
            f"{indent}               [{row['rule']}] contact {row['contact_id']}{name} · "
            f"owner {row['owner_id'] or '–'} · score {row['score']}"
        )
    if count > min(len(rows), LEFT_OUT_LINES):
        print(f"{indent}               … and {count - min(len(rows), LEFT_OUT_LINES)} more")


def _percent(rate: Any) -> str:
    return "n/a" if rate is None else f"{float(rate):.1%}"


def _metadata_by_asset(result: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        values: dict[str, Any] = {}
        for key, entry in mat.metadata.items():
            values[key] = getattr(entry, "value", entry)
        out["/".join(mat.asset_key.path)] = values
    return out


def run(portal: str, dry_run: bool, day: str | None = None) -> int:
    """Today's partition of `portal` through Dagster, or a past `day` (scores only, no writes)."""
    _load_env()
    settings, config = _settings_from_env(portal)
    from connectors.hubspot import HubSpotConnector
    from pipelines.run.asof import local_today
    from pipelines.run.day import portal_time_zone

    store = config.store(portal)
    tz = portal_time_zone(store, HubSpotConnector(settings))
    now = pd.Timestamp.now(tz="UTC")
    today = local_today(tz, now)
    if day is not None:
        if dry_run and day != today:
            print(
                "heatsync run: a past day writes nothing; --dry-run is for today", file=sys.stderr
            )
            return 2
        from pipelines.partitions import FIRST_DAY, FIRST_DAY_VARIABLE

        if not FIRST_DAY <= day <= today:
            print(
                f"heatsync run: --day must be from {FIRST_DAY} (the first day partition; "
                f"{FIRST_DAY_VARIABLE} moves it) to {today}",
                file=sys.stderr,
            )
            return 2
    day = day or today
    if dry_run:
        return _dry_run(settings, config, store, day, now)

    _ensure_dagster_home()
    import dagster as dg

    from pipelines.definitions import build_defs
    from pipelines.partitions import PORTALS, partition_key

    instance = dg.DagsterInstance.get()
    if portal not in instance.get_dynamic_partitions(PORTALS):
        instance.add_dynamic_partitions(PORTALS, [portal])
    # Built now, not at import: the environment (portal, credentials, home) is read at call time.
    job = build_defs().resolve_job_def("daily_scoring")
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition_key(day, portal),
        raise_on_error=False,
        tags={"heatsync/launched_by": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
    failures = _step_failures(result)
    meta = _metadata_by_asset(result)
    if "hubspot/extract" not in meta and failures:
        # nothing was read, so there is nothing to summarise: say what failed and stop
        for _step, message in failures:
            print(f"heatsync run: {message}", file=sys.stderr)
        print(f"  (run {result.run_id} FAILED; history in DAGSTER_HOME)", file=sys.stderr)
        return 1
    _print_summary(store.portal, day, meta, past=day < today)
    print(f"  run          {result.run_id} ({'success' if result.success else 'FAILED'})")
    print(f"  history      DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    for step, message in failures:
        print(f"  ! {step}: {message}", file=sys.stderr)
    return 0 if result.success else 1


def _step_failures(result: Any) -> list[tuple[str, str]]:
    """(step, one-line reason) of each failed step: a Failure's description, else the last
    line of the error message."""
    out: list[tuple[str, str]] = []
    for event in result.all_events:
        if not (event.is_step_failure and event.step_key):
            continue
        data = event.step_failure_data
        reason = ""
        if data.user_failure_data is not None and data.user_failure_data.description:
            reason = data.user_failure_data.description
        elif data.error is not None:
            reason = data.error.message.strip().splitlines()[-1]
        out.append((event.step_key, reason or str(event.message)))
    return out


DRY_RUN_ID = "dry-run"


def _dry_run(
    settings: HubSpotSettings,
    config: HeatsyncConfig,
    store: PortalStore,
    day: str,
    now: pd.Timestamp,
) -> int:
    """The real run's steps with dry_run on a throwaway snapshot of the store: read the CRM,
    score and plan, ask the CRM which planned tasks exist, and print every change as before →
    after. Nothing is written to the CRM and nothing is kept locally."""
    import tempfile

    from connectors.hubspot import HubSpotConnector
    from pipelines.run import day as run_day

    connector = HubSpotConnector(settings)
    locale, scoring = config.locale, config.scoring()
    with tempfile.TemporaryDirectory(prefix="heatsync-dry-run-") as scratch:
        with store.lock():
            copy = store.snapshot(Path(scratch))
        with copy.lock():
            _, extracted = run_day.extract_day(connector, copy, day, now)
            scored = run_day.score_day(copy, day, now, scoring, locale, save=False)
            updates, _ = run_day.write_back_day(
                connector, copy, scored.as_of, scored.scores, DRY_RUN_ID, locale, dry_run=True
            )
            contacts = copy.table("contacts")
            planned = run_day.tasks_day(
                connector,
                copy,
                scored.as_of,
                scored.scores,
                scoring,
                locale,
                DRY_RUN_ID,
                dry_run=True,
            )
            tasks = planned.tasks
            existing = connector.find_tasks(
                dict(zip(tasks["task_key"], tasks["contact_id"], strict=True))
            )
    meta = extracted.metadata
    print(f"heatsync run --dry-run · portal {store.portal} · {day} · nothing is written")
    if meta.get("binding"):
        print(f"  account: {meta['binding']}")
    print(
        f"  extract: {meta.get('mode')}, {meta.get('contacts_pulled', 0)} contacts pulled "
        "(read only: nothing is saved)"
    )
    _print_changes(updates, contacts)
    new_tasks = tasks[~tasks["task_key"].isin(list(existing))]
    print(f"  would create {len(new_tasks)} tasks:")
    for task in new_tasks.head(20).itertuples(index=False):
        print(f"    [{task.rule}] owner {task.owner_id} · {task.subject}")
    if len(new_tasks) > 20:
        print(f"    … and {len(new_tasks) - 20} more")
    if existing:
        print(f"  {len(existing)} planned tasks already exist in the CRM: not created again")
    not_created = planned.result.metadata.get("skipped") or {}
    skipped = ", ".join(f"{k} {v}" for k, v in not_created.items() if v)
    print(f"  not created: {skipped or 'none'}")
    _print_left_out(planned.result.metadata)
    return 0


def _print_changes(updates: pd.DataFrame, contacts: pd.DataFrame, shown: int = 20) -> None:
    """Field changes as before → after; an emptied value is called so."""
    print(f"  would update {len(updates)} contacts:")
    fields = [c[len("changed_") :] for c in updates.columns if c.startswith("changed_")]
    current = contacts.drop_duplicates("contact_id").set_index("contact_id")
    for row in updates.head(shown).to_dict("records"):
        diffs = []
        for name in fields:
            if not row[f"changed_{name}"]:
                continue
            column = f"current_{name}"
            before = current[column].get(row["contact_id"]) if column in current else None
            after = row[name]
            after_text = "(emptied)" if _blank(after) else str(after)
            diffs.append(f"{name} {'–' if _blank(before) else before} → {after_text}")
        print(f"    contact {row['contact_id']}: {'; '.join(diffs)}")
    if len(updates) > shown:
        print(f"    … and {len(updates) - shown} more")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value) == ""


def check(portal: str) -> int:
    """`heatsync check`: what the configured credentials reach, and whether a run would work."""
    _load_env()
    settings, config = _settings_from_env(portal)
    from connectors.hubspot import HubSpotConnector
    from pipelines.store import account_key

    report = HubSpotConnector(settings).check(config.locale)
    print(f"heatsync check · portal {portal} · {settings.base_url}")
    for item in report.items:
        mark = "ok  " if item.ok and not item.warning else ("warn" if item.ok else "FAIL")
        print(f"  {mark} {item.name}: {item.detail}")
    store = config.store(portal)
    bound = store.account
    if report.account_id is not None:
        reached = account_key(report.crm, report.account_id)
        if bound is None:
            print(f"  ok   local store: the first run binds {portal!r} to {reached}")
        elif bound == reached:
            print(f"  ok   local store: {portal!r} is {reached} ({store.root})")
        else:
            print(
                f"  warn local store: {portal!r} was {bound}; these credentials reach {reached}, "
                "which gets its own store and a full first extract"
            )
    print("ready to run" if report.ok else "not ready: fix the FAIL lines above")
    return 0 if report.ok else 1


FILE_ERROR = 2


class _Progress:
    """Stage messages on stderr with elapsed time; a tqdm bar over the stages on a terminal."""

    def __init__(self, stages: int, quiet: bool) -> None:
        self.start = time.perf_counter()
        self.quiet = quiet
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm  # optional: present wherever dagster is installed
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=stages, file=sys.stderr, unit="step", leave=False)

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            if self.bar.n or self.bar.desc:
                self.bar.update(1)
            self.bar.set_description_str(message)
            return
        print(f"heatsync [{time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if not self.quiet:
            took = time.perf_counter() - self.start
            print(f"heatsync [{took:6.1f}s] done", file=sys.stderr)


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _as_of(text: str) -> pd.Timestamp:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
    return pd.Timestamp(day.isoformat(), tz="UTC")


def _horizon(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*d?\s*", text)
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of days such as 30d, got {text!r}")
    return int(match.group(1))


def _locales() -> list[str]:
    return sorted(p.stem for p in (PROJECT_ROOT / "scoring" / "locales").glob("*.yaml"))


def _load(args: argparse.Namespace, progress: _Progress) -> tuple[Any, Any]:
    """Read and validate the input files and the config; FileError/ValueError on bad input."""
    from pipelines.files import FileError, read_tables, unknown_contacts
    from scoring import load_config

    config = None
    if args.config is not None:
        if not args.config.is_file():
            raise FileError([f"{args.config}: no such config file"])
        try:
            config = load_config(args.config)
        except ValueError as exc:
            raise FileError([f"{args.config.name}: {exc}"]) from None
    tables = read_tables(args.contacts, args.activities, args.deals, progress=progress)
    counts = f"{len(tables.contacts):,} contacts"
    if args.activities is not None:
        counts += f", {len(tables.activities):,} activities"
    if args.deals is not None:
        counts += f", {len(tables.deals):,} deals"
    progress(f"read {counts}")
    for table, count in unknown_contacts(tables).items():
        print(
            f"heatsync: note: {count:,} {table} rows name a contact that is not in "
            f"{args.contacts.name}; they are ignored",
            file=sys.stderr,
        )
    return tables, config


def _score(tables: Any, args: argparse.Namespace, config: Any) -> pd.DataFrame:
    from scoring import score_contacts

    return score_contacts(
        tables.contacts,
        tables.activities,
        tables.deals,
        as_of=args.as_of,
        config=config,
        locale=args.locale,
    )


def score_files(args: argparse.Namespace) -> int:
    """`heatsync score`: one row of scores per contact, CSV or Parquet by the --out extension."""
    from pipelines.files import check_suffix, write_table

    check_suffix(args.out, "--out")
    progress = _Progress(stages=5, quiet=args.quiet)
    tables, config = _load(args, progress)
    progress(f"scoring as of {args.as_of:%Y-%m-%d %H:%M} UTC")
    scores = _score(tables, args, config)
    progress(f"writing {args.out.name}")
    write_table(scores, args.out)
    progress.close()
    counts = scores["temperature"].value_counts()
    bands = " · ".join(f"{t} {int(counts.get(t, 0)):,}" for t in ("hot", "warm", "cold"))
    print(f"scored {len(scores):,} contacts as of {args.as_of:%Y-%m-%d}: {bands} → {args.out}")
    return 0


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if column == "rate":
        return f"{float(value):.1%}"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.1f}"
    return str(value)


def format_table(frame: pd.DataFrame, indent: str = "  ") -> str:
    """An aligned text table: the first column left-aligned, the others right-aligned."""
    columns = [str(c) for c in frame.columns]
    rows = [
        [_cell(c, v) for c, v in zip(columns, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        parts = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return indent + "  ".join(parts).rstrip()

    return "\n".join([line(columns)] + [line(r) for r in rows])


def _number(value: float | None, fmt: str) -> str:
    if value is None or value != value:
        return "–"
    if value == float("inf"):
        return "∞"
    return format(value, fmt)


def print_report(report: Any, as_of: pd.Timestamp, horizon_days: int) -> None:
    """The backtest figures as readable text on stdout."""
    until = as_of + pd.Timedelta(days=horizon_days)
    print(
        f"heatsync backtest · scored as of {as_of:%Y-%m-%d} · outcome: a won deal closed "
        f"after it and by {until:%Y-%m-%d} ({horizon_days} days)"
    )
    print(
        f"  contacts {report.n:,} · converted {report.positives:,} · "
        f"base rate {_number(report.base_rate, '.1%')}"
    )
    lift = _number(report.lift_hot_over_cold, ".2f")
    print(
        f"  ROC AUC {_number(report.auc, '.3f')} · lift hot over cold {lift}× · "
        f"bands in order (hot > warm > cold): {'yes' if report.band_order_ok else 'NO'}"
    )
    print("\nconversion by temperature band")
    print(format_table(report.by_band[["band", "n", "converted", "rate"]]))
    print("\nconversion by segment")
    print(format_table(report.by_segment[["segment", "n", "converted", "rate"]]))
    print("\ncalibration (score bins)")
    print(format_table(report.calibration[["bin", "n", "mean_score", "rate"]]))


def plot_report(report: Any, path: Path) -> None:
    """Conversion by band (bars) and the ROC curve, side by side, as a PNG (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    bands, roc = fig.subplots(1, 2)
    by_band = report.by_band.set_index("band").reindex(["cold", "warm", "hot"])
    rates = by_band["rate"].astype(float).fillna(0.0) * 100
    bars = bands.bar(by_band.index, rates, color=["#4a7fb5", "#e0a030", "#d0402a"])
    for bar, n in zip(bars, by_band["n"].fillna(0).astype(int), strict=True):
        bands.annotate(
            f"n={n:,}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    if report.base_rate is not None:
        bands.axhline(report.base_rate * 100, color="grey", linestyle="--", label="all contacts")
        bands.legend(loc="upper left")
    bands.set_ylim(0, max(105.0, float(rates.max()) * 1.1))
    bands.set_ylabel("converted within horizon, %")
    bands.set_title(f"Conversion by temperature ({report.horizon_days} days)")
    roc.plot(report.roc["fpr"], report.roc["tpr"], color="#d0402a", label="heatsync score")
    roc.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance")
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate")
    roc.set_title(f"ROC curve, AUC {_number(report.auc, '.3f')}")
    roc.set_xlim(0, 1)
    roc.set_ylim(0, 1)
    roc.legend(loc="lower right")
    fig.suptitle(f"heatsync backtest as of {report.as_of:%Y-%m-%d}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")


def backtest_files(args: argparse.Namespace) -> int:
    """`heatsync backtest`: score as of DATE and check who converted within the horizon."""
    from pipelines.files import FileError
    from scoring.backtest import backtest

    for option, path, suffix in (("--plot", args.plot, ".png"), ("--json", args.json, ".json")):
        if path is not None and path.suffix.lower() != suffix:
            raise FileError([f"{option} {path}: expected a file name ending in {suffix}"])
    progress = _Progress(stages=6, quiet=args.quiet)
    tables, config = _load(args, progress)
    progress(f"scoring as of {args.as_of:%Y-%m-%d} with what was known then")
    scores = _score(tables, args, config)
    progress(f"checking outcomes over {args.horizon} days")
    report = backtest(scores, tables.deals, args.as_of, args.horizon)
    if args.plot is not None:
        progress(f"drawing {args.plot.name}")
        plot_report(report, args.plot)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    progress.close()
    print_report(report, args.as_of, args.horizon)
    written = [str(path) for path in (args.plot, args.json) if path is not None]
    if written:
        print(f"\nwrote {', '.join(written)}")
    return 0


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _setting(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def calibrate_files(args: argparse.Namespace) -> int:
    """`heatsync calibrate`: learn the weights from the files' history and write a config YAML.

    Features as of DATE, outcomes = won deals in (DATE, DATE + window]; the fitted config predicts
    conversion within --horizon (the window defaults to it).
    """
    import yaml

    from pipelines.files import FileError
    from scoring import load_config
    from scoring.calibrate import calibrate

    if args.out.suffix.lower() not in (".yaml", ".yml"):
        raise FileError([f"--out {args.out}: expected a file name ending in .yaml"])
    window = args.window or args.horizon
    until = args.as_of + pd.Timedelta(days=window)
    progress = _Progress(stages=5, quiet=args.quiet)
    tables, config = _load(args, progress)
    latest = pd.concat(
        [tables.deals["closed_at"], tables.deals["created_at"], tables.activities["occurred_at"]]
    ).max()
    if pd.isna(latest) or latest < until - pd.Timedelta(days=1):
        last = "no dated events" if pd.isna(latest) else f"nothing after {latest:%Y-%m-%d}"
        print(
            f"heatsync: note: the files have {last}; outcomes up to {until:%Y-%m-%d} are only "
            "partly known",
            file=sys.stderr,
        )
    learned = (
        f"features as of {args.as_of:%Y-%m-%d}, outcomes to {until:%Y-%m-%d} ({window} days), "
        f"predicting {args.horizon} days"
    )
    progress(f"calibrating: {learned}")
    # scoring.calibrate reads nothing after its as_of and takes features `split_days` before it
    fitted = calibrate(
        tables.contacts,
        tables.activities,
        tables.deals,
        until,
        args.horizon,
        config=config,
        split_days=window,
    )
    progress(f"writing {args.out.name}")
    dumped = fitted.model_dump(mode="json")
    files = ", ".join(p.name for p in (args.contacts, args.activities, args.deals) if p is not None)
    header = (
        f"# heatsync calibrate: learned from {files}; {learned}.\n"
        "# Use it with: heatsync score --config THIS_FILE ...\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        header + yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    progress.close()
    base = _flat((config or load_config(None)).model_dump(mode="json"))
    changed = {k: v for k, v in _flat(dumped).items() if base.get(k) != v}
    print(
        f"wrote {args.out}: {len(changed)} values differ from the "
        f"{'given' if config is not None else 'default'} config"
    )
    for key, value in list(changed.items())[:20]:
        print(f"  {key}: {_setting(base.get(key))} → {_setting(value)}")
    if len(changed) > 20:
        print(f"  … and {len(changed) - 20} more")
    return 0


def _add_file_arguments(parser: argparse.ArgumentParser, deals_required: bool) -> None:
    parser.add_argument("--contacts", type=Path, required=True, help="contacts CSV or Parquet")
    parser.add_argument("--activities", type=Path, help="activities CSV or Parquet (optional)")
    parser.add_argument(
        "--deals",
        type=Path,
        required=deals_required,
        help="deals CSV or Parquet" + ("" if deals_required else " (optional)"),
    )
    parser.add_argument(
        "--as-of",
        type=_as_of,
        required=True,
        metavar="DATE",
        help="YYYY-MM-DD: score at 00:00 UTC of that day, from events at or before it",
    )
    parser.add_argument("--config", type=Path, help="scoring config YAML (default: packaged)")
    parser.add_argument(
        "--locale", default="en", choices=_locales(), help="language of reasons (default: en)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heatsync", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"heatsync {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    check_p = sub.add_parser(
        "check",
        help="check credentials, scopes, base URL, time zone and heatsync's fields; write nothing",
    )
    check_p.add_argument("--portal", default="default", help="portal name (default: default)")
    run_p = sub.add_parser("run", help="score today's partition of the configured portal")
    run_p.add_argument("--portal", default="default", help="portal name (default: default)")
    run_p.add_argument(
        "--dry-run", action="store_true", help="print what would change; write nothing"
    )
    run_p.add_argument(
        "--day",
        type=_day,
        help="backfill this past day (YYYY-MM-DD, the portal's calendar): "
        "scores it as of then and records them; writes nothing to the CRM",
    )

    score_p = sub.add_parser("score", help="score contacts from CSV/Parquet files")
    _add_file_arguments(score_p, deals_required=False)
    score_p.add_argument(
        "--out", type=Path, required=True, help="scores file to write (.csv or .parquet)"
    )

    horizon_help = "days after DATE in which a won deal counts as converted, e.g. 30d or 273d"
    back_p = sub.add_parser("backtest", help="check scores as of DATE against what happened next")
    _add_file_arguments(back_p, deals_required=True)
    back_p.add_argument("--horizon", type=_horizon, required=True, help=horizon_help)
    back_p.add_argument(
        "--plot", type=Path, help="draw conversion by band and the ROC curve (.png)"
    )
    back_p.add_argument("--json", type=Path, help="write the figures as JSON")

    cal_p = sub.add_parser(
        "calibrate",
        help="learn scoring weights from the files' history: features as of DATE, outcomes after",
    )
    _add_file_arguments(cal_p, deals_required=True)
    cal_p.add_argument("--horizon", type=_horizon, required=True, help=horizon_help)
    cal_p.add_argument(
        "--window",
        type=_horizon,
        help="days after DATE whose won deals are the outcomes to learn from (default: --horizon)",
    )
    cal_p.add_argument("--out", type=Path, required=True, help="config YAML to write")
    return parser


FILE_COMMANDS = {"score": score_files, "backtest": backtest_files, "calibrate": calibrate_files}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("heatsync")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "check"):
        from connectors.http import ConnectorError

        try:
            if args.command == "check":
                return check(args.portal)
            return run(args.portal, args.dry_run, args.day)
        except ConnectorError as exc:
            # already one readable line, secrets redacted: what failed and what to check
            print(f"heatsync {args.command}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("heatsync: interrupted", file=sys.stderr)
            return 130
    from pipelines.files import FileError

    try:
        return FILE_COMMANDS[args.command](args)
    except FileError as exc:
        print(f"heatsync {args.command}: {exc}".replace("\n", "\n  "), file=sys.stderr)
        return FILE_ERROR
    except KeyboardInterrupt:
        print("heatsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `heatsync backtest ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
