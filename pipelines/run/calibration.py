"""Self-correction: each portal's scoring config, recalibrated from its own store. No Dagster.

Which config scores a portal (`scoring_choice`), in order:

1. **pinned**: ops set HEATSYNC_SCORING_CONFIG; that file scores every portal and recalibration
   never replaces it (it still computes and records the comparison);
2. **adopted**: `<store root>/config/adopted.yaml`, the last learned config that won;
3. **default**: the packaged defaults.

`calibrate_day` runs `scoring.calibrate.calibrate_report` on the portal's store as of a day's
as-of (nothing after it is read), with the config in use as the one to beat. The learned config
is adopted only when it beats the current one on the later time split of the same history
(`validation.beats`: higher ROC AUC at the latest cut, fitted on earlier cuts only, and its
bands convert in order). Adopting writes `config/history/<day>.yaml` and then replaces
`config/adopted.yaml` atomically (temp file beside it, fsync, rename), both under the portal's
lock; the scores step reads adopted.yaml on its next run. Too little history, no earlier window
to judge on, a learned config that does not win, or a pinned config: nothing is written, and the
metadata says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from connectors.atomic import atomic_open, atomic_write_bytes
from pipelines.run.asof import AsOf
from pipelines.storage import ObjectPath, StorePath
from pipelines.store import PortalStore
from scoring import ScoringConfig, load_config
from scoring.calibrate import CalibrationReport, calibrate_report

CONFIG_FOLDER = "config"
ADOPTED_FILE = "adopted.yaml"
HISTORY_FOLDER = "history"
PINNED = "pinned"
ADOPTED = "adopted"
DEFAULT = "default"


def adopted_path(store: PortalStore) -> StorePath:
    """The adopted config of the store's account (`<store root>/config/adopted.yaml`)."""
    return store.root / CONFIG_FOLDER / ADOPTED_FILE


def history_path(store: PortalStore, day: str) -> StorePath:
    """The config adopted on `day` (`<store root>/config/history/<day>.yaml`)."""
    return store.root / CONFIG_FOLDER / HISTORY_FOLDER / f"{day}.yaml"


@dataclass(frozen=True)
class ScoringChoice:
    """The config that scores a portal and where it comes from (pinned, adopted, default)."""

    config: ScoringConfig
    source: str
    path: str = ""

    def describe(self) -> str:
        return f"{self.source}: {self.path}" if self.path else self.source


def scoring_choice(store: PortalStore, pinned: str = "") -> ScoringChoice:
    """The config a portal is scored with: `pinned` (HEATSYNC_SCORING_CONFIG) when set, else the
    account's adopted config when there is one, else the defaults."""
    if pinned:
        return ScoringChoice(load_config(pinned), PINNED, pinned)
    path = adopted_path(store)
    if isinstance(path, ObjectPath):  # a store on an object store: no local file to open
        if path.is_file():
            text = path.read_text()
            return ScoringChoice(load_config(yaml.safe_load(text) or {}), ADOPTED, str(path))
    elif path.is_file():
        return ScoringChoice(load_config(path), ADOPTED, str(path))
    return ScoringChoice(load_config(None), DEFAULT)


