"""Scoring at scale: heatsync's whole scoring from Parquet files against DuckDB's aggregates.

    python benchmarks/score_scale.py [--contacts 100000 1000000 5000000] [--repeat 1]
        [--max-gb 10]

For each size N: N contacts, 20 x N activities and 0.4 x N deals (sandbox/synthetic.py, generated
in chunks of 100,000 contacts) are written once as Parquet under .heatsync/bench/scale-N/ and
reused. Each measurement runs in its own subprocess, heatsync and DuckDB alternating, and reports
its time and peak memory (ru_maxrss of that process):

- heatsync: what `heatsync score` does (pipelines.files.read_tables: read and validate the
  files; score_contacts: prepare, temperature, segment, reasons, trend, touches), then plan_tasks;
- duckdb: the per-contact aggregates scoring is built from (decayed capped points per reason
  code, windowed counts by type and direction, last touch, last inbound, touches in 30 days,
  unanswered calls, purchase history and open deals) in one SQL query over the same files, with
  threads = os.cpu_count(), fetched into pandas.

Both may use every core: DuckDB through its threads setting, heatsync through the threads its
reader and scoring start (the three files and their columns side by side, the contact lookup and
the segments beside other work, the per-activity arithmetic in pieces), never more than
os.cpu_count() busy at once for long.

A size is skipped when the previous size's peak memory, scaled linearly, exceeds --max-gb. A
measurement whose process dies (e.g. killed for lack of memory) is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring import load_config  # noqa: E402
from scoring.config import ScoringConfig  # noqa: E402

AS_OF = pd.Timestamp("2026-11-23 14:00", tz="UTC")
CACHE = ROOT / ".heatsync" / "bench"
CHUNK = 100_000
TABLES = ("contacts", "activities", "deals")


def data_dir(n: int) -> Path:
    return CACHE / f"scale-{n}"


def ensure_data(n: int) -> Path:
    """Write (once) the Parquet files of an N-contact portal; returns their directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sandbox.synthetic import synthetic_portal

    out = data_dir(n)
    if all((out / f"{t}.parquet").is_file() for t in TABLES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    writers: dict[str, Any] = {}
    try:
        for k, lo in enumerate(range(0, n, CHUNK)):
            m = min(CHUNK, n - lo)
            frames = dict(zip(TABLES, synthetic_portal(m, 20 * m, AS_OF, seed=7 + k), strict=True))
            prefix = f"k{k}-"
            for table, frame in frames.items():
                frame["contact_id"] = prefix + frame["contact_id"]
                id_col = {"activities": "activity_id", "deals": "deal_id"}.get(table)
                if id_col:
                    frame[id_col] = prefix + frame[id_col]
                arrow = pa.Table.from_pandas(frame, preserve_index=False)
                if table not in writers:
                    path = out / f"{table}.parquet.part"
                    writers[table] = pq.ParquetWriter(path, arrow.schema)
                writers[table].write_table(arrow.cast(writers[table].schema))
    finally:
        for w in writers.values():
            w.close()
    for table in TABLES:
        (out / f"{table}.parquet.part").rename(out / f"{table}.parquet")
    print(f"generated {n:,} contacts in {time.perf_counter() - t0:.0f}s -> {out}", flush=True)
    return out


def run_heatsync(directory: Path) -> dict[str, float]:
    from pipelines.files import read_tables, unknown_contacts
    from scoring import plan_tasks, score_contacts

    clock = [(time.perf_counter(), time.process_time())]
    contacts, activities, deals = (directory / f"{t}.parquet" for t in TABLES)
    tables = read_tables(contacts, activities, deals)
    unknown_contacts(tables)
    clock.append((time.perf_counter(), time.process_time()))
    scores = score_contacts(tables.contacts, tables.activities, tables.deals, as_of=AS_OF)
    clock.append((time.perf_counter(), time.process_time()))
    plan = plan_tasks(scores, tables.contacts, as_of=AS_OF)
    clock.append((time.perf_counter(), time.process_time()))
    out: dict[str, float] = {"seconds": clock[-1][0] - clock[0][0]}
    for i, stage in enumerate(("read", "score", "plan")):
        out[stage] = clock[i + 1][0] - clock[i][0]
        out[f"{stage}_cpu"] = clock[i + 1][1] - clock[i][1]
    return out | {"rows": len(scores), "tasks": len(plan.tasks)}


def _in(column: str, values: list[str] | tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(_quote(v) for v in values)})"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rule_sql(config: ScoringConfig) -> tuple[str, str]:
    """CASE expressions for the first matching rule's index and a VALUES table of the rules."""
    whens = []
    for i, rule in enumerate(config.signals):
        cond = [_in("type", rule.types)]
        if rule.directions is not None:
            cond.append(_in("coalesce(direction, 'unknown')", rule.directions))
        if rule.outcomes is not None:
            cond.append(_in("coalesce(outcome, 'unknown')", rule.outcomes))
        if rule.intent is not None:
            cond.append("intent" if rule.intent else "NOT intent")
        whens.append(f"WHEN {' AND '.join(cond)} THEN {i}")
    case = "CASE " + " ".join(whens) + " ELSE -1 END"
    hl = config.half_life_days
    caps: dict[str, float] = {}
    for rule in config.signals:
        if rule.cap is not None:
            caps[rule.code] = max(caps.get(rule.code, 0.0), rule.cap)
    rows = [
        f"({i}, {_quote(r.code)}, {float(r.points)}, {float(r.points_per_minute)}, "
        f"{float(r.max_minutes)}, {float(hl[r.signal_class])}, "
        f"{_quote(r.signal_class)}, {caps.get(r.code, 'NULL')})"
        for i, r in enumerate(config.signals)
    ]
    values = (
        "(VALUES " + ", ".join(rows) + ") AS rules(rule, code, points, per_minute, max_minutes, "
        "half_life, signal_class, cap)"
    )
    return case, values


