"""The `heatsync` command line.

`heatsync run` does what the daily schedule does (today's partition of every configured portal,
or of `--portal NAME`, through Dagster, recorded in the run history); `heatsync run --dry-run`
prints what would be written and created and writes nothing to the CRM; `heatsync run --day DATE`
backfills a past day (scores it as of then, writes nothing). Dagster is imported only by `run`.
`heatsync check` says what each portal's credentials reach.

The file commands work on the canonical tables given as CSV or Parquet, with no CRM and no
Dagster (pipelines/files.py reads and validates them):
`heatsync score` writes one scores row per contact as of a date; `heatsync backtest` scores as of
a date and checks who bought within a horizon after it (conversion by band and segment, ROC AUC,
lift, calibration, optional plot); `heatsync calibrate` learns the weights from that history and
writes a config for `score --config`. A DATE is the instant 00:00 UTC that starts the day: events
at or before it are known, later ones are not. Bad input exits with status 2 and a message naming
the file, row and column.

One module per job: common (project root, .env, DAGSTER_HOME, settings), run (run and dry run),
summary (what a run prints), check, files (the file commands), report (backtest tables and plot).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from pipelines.cli.common import PROJECT_ROOT, ensure_dagster_home
from pipelines.cli.files import backtest_files, calibrate_files, score_files

# `sandbox/demo.py` and older callers import these names from here
_ensure_dagster_home = ensure_dagster_home

__all__ = ["PROJECT_ROOT", "build_parser", "ensure_dagster_home", "main"]


FILE_ERROR = 2
PORTAL_HELP = (
    "only this portal (default: every portal of the portals file; without one, the portal the "
    "environment configures, called default)"
)


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
    check_p.add_argument("--portal", help=PORTAL_HELP)
    run_p = sub.add_parser("run", help="score today's partition of every configured portal")
    run_p.add_argument("--portal", help=PORTAL_HELP)
    run_p.add_argument(
        "--dry-run", action="store_true", help="print what would change; write nothing"
    )
    run_p.add_argument(
        "--day",
        type=_day,
        help="backfill this past day (YYYY-MM-DD, the portal's calendar): "
        "scores it as of then and records them; writes nothing to the CRM",
    )

    report_p = sub.add_parser(
        "report", help="write a portal's day as a self-contained HTML page for sales managers"
    )
    report_p.add_argument("--portal", help=PORTAL_HELP)
    report_p.add_argument(
        "--day", type=_day, help="the scored day (YYYY-MM-DD; default: the latest scored day)"
    )
    report_p.add_argument(
        "--out",
        type=Path,
        help="HTML file to write (default: heatsync-report-PORTAL-DAY.html here; one portal)",
    )

    history_p = sub.add_parser(
        "history",
        help="a contact's temperature over time with the reasons, the fields written and the "
        "tasks created or not (from the store; no CRM call)",
    )
    history_p.add_argument("contact", help="the contact's id in the CRM")
    history_p.add_argument("--portal", help="only this portal (default: every portal's store)")
    history_p.add_argument("--days", type=_horizon, help="only the last N days")

    forget_p = sub.add_parser(
        "forget",
        help="delete a contact's personal data from the local store (not from the CRM)",
    )
    forget_p.add_argument("contact", help="the contact's id in the CRM")
    forget_p.add_argument("--portal", help="only this portal (default: every portal's store)")
    forget_p.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed without a TTY)"
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


class _StderrNow(logging.Handler):
    """Writes to sys.stderr as it is when a record arrives (not when the handler was made)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _warnings_to_stderr() -> None:
    """The file commands' warnings (unknown columns, too little history) as `heatsync: warning:`
    lines on stderr, once per process."""
    logger = logging.getLogger("heatsync")
    if not any(h.get_name() == "heatsync-cli" for h in logger.handlers):
        handler = _StderrNow(logging.WARNING)
        handler.set_name("heatsync-cli")
        handler.setFormatter(logging.Formatter("heatsync: warning: %(message)s"))
        logger.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "check"):
        from connectors.http import ConnectorError
        from pipelines.cli.check import check
        from pipelines.cli.run import run

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
    if args.command == "report":
        from pipelines.cli.manager import report

        return report(args.portal, args.day, args.out)
    if args.command == "history":
        from pipelines.cli.history import history

        return history(args.contact, args.portal, args.days)
    if args.command == "forget":
        from pipelines.cli.forget import forget

        return forget(args.contact, args.portal, args.yes)
    from pipelines.files import FileError

    _warnings_to_stderr()
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
