"""Which of heatsync's field values a person set by hand, and so stay as they are for a while.

Each heatsync field has a write policy (`FIELD_POLICIES`): `overwrite` (heatsync's value always
wins), `respect_human_edits` (a value a person set after heatsync's last write stays for
`human_edit_days` from the person's edit), or `never_write`. By default temperature and segment
respect human edits; the others are overwritten.

Asking the CRM who changed a value costs requests, so only the fields that matter are asked
about: a change heatsync is about to make to a protected field whose value in the CRM is not the
one heatsync last wrote there (someone else changed it, or heatsync never wrote it).
`connectors.base.CrmConnector.field_edits` answers with the latest change by anyone but heatsync;
a person's change that is still in force (the CRM holds its value) and younger than the period
keeps the field. Another integration's change is overwritten. Pure pandas, no I/O, no Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

OVERWRITE = "overwrite"
RESPECT = "respect_human_edits"
NEVER = "never_write"
FIELD_POLICIES = (OVERWRITE, RESPECT, NEVER)
DEFAULT_POLICY: dict[str, str] = {"temperature": RESPECT, "segment": RESPECT}
DEFAULT_HUMAN_EDIT_DAYS = 30
KEPT_REASON = "edited by a person"
KEPT_COLUMNS = ("contact_id", "field", "value", "by", "edited_at", "until", "reason")


def policy_of(field: str, policy: Mapping[str, str]) -> str:
    """The write policy of `field`: as configured, else the default."""
    return policy.get(field) or DEFAULT_POLICY.get(field, OVERWRITE)


def parse_policy(text: str) -> dict[str, str]:
    """`temperature=overwrite, segment=never_write` → {field: policy}; ValueError naming what
    is wrong."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        field, sep, value = (s.strip() for s in part.partition("="))
        if not sep or value not in FIELD_POLICIES:
            raise ValueError(
                f"field policy {part!r}: write FIELD=POLICY with POLICY one of "
                + ", ".join(FIELD_POLICIES)
            )
        out[field] = value
    return out


@dataclass(frozen=True)
class Protected:
    """The updates left to send, and the fields kept as a person set them (KEPT_COLUMNS)."""

    updates: pd.DataFrame
    kept: pd.DataFrame


def _changed_columns(updates: pd.DataFrame) -> list[str]:
    return [c.removeprefix("changed_") for c in updates.columns if c.startswith("changed_")]


def never_written(updates: pd.DataFrame, policy: Mapping[str, str]) -> pd.DataFrame:
    """`updates` without the fields whose policy is never_write (rows left without a change
    dropped)."""
    out = updates.copy()
    for field in _changed_columns(out):
        if policy_of(field, policy) == NEVER:
            out[f"changed_{field}"] = False
    return _with_changes(out)


def _with_changes(updates: pd.DataFrame) -> pd.DataFrame:
    flags = [c for c in updates.columns if c.startswith("changed_")]
    if not flags or updates.empty:
        return updates
    return updates[updates[flags].astype(bool).any(axis=1)].reset_index(drop=True)


