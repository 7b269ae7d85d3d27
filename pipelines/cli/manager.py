"""`heatsync report`: the manager's page of one portal and day as one self-contained HTML file.

Reads only the portal's store (no CRM call, no Dagster): the distribution by temperature and
segment, the transitions since the previous scored day, who warmed up and who cooled down, the
hot contacts nobody attends to, each owner's task load (pipelines.insights) and, when the store
holds the scores of the horizon's start, the backtest's figures. Charts are matplotlib PNGs
inlined as base64 data URIs and the CSS is inline: the file references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import io
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines import insights
from pipelines.cli.common import load_env, selected_portals

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pipelines.config import HeatsyncConfig
    from pipelines.store import PortalStore

NO_SCORES = 2
LISTED = 10
COLOURS = {"cold": "#4a7fb5", "warm": "#e0a030", "hot": "#d0402a"}
LEFT_OUT_COLOUR = "#b8b8b8"
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
       max-width: 1100px; color: #222; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; margin-top: 0; }
.figures { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.figure { background: #f5f5f5; border-radius: 6px; padding: 8px 14px; }
.figure b { display: block; font-size: 1.4em; }
.hot { color: #d0402a; } .warm { color: #c08010; } .cold { color: #4a7fb5; }
table { border-collapse: collapse; font-size: 0.9em; margin: 8px 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: left;
         white-space: nowrap; }
.row table { font-size: 0.82em; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #fafafa; }
img { max-width: 100%; height: auto; }
.row { display: flex; gap: 28px; align-items: flex-start; flex-wrap: wrap; }
.row > section, .row > div { flex: 1 1 480px; min-width: 0; }
.note { color: #666; font-size: 0.9em; }
"""


def report(portal: str | None, day: str | None, out: Path | None) -> int:
    """Write the report of `day` (default: the latest scored day) of `portal`, or of every
    configured portal, one file each; 2 when a portal's store has no scores for the day."""
    from pipelines.config import heatsync_config

    load_env()
    portals = selected_portals(portal)
    if out is not None and len(portals) > 1:
        print("heatsync report: --out names one file: add --portal NAME", file=sys.stderr)
        return NO_SCORES
    settings = heatsync_config(os.environ)
    code = 0
    for each in portals:
        config = each.config(settings)
        store = config.store(each.name)
        days = store.scored_days()
        chosen = day or (days[-1] if days else None)
        scores = None if chosen is None else store.scores(chosen)
        if chosen is None or scores is None:
            what = f"for {chosen}" if chosen else "at all"
            print(
                f"heatsync report: portal {each.name} has no scores {what} in {store.root}; "
                f"run `heatsync run --portal {each.name}"
                + (f" --day {chosen}" if chosen else "")
                + "` first",
                file=sys.stderr,
            )
            code = NO_SCORES
            continue
        target = out or Path.cwd() / f"heatsync-report-{each.name}-{chosen}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(store, config, chosen, scores), encoding="utf-8")
        print(f"heatsync report · portal {each.name} · {chosen} → {target}")
    return code


def render(store: PortalStore, config: HeatsyncConfig, day: str, scores: pd.DataFrame) -> str:
    """The report's HTML for the store's scores of `day`."""
    from pipelines.run.calibration import scoring_choice

    tz = store.time_zone()
    scoring = config.capped(scoring_choice(store, config.scoring_config).config)
    seen = insights.day_insights(
        scores,
        day,
        store.previous_scores(day),
        store.table("contacts"),
        store.ledger(),
        scoring,
        tz,
    )
    meta = store.portal_meta()
    title = f"heatsync · {store.portal} · {day}"
    parts = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">account {_e(store.key)} ({_e(meta.get("crm", "crm"))}) · time zone '
        f"{_e(tz)} · scored as of {_e(_as_of_text(scores, tz))}</p>",
        _distribution(seen),
        '<div class="row">',
        _transitions(seen),
        _owner_load(seen),
        "</div>",
        _unattended(seen),
        '<div class="row">',
        _moves_section("warmed-up", "Warmed up", insights.warmed_up(seen.moves, LISTED), seen),
        _moves_section(
            "cooled-down", "Cooled down", insights.cooled_down(seen.moves, LISTED), seen
        ),
        "</div>",
        _backtest(store, day, scores, config.backtest_horizon_days),
    ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _as_of_text(scores: pd.DataFrame, tz: str) -> str:
    stamps = pd.to_datetime(scores["as_of"], utc=True).dropna()
    return "–" if stamps.empty else f"{stamps.iloc[0].tz_convert(tz):%Y-%m-%d %H:%M}"