def _plain(value: Any) -> Any:
    """JSON- and YAML-safe: numpy numbers as Python ones, timestamps as ISO text, NaN as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return None if number != number or number in (float("inf"), float("-inf")) else number
    return value


def weights_markdown(weights: pd.DataFrame) -> str:
    """The learned points per term as a Markdown table (largest effect first)."""
    if weights.empty:
        return "no weights learned"
    lines = ["| term | evidence | log-odds per unit | points |", "|---|---|---:|---:|"]
    order = weights.reindex(weights["points"].abs().sort_values(ascending=False).index)
    for row in order.itertuples(index=False):
        lines.append(f"| {row.term} | {row.code} | {row.coefficient:+.3f} | {row.points:+.1f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Calibration:
    """One recalibration of a portal: what was compared, whether the learned config was adopted
    and why, and (when adopted) where it was written."""

    as_of: AsOf
    current: ScoringChoice
    adopted: bool
    why: str
    horizon_days: int
    report: CalibrationReport | None
    path: StorePath | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """Flat values for the run record; `weights_md` is Markdown, dicts and lists JSON."""
        meta: dict[str, Any] = {
            "adopted": self.adopted,
            "why": self.why,
            "current_config": self.current.describe(),
            "as_of": self.as_of.instant.isoformat(),
            "horizon_days": self.horizon_days,
        }
        report = self.report
        if report is None:
            return meta
        validation = _plain(report.validation)
        meta.update(
            {
                "conversions": int(report.conversions),
                "learned": bool(report.calibrated),
                "auc_current": validation.get("auc_current"),
                "auc_calibrated": validation.get("auc_calibrated"),
                "beats": validation.get("beats"),
                "bands_in_order": validation.get("bands_in_order"),
                "judged_at": validation.get("cut"),
                "fitted_on": validation.get("fitted_on"),
                "cuts": [c.isoformat() for c in report.cuts],
                "thresholds": _plain(report.thresholds),
                "weights_md": weights_markdown(report.weights),
                "notes": list(report.notes),
            }
        )
        if self.path is not None:
            meta["config_path"] = str(self.path)
        return {k: v for k, v in meta.items() if v is not None}


def _decision(report: CalibrationReport, current: ScoringChoice) -> tuple[bool, str]:
    """Adopt or keep, and the reason in words."""
    validation = report.validation
    if current.source == PINNED:
        return False, (
            f"pinned, not adopted: HEATSYNC_SCORING_CONFIG={current.path} scores this portal"
        )
    if not report.calibrated:
        return False, f"nothing learned, the {current.source} config is kept: {report.notes[-1]}"
    if not validation:
        return False, (
            "no earlier window with enough conversions to judge the learned config on a later "
            f"time split: the {current.source} config is kept"
        )
    learned, given = validation.get("auc_calibrated"), validation.get("auc_current")
    figures = f"ROC AUC {learned:.3f} learned vs {given or float('nan'):.3f} {current.source}"
    if not validation.get("bands_in_order"):
        return False, f"the learned bands do not convert in order ({figures}): not adopted"
    if not validation.get("beats"):
        return False, f"the learned config does not beat the {current.source} one ({figures})"
    return True, f"the learned config beats the {current.source} one ({figures}), bands in order"


def _yaml(config: ScoringConfig, header: list[str]) -> bytes:
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return ("".join(f"# {line}\n" for line in header) + body).encode("utf-8")


def adopt(store: PortalStore, day: str, config: ScoringConfig, header: list[str]) -> StorePath:
    """Write `config` as the day's history entry, then as the adopted config (atomically: a
    local file through a synced rename, an object in one upload). Call under the portal's
    lock."""
    data = _yaml(config, header)
    entry, path = history_path(store, day), adopted_path(store)
    if isinstance(path, ObjectPath) and isinstance(entry, ObjectPath):
        entry.write_bytes(data)
        path.write_bytes(data)
        return path
    assert isinstance(entry, Path) and isinstance(path, Path)
    atomic_write_bytes(entry, data)
    with atomic_open(path, sync_directory=True) as handle:
        handle.write(data)
    return path


def calibrate_day(
    store: PortalStore,
    day: str,
    now: pd.Timestamp,
    horizon_days: int,
    pinned: str = "",
    window_days: int | None = None,
) -> Calibration:
    """Recalibrate the portal from its store as of `day` and adopt the learned config when it
    beats the one in use on the later time split (see the module docstring)."""
    with store.lock():
        as_of = AsOf.resolve(day, store.time_zone(), now)
        current = scoring_choice(store, pinned)
        contacts = store.table("contacts")
        activities = store.table("activities")
        deals = store.table("deals")
    if contacts.empty:
        why = "the store holds no contacts yet (run the extract first): nothing changes"
        return Calibration(as_of, current, False, why, horizon_days, None)
    report = calibrate_report(
        contacts,
        activities,
        deals,
        as_of.instant,
        horizon_days,
        config=current.config,
        split_days=window_days,
        tz=as_of.tz,
    )
    adopted, why = _decision(report, current)
    if not adopted:
        return Calibration(as_of, current, False, why, horizon_days, report)
    header = [
        f"heatsync: adopted on {day} for account {store.key} (as of {as_of.instant.isoformat()})",
        why,
        f"{report.conversions} conversions in {horizon_days} days; the config it replaced: "
        f"{current.describe()}",
    ]
    with store.lock():
        path = adopt(store, day, report.config, header)
    return Calibration(as_of, current, True, why, horizon_days, report, path)