def duckdb_query(directory: Path, config: ScoringConfig) -> str:
    """One query: the per-contact aggregates heatsync's scoring computes, as of AS_OF in UTC."""
    s, tc, r, p = config.segments, config.touches, config.reasons, config.unanswered_penalty
    dc, hl = config.deals, config.half_life_days
    words = sorted({w.strip().lower() for ws in config.intent_words.values() for w in ws if w})
    # RE2 has no look-behind: a word starts at the text's start or after a non-word character
    pattern = r"(?i)(^|[^\pL\pN_])(" + "|".join(_re2_escape(w) for w in words) + ")"
    case, rules = _rule_sql(config)
    f = {t: _quote(str(directory / f"{t}.parquet")) for t in TABLES}
    as_of = f"TIMESTAMPTZ_NS '{AS_OF.isoformat()}'"
    day = f"DATE '{AS_OF.date().isoformat()}'"
    return f"""
WITH c AS (
  SELECT row_number() OVER () - 1 AS cidx, portal, contact_id, created_at
  FROM read_parquet({f["contacts"]})
  WHERE created_at IS NULL OR created_at <= {as_of}
),
a0 AS (
  SELECT c.cidx, a.type, a.direction, a.outcome, a.duration_s, a.occurred_at,
    date_diff('day', a.occurred_at::DATE, {day}) AS age,
    ({_in("a.type", config.intent_types)} AND coalesce(regexp_matches(a.text, {_quote(pattern)}),
      false)) AS intent
  FROM read_parquet({f["activities"]}) a JOIN c USING (portal, contact_id)
  WHERE a.occurred_at <= {as_of}
),
a AS (
  SELECT a0.*, rules.code, rules.signal_class, rules.cap,
    (rules.points + rules.per_minute
      * least(coalesce(a0.duration_s, 0) / 60.0, rules.max_minutes))
      * pow(0.5, a0.age / rules.half_life) AS contrib,
    rules.points + rules.per_minute * least(coalesce(a0.duration_s, 0) / 60.0, rules.max_minutes)
      AS points,
    ({_in("a0.type", tc.types)} OR (a0.type = 'call' AND a0.direction IS DISTINCT FROM 'inbound')
      OR (a0.type = 'call' AND a0.direction = 'inbound'
          AND {_in("a0.outcome", tc.call_inbound_outcomes)})
      OR (a0.type = 'meeting' AND {_in("a0.outcome", tc.meeting_outcomes)})) AS is_touch
  FROM (SELECT *, {case} AS rule FROM a0) a0 LEFT JOIN {rules} USING (rule)
),
by_code AS (
  SELECT cidx, code, greatest(least(sum(contrib), coalesce(max(cap), 'inf')),
      -coalesce(max(cap), 'inf')) AS strength,
    min(age) AS days, count(*) FILTER (age <= {r.count_window_days}) AS n
  FROM a WHERE code IS NOT NULL GROUP BY cidx, code
),
points AS (
  SELECT cidx, sum(strength) AS activity_points, count(*) AS codes FROM by_code GROUP BY cidx
),
per_contact AS (
  SELECT cidx,
    count(*) FILTER ({_in("type", s.difficult_issue_types)}
      AND age <= {s.difficult_window_days}) AS issues,
    count(*) FILTER ({_in("type", s.fan_types)} AND age <= {s.fan_window_days}) AS fan_events,
    count(*) FILTER ({_in("type", s.loyal_types)} AND direction IS DISTINCT FROM 'outbound'
      AND age <= {s.loyal_window_days}) AS engagement,
    count(*) FILTER (signal_class = 'intent' AND age <= {s.burning_intent_days}) AS intent_recent,
    max(occurred_at) FILTER (signal_class = 'intent') AS urgent_at,
    max(occurred_at) FILTER (is_touch) AS last_touch_at,
    count(*) FILTER (is_touch AND age <= {tc.window_days}) AS touches_30d,
    min(age) FILTER (direction = 'inbound' AND code IS NOT NULL) AS last_inbound_days,
    min(age) FILTER (points > 0) AS last_positive_days,
    count(*) FILTER (type = 'call' AND direction IS DISTINCT FROM 'inbound'
      AND {_in("outcome", p.outcomes)} AND age <= {p.window_days}) AS unanswered
  FROM a GROUP BY cidx
),
d AS (
  SELECT c.cidx, d.amount, d.stage_probability,
    CASE WHEN d.status IN ('won', 'lost') AND coalesce(d.closed_at, d.created_at) <= {as_of}
      THEN d.status ELSE 'open' END AS status,
    date_diff('day', d.created_at::DATE, {day}) AS created_age,
    date_diff('day', coalesce(d.closed_at, d.created_at)::DATE, {day}) AS closed_age,
    coalesce(d.closed_at, d.created_at)::DATE AS closed_date
  FROM read_parquet({f["deals"]}) d JOIN c USING (portal, contact_id)
  WHERE d.created_at <= {as_of}
),
won_days AS (
  SELECT cidx, closed_date, sum(amount) AS amount, max(closed_age) AS age,
    date_diff('day', lag(closed_date) OVER (PARTITION BY cidx ORDER BY closed_date),
      closed_date) AS gap
  FROM d WHERE status = 'won' GROUP BY cidx, closed_date
),
deals AS (
  SELECT cidx,
    count(*) FILTER (status = 'won') AS won_total,
    count(*) FILTER (status = 'won' AND closed_age <= {s.key_window_days}) AS won_window,
    sum(amount) FILTER (status = 'won' AND closed_age <= {s.key_window_days}) AS won_amount,
    min(closed_age) FILTER (status = 'won') AS days_since_won,
    max(CASE WHEN stage_probability IS NULL THEN {dc.open_unknown_probability_points}
      WHEN stage_probability >= {dc.late_stage_probability} THEN {dc.late_stage_points}
      ELSE stage_probability * {dc.open_points_per_probability} END
      * pow(0.5, greatest(created_age, 0) / {hl[dc.open_signal_class]}))
      FILTER (status = 'open') AS open_deal_points
  FROM d GROUP BY cidx
),
history AS (
  SELECT cidx, count(*) AS purchase_days, max(age) AS first_days, min(age) AS recency,
    avg(amount) AS value, median(gap) AS median_gap
  FROM won_days GROUP BY cidx
)
SELECT c.cidx, c.portal, c.contact_id, points.activity_points, points.codes, per_contact.*
  EXCLUDE (cidx), deals.* EXCLUDE (cidx), history.* EXCLUDE (cidx)
FROM c
  LEFT JOIN points USING (cidx)
  LEFT JOIN per_contact USING (cidx)
  LEFT JOIN deals USING (cidx)
  LEFT JOIN history USING (cidx)
ORDER BY c.cidx
"""