def _table(frame: pd.DataFrame, empty: str = "none") -> str:
    if frame.empty:
        return f'<p class="note">{_e(empty)}</p>'
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = "".join(
        f"<th{' class=n' if n else ''}>{_e(c)}</th>"
        for c, n in zip(frame.columns, numeric, strict=True)
    )
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f"<td{' class=n' if n else ''}>{_e(_cell(v))}</td>"
            for v, n in zip(row, numeric, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def _png(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _figures(items: Iterable[tuple[str, Any, str]]) -> str:
    boxes = "".join(
        f'<div class="figure">{_e(label)}<b class="{css}">{_e(value)}</b></div>'
        for label, value, css in items
    )
    return f'<div class="figures">{boxes}</div>'


def _distribution(seen: insights.DayInsights) -> str:
    scores = seen.scores
    counts = scores["temperature"].value_counts().reindex(insights.TEMPERATURES, fill_value=0)
    segments = scores["segment"].fillna("(none)").astype(str)
    by_segment = pd.crosstab(segments, scores["temperature"]).reindex(
        columns=list(insights.TEMPERATURES), fill_value=0
    )
    by_segment = by_segment.loc[by_segment.sum(axis=1).sort_values().index]
    fig = _figure(8.4, 3.2)
    bands, segs = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    bars = bands.bar(counts.index, counts.to_numpy(), color=[COLOURS[t] for t in counts.index])
    bands.bar_label(bars, fmt="{:,.0f}")
    bands.set_title("Contacts by temperature")
    bands.set_ylim(0, max(1, int(counts.max())) * 1.15)
    left = pd.Series(0, index=by_segment.index)
    for temperature in insights.TEMPERATURES:
        values = by_segment[temperature]
        segs.barh(
            by_segment.index, values, left=left, color=COLOURS[temperature], label=temperature
        )
        left = left + values
    segs.set_title("Segments by temperature")
    segs.legend(loc="lower right")
    fig.tight_layout()
    table = by_segment.iloc[::-1].copy()
    table["total"] = table.sum(axis=1)
    return "\n".join(
        [
            '<section id="distribution"><h2>Distribution</h2>',
            _figures(
                [("contacts", f"{len(scores):,}", "")]
                + [(t, f"{int(counts[t]):,}", t) for t in reversed(insights.TEMPERATURES)]
            ),
            '<div class="row">',
            f"<div>{_png(fig, 'contacts by temperature and segment')}</div>",
            f'<div style="flex: 0 1 auto">{_table(table.reset_index(names="segment"))}</div>',
            "</div></section>",
        ]
    )


def _transitions(seen: insights.DayInsights) -> str:
    matrix = seen.transitions
    since = seen.previous_day
    fig = _figure(4.6, 3.4)
    axes = fig.subplots()
    axes.imshow(matrix.to_numpy(), cmap="Oranges")
    axes.set_xticks(range(matrix.shape[1]), [f"{c}\ntoday" for c in matrix.columns])
    axes.set_yticks(range(matrix.shape[0]), list(matrix.index))
    axes.set_ylabel(f"on {since}" if since else "no previous day")
    peak = max(1, int(matrix.to_numpy().max()))
    for (row, col), value in pd.DataFrame(matrix.to_numpy()).stack().items():
        colour = "white" if value > peak * 0.6 else "black"
        axes.text(col, row, f"{value:,}", ha="center", va="center", color=colour)
    axes.set_title("Temperature: previous day → today")
    fig.tight_layout()
    moved = seen.moves
    note = (
        f"since {since}: {int((moved['direction'] > 0).sum()):,} warmed up, "
        f"{int((moved['direction'] < 0).sum()):,} cooled down; "
        f"'new' are contacts {since} did not score"
        if since
        else "no earlier scored day in the store: every contact counts as new"
    )
    table = matrix.reset_index().rename(columns={"previous": "previous \\ today"})
    return "\n".join(
        [
            '<section id="transitions"><h2>Transitions</h2>',
            f'<p class="note">{_e(note)}</p>',
            _png(fig, "transition matrix"),
            _table(table),
            "</section>",
        ]
    )


def _moves_section(anchor: str, title: str, rows: pd.DataFrame, seen: insights.DayInsights) -> str:
    shown = pd.DataFrame(
        {
            "contact": rows["contact_id"],
            "name": rows["name"],
            "owner": rows["owner_id"],
            "band": [f"{a} → {b}" for a, b in zip(rows["was"], rows["now"], strict=True)],
            "score": [
                f"{a:.0f} → {b:.0f}"
                for a, b in zip(rows["previous_score"], rows["score"], strict=True)
            ],
            "change": [f"{c:+.0f}" for c in rows["change"]],
        }
    )
    return "\n".join(
        [
            f'<section id="{anchor}"><h2>{_e(title)}</h2>',
            f'<p class="note">the {LISTED} largest score changes among contacts that changed band '
            f"since {_e(seen.previous_day or '–')}</p>",
            _table(shown, "nobody"),
            "</section>",
        ]
    )


def _unattended(seen: insights.DayInsights) -> str:
    rows = seen.hot_unattended
    hot = int((seen.scores["temperature"] == "hot").sum())
    reasons = rows["why"].str.split("; ").explode().value_counts()
    return "\n".join(
        [
            '<section id="hot-unattended"><h2>Hot and unattended</h2>',
            _figures(
                [("hot contacts", f"{hot:,}", "hot"), ("unattended", f"{len(rows):,}", "hot")]
                + [(str(k), f"{int(v):,}", "") for k, v in reasons.items()]
            ),
            '<p class="note">hot contacts with no owner, never touched, or whose next touch '
            "(last touch + the band's cadence) was due before today; first "
            f"{insights.SHOWN}, highest score first</p>",
            _table(rows.head(insights.SHOWN), "none: every hot contact has an owner and a touch"),
            "</section>",
        ]
    )


def _owner_load(seen: insights.DayInsights) -> str:
    load = seen.owner_load
    parts = ['<section id="owner-load"><h2>Task load per owner</h2>']
    if load.empty:
        parts += [
            '<p class="note">no tasks created and none left out on this day</p>',
            "</section>",
        ]
        return "\n".join(parts)
    rules = [c for c in load.columns if c not in ("owner_id", "created", "left_out")]
    order = load.iloc[::-1]
    fig = _figure(5.6, max(2.4, 0.3 * len(order) + 1.4))
    axes = fig.subplots()
    left = pd.Series(0, index=order.index)
    palette = ["#d0402a", "#e07b30", "#e0a030", "#6a9f4a", "#4a7fb5", "#8a62b0", "#50a0a0"]
    for i, rule in enumerate(rules):
        axes.barh(order["owner_id"], order[rule], left=left, color=palette[i % len(palette)])
        left = left + order[rule]
        axes.containers[-1].set_label(f"created: {rule}")
    axes.barh(
        order["owner_id"], order["left_out"], left=left, color=LEFT_OUT_COLOUR, label="left out"
    )
    axes.set_xlabel("tasks")
    axes.set_title("Tasks created, by rule, and left out by the cap", fontsize=10)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    parts += [
        '<p class="note">created: tasks in the ledger created on this day; left out: candidates '
        "the daily cap per owner left without a task (planned again as of the scores' instant)"
        "</p>",
        _png(fig, "task load per owner"),
        _table(load),
        "</section>",
    ]
    return "\n".join(parts)


def _backtest(store: PortalStore, day: str, scores: pd.DataFrame, horizon_days: int) -> str:
    """The backtest of `day` from the store, when the scores of its horizon's start exist."""
    from pipelines.run.day import backtest_day

    instant = pd.Timestamp(pd.to_datetime(scores["as_of"], utc=True).iloc[0])
    meta = backtest_day(store, day, instant, horizon_days).metadata
    parts = ['<section id="backtest"><h2>Backtest</h2>']
    if not meta.get("evaluated"):
        parts.append(f'<p class="note">not evaluated: {_e(meta.get("reason", ""))}</p>')
        return "\n".join([*parts, "</section>"])
    figures = [
        ("scored", meta["scored_day"], ""),
        ("contacts", f"{meta['contacts']:,}", ""),
        ("bought within", f"{meta['horizon_days']} days: {meta['converted']:,}", ""),
        ("ROC AUC", _fixed(meta.get("auc"), 3), ""),
        ("lift hot / cold", _fixed(meta.get("lift_hot_over_cold"), 2), ""),
    ]
    by_band = pd.DataFrame(meta["by_band"])
    if "rate" in by_band.columns:
        by_band["rate"] = by_band["rate"].map(lambda r: "" if r != r else f"{r:.1%}")
    parts += [_figures(figures), _table(by_band), "</section>"]
    return "\n".join(parts)


def _fixed(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
