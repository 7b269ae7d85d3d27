"""The backtest's figures as text tables on stdout and as a PNG (conversion by band, ROC)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scoring.backtest import BacktestReport


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if column.startswith("rate"):
        return f"{float(value):.1%}"
    if column == "lift" and isinstance(value, float | np.floating):
        return f"{float(value):.2f}×"
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


def print_report(report: BacktestReport, as_of: pd.Timestamp, horizon_days: int) -> None:
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
    if len(report.by_signal):
        print("\nper-signal lift (conversion of contacts with the signal vs without; < 1× is a")
        print("signal that predicts not buying here)")
        print(format_table(report.by_signal))


def plot_report(report: BacktestReport, path: Path) -> None:
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