def _re2_escape(word: str) -> str:
    return "".join("\\" + ch if ch in r".^$*+?()[]{}|\\" else ch for ch in word)


def run_duckdb(directory: Path) -> dict[str, float]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    con.execute("SET TimeZone = 'UTC'")
    out = con.execute(duckdb_query(directory, load_config(None))).df()
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "rows": len(out)}


def child(which: str, directory: Path) -> None:
    result = run_heatsync(directory) if which == "heatsync" else run_duckdb(directory)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of all the process's threads: under load, steadier than the wall clock
    result["cpu"] = usage.ru_utime + usage.ru_stime
    result["peak_gb"] = usage.ru_maxrss * 1024 / 1e9  # Linux reports ru_maxrss in KiB
    print(json.dumps(result))


def measure(which: str, directory: Path) -> dict[str, float] | None:
    """One measurement in its own process; None (with the reason printed) if it died."""
    cmd = [sys.executable, __file__, "--child", which, "--dir", str(directory)]
    load_before = os.getloadavg()[0]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        how = f"killed by signal {-done.returncode}" if done.returncode < 0 else "failed"
        print(f"{which} {how} (exit {done.returncode}):\n{done.stderr[-3000:]}", flush=True)
        return None
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    # the machine's 1-minute load average before and after: other work distorts the wall clock
    return result | {"load_before": load_before, "load_after": os.getloadavg()[0]}