def _held(contacts: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """The CRM's values of heatsync's `fields`, long: contact_id, field, held (text; '' when
    blank)."""
    columns = [f"current_{f}" for f in fields if f"current_{f}" in contacts.columns]
    long = contacts.drop_duplicates("contact_id").melt(
        id_vars="contact_id", value_vars=columns, var_name="field", value_name="held"
    )
    long["field"] = long["field"].str.removeprefix("current_")
    long["held"] = _text(long["held"])
    return long


def _text(values: pd.Series) -> pd.Series:
    return values.astype("object").where(values.notna(), "").astype(str)


def _changes_long(updates: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """(contact_id, field) of every change in `updates` to one of `fields`."""
    flags = [f"changed_{f}" for f in fields]
    long = updates[["contact_id", *flags]].melt(
        id_vars="contact_id", var_name="field", value_name="changed"
    )
    long = long[long["changed"].astype(bool)]
    return long.assign(field=long["field"].str.removeprefix("changed_"))[["contact_id", "field"]]


def to_ask(
    updates: pd.DataFrame,
    contacts: pd.DataFrame,
    last_written: pd.DataFrame,
    policy: Mapping[str, str],
) -> pd.DataFrame:
    """(contact_id, field) pairs worth asking the CRM about: a change heatsync would make to a
    respect_human_edits field whose CRM value is set and is not what heatsync last wrote.

    `last_written` has contact_id, field, value: heatsync's writes, latest last."""
    fields = [f for f in _changed_columns(updates) if policy_of(f, policy) == RESPECT]
    if not fields or updates.empty:
        return pd.DataFrame(
            {"contact_id": pd.Series(dtype=object), "field": pd.Series(dtype=object)}
        )
    ours = last_written.drop_duplicates(["contact_id", "field"], keep="last")[
        ["contact_id", "field", "value"]
    ]
    pairs = _changes_long(updates, fields).merge(_held(contacts, fields), how="left")
    pairs = pairs.merge(ours, how="left", on=["contact_id", "field"])
    differs = (pairs["held"].fillna("") != "") & (
        pairs["value"].isna() | (_text(pairs["value"]) != pairs["held"])
    )
    return pairs.loc[differs, ["contact_id", "field"]].reset_index(drop=True)


def protect(
    updates: pd.DataFrame,
    contacts: pd.DataFrame,
    edits: pd.DataFrame,
    last_written: pd.DataFrame,
    now: pd.Timestamp,
    days: int,
) -> Protected:
    """Drop from `updates` every field a person set (per `edits`, from the connector's
    `field_edits`: contact_id, field, value, changed_at, source, by) after heatsync last wrote it
    (`last_written`: contact_id, field, at), within `days` of now, while the CRM still holds the
    person's value."""
    empty_kept = pd.DataFrame({c: pd.Series(dtype=object) for c in KEPT_COLUMNS})
    if edits.empty or updates.empty:
        return Protected(updates, empty_kept)
    people = edits[edits["source"] == "person"].assign(
        changed_at=lambda e: pd.to_datetime(e["changed_at"], utc=True)
    )
    people = people[people["changed_at"] > now - pd.Timedelta(days=days)]
    ours = last_written.drop_duplicates(["contact_id", "field"], keep="last")[
        ["contact_id", "field", "at"]
    ]
    fields = sorted(set(people["field"]) & set(_changed_columns(updates)))
    people = people.merge(ours, how="left", on=["contact_id", "field"])
    people = people.merge(_held(contacts, fields), how="left", on=["contact_id", "field"])
    ours_at = pd.to_datetime(people["at"], utc=True)
    after_ours = ours_at.isna() | (people["changed_at"] > ours_at)
    in_force = people["held"].fillna("") == _text(people["value"])
    keep = people[after_ours & in_force]
    long = _changes_long(updates, fields).merge(keep[["contact_id", "field"]])
    out = updates.copy()
    for field, group in long.groupby("field"):
        hit = out["contact_id"].isin(group["contact_id"])
        out.loc[hit, f"changed_{field}"] = False
    kept = pd.DataFrame(
        {
            "contact_id": keep["contact_id"].to_numpy(),
            "field": keep["field"].to_numpy(),
            "value": _text(keep["value"]).to_numpy(),
            "by": _text(keep["by"]).to_numpy(),
            "edited_at": keep["changed_at"].to_numpy(),
            "until": (keep["changed_at"] + pd.Timedelta(days=days)).to_numpy(),
            "reason": KEPT_REASON,
        }
    )
    kept = kept[
        kept.set_index(["contact_id", "field"]).index.isin(
            long.set_index(["contact_id", "field"]).index
        )
    ].reset_index(drop=True)
    return Protected(_with_changes(out), kept)
