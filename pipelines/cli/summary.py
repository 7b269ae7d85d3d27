"""What `heatsync run` prints: the run's summary from the assets' metadata, and the dry run's
changes as before → after."""

from __future__ import annotations

from typing import Any

import pandas as pd

# The assets' keys (pipelines.assets, as "/"-joined paths) whose metadata the summary reads.
EXTRACT = "crm/extract"
SCORES = "heatsync/scores"
FIELDS = "crm/field_writeback"
TASKS = "crm/tasks"
PAST_DAY = "past day: a backfill scores and records, it writes nothing to the CRM"


def print_kept(fields: dict[str, Any], indent: str = "               ") -> None:
    """The fields kept as a person set them: how many, and who and when for the first few."""
    count = int(fields.get("kept_edited_by_a_person") or 0)
    if not count:
        return
    print(f"{indent}kept {count}: edited by a person (their value stands for the period)")
    for row in (fields.get("kept_edited_by_a_person_list") or [])[:5]:
        who = row.get("by") or "someone"
        print(
            f"{indent}  contact {row['contact_id']} {row['field']} = {row['value']!r} "
            f"by {who} at {str(row['edited_at'])[:16]}, until {str(row['until'])[:10]}"
        )


def print_summary(
    portal: str, day: str, meta: dict[str, dict[str, Any]], past: bool = False
) -> None:
    extract = meta.get(EXTRACT, {})
    scores = meta.get(SCORES, {})
    fields = meta.get(FIELDS, {})
    tasks = meta.get(TASKS, {})
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
        print_kept(fields)
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
    print_left_out(tasks)
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


def print_left_out(tasks: dict[str, Any], indent: str = "  ") -> None:
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


def print_changes(updates: pd.DataFrame, contacts: pd.DataFrame, shown: int = 20) -> None:
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