def machine() -> str:
    """CPU model, cores, memory and library versions, for the record."""
    import platform

    import duckdb
    import numpy as np
    import pyarrow as pa

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = names[0] if names else model
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
        f"pandas {pd.__version__}, numpy {np.__version__}, pyarrow {pa.__version__}, "
        f"DuckDB {duckdb.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--contacts", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    ap.add_argument("--repeat", type=int, default=1, help="measurements of each, alternating")
    ap.add_argument("--max-gb", type=float, default=10.0)
    ap.add_argument("--child", choices=["heatsync", "duckdb"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.dir)
        return

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}", flush=True)
    rows: list[tuple[int, dict[str, float] | None, dict[str, float] | None]] = []
    last: tuple[int, float] | None = None
    for n in sorted(args.contacts):
        if last is not None and last[1] * n / last[0] > args.max_gb:
            print(f"{n:,} contacts: skipped (about {last[1] * n / last[0]:.0f} GB expected)")
            continue
        directory = ensure_data(n)
        runs: dict[str, list[dict[str, float]]] = {"heatsync": [], "duckdb": []}
        for _ in range(args.repeat):
            for which in ("heatsync", "duckdb"):
                r = measure(which, directory)
                if r is not None:
                    runs[which].append(r)
                print(f"{n:,} {which}: {json.dumps(r)}", flush=True)
        best = {w: _best(rs) for w, rs in runs.items()}
        rows.append((n, best["heatsync"], best["duckdb"]))
        peaks = [b["peak_gb"] for b in best.values() if b is not None]
        last = (n, max(peaks)) if peaks else last

    print()
    print(
        "| contacts | activities | heatsync (read + score + plan) | heatsync CPU (same) "
        "| heatsync peak | DuckDB | DuckDB CPU | DuckDB peak | time ratio | CPU ratio "
        "| load (1 min) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, h, d in rows:
        cells = [f"{n:,}", f"{20 * n:,}"]
        if h is None:
            cells += ["did not finish", "", ""]
        else:
            cells += [
                f"{h['seconds']:.1f} s ({h['read']:.1f} + {h['score']:.1f} + {h['plan']:.1f})",
                f"{h['cpu']:.1f} s ({h['read_cpu']:.1f} + {h['score_cpu']:.1f} + "
                f"{h['plan_cpu']:.1f})",
                f"{h['peak_gb']:.2f} GB",
            ]
        cells += (
            ["did not finish", "", ""]
            if d is None
            else [f"{d['seconds']:.1f} s", f"{d['cpu']:.1f} s", f"{d['peak_gb']:.2f} GB"]
        )
        both = [r for r in (h, d) if r is not None]
        loads = [r[k] for r in both for k in ("load_before", "load_after")]
        if h is not None and d is not None:
            cells += [f"{h['seconds'] / d['seconds']:.1f}x", f"{h['cpu'] / d['cpu']:.1f}x"]
        else:
            cells += ["", ""]
        cells.append(f"{min(loads):.1f}-{max(loads):.1f}" if loads else "")
        print("| " + " | ".join(cells) + " |")


def _best(runs: list[dict[str, float]]) -> dict[str, float] | None:
    """The fastest of the measurements, with the highest peak memory of them all."""
    if not runs:
        return None
    return min(runs, key=lambda r: r["seconds"]) | {"peak_gb": max(r["peak_gb"] for r in runs)}


if __name__ == "__main__":
    main()
