"""The file commands: `heatsync score`, `backtest` and `calibrate` on the canonical tables given
as CSV or Parquet, with no CRM and no Dagster (pipelines/files.py reads and validates them)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.cli.report import plot_report, print_report

if TYPE_CHECKING:
    from pipelines.files import Tables
    from scoring import ScoringConfig


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


def _load(args: argparse.Namespace, progress: _Progress) -> tuple[Tables, ScoringConfig | None]:
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


def _score(tables: Tables, args: argparse.Namespace, config: ScoringConfig | None) -> pd.DataFrame:
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
    """Settings by dotted path; a list of rules by each rule's code (or position), so a changed
    weight reads `signals.site_visits[web_session].points: 2 → 1.67`."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            name = str(item.get("code", i))
            types = item.get("types")
            if isinstance(types, list) and types:
                name += f"[{','.join(map(str, types))}]"
            out.update(_flat(item, f"{prefix.rstrip('.')}.{name}."))
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
    from scoring.calibrate import calibrate_report

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
    outcome = calibrate_report(
        tables.contacts,
        tables.activities,
        tables.deals,
        until,
        args.horizon,
        config=config,
        split_days=window,
    )
    fitted = outcome.config
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
    check = outcome.validation
    if check.get("auc_current") is not None and check.get("auc_calibrated") is not None:
        verdict = "beats" if check.get("beats") else "does NOT beat"
        print(
            f"validation on the latest cut: learned AUC {check['auc_calibrated']:.3f} {verdict} "
            f"the {'given' if config is not None else 'default'} config's "
            f"{check['auc_current']:.3f}; learned bands in order: "
            f"{'yes' if check.get('bands_in_order') else 'no'}"
        )
    if outcome.calibrated:  # a kept config's notes were logged as warnings already
        for note in outcome.notes:
            if not note.startswith("time-based validation"):  # said just above
                print(f"note: {note}")
    return 0
