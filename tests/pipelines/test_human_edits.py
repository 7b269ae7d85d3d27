"""A value a person set on a protected field stays for the period; heatsync's own value, another
integration's, an expired edit or one the CRM no longer holds do not."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.human_edits import (
    KEPT_REASON,
    never_written,
    parse_policy,
    policy_of,
    protect,
    to_ask,
)

NOW = pd.Timestamp("2026-12-07 09:00", tz="UTC")


def _updates(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(contact, new temperature, new score) → field_changes-shaped updates, both changed."""
    return pd.DataFrame(
        {
            "contact_id": [r[0] for r in rows],
            "temperature": [r[1] for r in rows],
            "score": [r[2] for r in rows],
            "changed_temperature": True,
            "changed_score": True,
        }
    )


def _contacts(held: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": list(held),
            "current_temperature": list(held.values()),
            "current_score": "50",
        }
    )


def test_policies_default_and_parse() -> None:
    assert policy_of("temperature", {}) == "respect_human_edits"
    assert policy_of("segment", {}) == "respect_human_edits"
    assert policy_of("score", {}) == "overwrite"
    assert policy_of("temperature", {"temperature": "overwrite"}) == "overwrite"
    assert parse_policy("temperature=overwrite; score = never_write") == {
        "temperature": "overwrite",
        "score": "never_write",
    }
    with pytest.raises(ValueError, match="FIELD=POLICY"):
        parse_policy("temperature=sometimes")


def test_never_write_drops_the_field_and_empty_rows() -> None:
    updates = _updates(("1", "hot", "90"))
    out = never_written(updates, {"temperature": "never_write"})
    assert out["changed_temperature"].tolist() == [False]
    assert out["changed_score"].tolist() == [True]
    both = never_written(updates, {"temperature": "never_write", "score": "never_write"})
    assert both.empty


def test_only_protected_fields_whose_crm_value_is_not_ours_are_asked_about() -> None:
    updates = _updates(("1", "hot", "90"), ("2", "hot", "90"), ("3", "hot", "90"))
    contacts = _contacts({"1": "cold", "2": "warm", "3": ""})
    # heatsync wrote cold for 1 (the CRM still holds it); 2 holds warm, which heatsync never wrote
    written = pd.DataFrame({"contact_id": ["1", "2"], "field": "temperature", "value": "cold"})
    asked = to_ask(updates, contacts, written, {})
    assert asked.to_dict("records") == [{"contact_id": "2", "field": "temperature"}]
    # score is overwrite by default: never asked; a protected score would be
    asked = to_ask(updates, contacts, written, {"score": "respect_human_edits"})
    assert ("1", "score") in set(zip(asked["contact_id"], asked["field"], strict=True))


def _edits(*rows: tuple[str, str, str, str, str]) -> pd.DataFrame:
    """(contact, value, changed_at, source, by)."""
    return pd.DataFrame(
        {
            "contact_id": [r[0] for r in rows],
            "field": "temperature",
            "value": [r[1] for r in rows],
            "changed_at": pd.to_datetime([r[2] for r in rows], utc=True),
            "source": [r[3] for r in rows],
            "by": [r[4] for r in rows],
        }
    )


def test_a_persons_edit_after_ours_is_kept_for_the_period() -> None:
    updates = _updates(*[(c, "cold", "20") for c in "12345"])
    contacts = _contacts({"1": "warm", "2": "warm", "3": "warm", "4": "hot", "5": "warm"})
    ours = pd.DataFrame(
        {
            "contact_id": list("12345"),
            "field": "temperature",
            "at": pd.Timestamp("2026-11-30", tz="UTC"),
        }
    )
    edits = _edits(
        ("1", "warm", "2026-12-05", "person", "rep-7"),  # a rep's edit: kept
        ("2", "warm", "2026-12-05", "integration", "app-9"),  # another integration: overwritten
        ("3", "warm", "2026-10-01", "person", "rep-7"),  # older than 30 days: overwritten
        ("4", "warm", "2026-12-05", "person", "rep-7"),  # the CRM no longer holds it: overwritten
        ("5", "warm", "2026-11-20", "person", "rep-7"),  # before heatsync's last write: overwritten
    )
    done = protect(updates, contacts, edits, ours, NOW, days=30)
    assert done.kept["contact_id"].tolist() == ["1"]
    kept = done.kept.iloc[0]
    assert (kept["field"], kept["value"], kept["by"], kept["reason"]) == (
        "temperature",
        "warm",
        "rep-7",
        KEPT_REASON,
    )
    assert kept["until"] == pd.Timestamp("2027-01-04", tz="UTC")
    sent = done.updates.set_index("contact_id")
    # the score still goes out for 1; its temperature does not
    assert not sent.at["1", "changed_temperature"] and sent.at["1", "changed_score"]
    assert sent.loc[list("2345"), "changed_temperature"].all()
    # when the period has run out, heatsync writes again
    later = protect(updates, contacts, edits, ours, NOW + pd.Timedelta(days=29), days=30)
    assert later.kept.empty


def test_a_persons_value_on_a_contact_heatsync_never_wrote_is_kept() -> None:
    updates = _updates(("1", "cold", "20"))
    contacts = _contacts({"1": "hot"})
    none_written = pd.DataFrame({"contact_id": [], "field": [], "at": []})
    edits = _edits(("1", "hot", "2026-12-06", "person", "rep-1"))
    done = protect(updates, contacts, edits, none_written, NOW, days=30)
    assert done.kept["contact_id"].tolist() == ["1"]


def test_the_environment_sets_the_policy_and_the_period() -> None:
    from pipelines.config import SettingsError, heatsync_config

    config = heatsync_config(
        {"HEATSYNC_FIELD_POLICY": "segment=overwrite", "HEATSYNC_HUMAN_EDIT_DAYS": "7"}
    )
    assert (dict(config.field_policy), config.human_edit_days) == ({"segment": "overwrite"}, 7)
    assert heatsync_config({}).human_edit_days == 30
    with pytest.raises(SettingsError, match="HEATSYNC_FIELD_POLICY"):
        heatsync_config({"HEATSYNC_FIELD_POLICY": "segment=maybe"})
