"""Property-based tests of the file CLI's readers and of the plain-text promise of its output.

Random cells (odd unicode, huge text, formulas, bad and out-of-range dates, unknown enum values,
duplicate ids) are written to CSV and Parquet files and read with `pipelines.files.read_tables`:
either the tables come back conformed, or a FileError names the file, the row and the column of
each problem. Nothing else may escape. A contact named like a template, HTML or a spreadsheet
formula reaches its task's subject and body as the same literal text.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipelines.files import FileError, read_tables
from scoring import contract, load_config
from scoring.score import score_contacts
from scoring.tasks import plan_tasks

CELLS = (
    "",
    " ",
    "null",
    "0",
    "-1",
    "1e400",
    "nan",
    "inf",
    "yes",
    "maybe",
    "call",
    "CALL",
    "telepathy",
    "won",
    "inbound",
    "sideways",
    "2026-01-05",
    "2026-01-05T14:30:00+02:00",
    "0000-01-01",
    "99999-01-01",
    "2300-01-01",
    "1600-01-01",
    "2024-02-30",
    "12-31",
    "--02-29",
    "13-45",
    "\u200f\u202eevil\u202c",
    "\u200b",
    "a\x00b",
    "🔥",
    '"quoted, with comma"',
    "line\nbreak",
    '=HYPERLINK("http://x","y")',
    "{{7*7}}",
    "<script>alert(1)</script>",
    "x" * 100_000,
)
COLUMNS = {
    "contacts": (
        "contact_id",
        "created_at",
        "birthday",
        "is_vip",
        "current_score",
        "name",
        "emial",
    ),
    "activities": ("activity_id", "contact_id", "occurred_at", "type", "direction", "duration_s"),
    "deals": ("deal_id", "contact_id", "status", "closed_at", "created_at", "stage_probability"),
}
cell = st.one_of(st.sampled_from(CELLS), st.text(max_size=12), st.sampled_from(("1", "2", "3")))


@st.composite
def table(draw: st.DrawFn, name: str) -> pd.DataFrame:
    columns = draw(st.lists(st.sampled_from(COLUMNS[name]), min_size=1, unique=True))
    rows = draw(st.integers(0, 4))
    return pd.DataFrame({c: [draw(cell) for _ in range(rows)] for c in columns})


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        # a lone surrogate cannot be UTF-8: write it as the replacement the reader would see
        frame.to_csv(path, index=False, encoding="utf-8", errors="replace")
    else:
        frame.to_parquet(path, index=False)


LINE = re.compile(
    r"^(contacts|activities|deals)\.(csv|parquet)(, column [^:]+| row \d+(, column .+?)?)?: .+"
)


def _read(frames: dict[str, pd.DataFrame], suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, Path] = {}
        for name, frame in frames.items():
            paths[name] = Path(tmp) / f"{name}{suffix}"
            _write(frame, paths[name])
        try:
            tables = read_tables(paths["contacts"], paths.get("activities"), paths.get("deals"))
        except FileError as exc:
            assert exc.problems
            for line in exc.problems:
                assert LINE.match(line), line  # file, then row and/or column, then the problem
            return
    for name in ("contacts", "activities", "deals"):
        got: pd.DataFrame = getattr(tables, name)
        assert list(got.columns[: len(contract.TABLES[name])]) == list(contract.TABLES[name])
        key = list(contract.KEYS[name])
        assert not got.duplicated(key).any()


@given(
    table("contacts"), table("activities"), table("deals"), st.sampled_from((".csv", ".parquet"))
)
@example(
    pd.DataFrame({"contact_id": ["1", "2"], "birthday": ["0001-01-01", "2300-01-01"]}),
    pd.DataFrame({"contact_id": ["1"], "occurred_at": ["99999-01-01"], "type": ["call"]}),
    pd.DataFrame({"contact_id": ["1"], "status": ["won"], "closed_at": ["1600-01-01"]}),
    ".csv",
)
def test_files_are_read_or_rejected_naming_file_row_and_column(
    contacts: pd.DataFrame, activities: pd.DataFrame, deals: pd.DataFrame, suffix: str
) -> None:
    _read({"contacts": contacts, "activities": activities, "deals": deals}, suffix)


@given(
    st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from((1e20, 1e300, -1e300, 2.5)),
        ),
        min_size=1,
        max_size=4,
    )
)
@example([1e20])
@example([1e300, 1.0])
def test_parquet_ids_of_any_number_are_read_or_rejected(ids: list[Any]) -> None:
    contacts = pd.DataFrame({"contact_id": pd.Series(ids, dtype="float64")})
    _read({"contacts": contacts}, ".parquet")


LITERALS = (
    "<script>alert(1)</script>",
    "{{7*7}}",
    "{score}",
    "{name}",
    "${7*7}",
    "%(name)s",
    '=HYPERLINK("http://evil","click")',
    "+SUM(A1:A9)",
    "@cmd",
)


# scoring a contact takes ~0.2 s: a sixth of the profile's budget (every literal still runs)
@settings(max_examples=max(len(LITERALS), settings().max_examples // 6))
@given(st.sampled_from(LITERALS), st.text(max_size=20))
def test_names_reach_task_subjects_and_bodies_as_literal_text(literal: str, tail: str) -> None:
    name = (literal + tail).strip() or literal
    as_of = pd.Timestamp("2026-03-01", tz="UTC")
    contacts = contract.conform(
        pd.DataFrame(
            {
                "contact_id": ["1"],
                "portal": ["p"],
                "created_at": ["2025-01-01"],
                "owner_id": ["7"],
                "name": [name],
            }
        ),
        "contacts",
    )
    activities = contract.conform(
        pd.DataFrame(
            {
                "activity_id": [f"a{i}" for i in range(3)],
                "contact_id": ["1"] * 3,
                "portal": ["p"] * 3,
                "occurred_at": ["2026-02-28T10:00:00Z"] * 3,
                "type": ["form_submission", "call", "email_reply"],
                "direction": ["inbound"] * 3,
                "text": [name] * 3,
            }
        ),
        "activities",
    )
    config = load_config(None)
    scores = score_contacts(contacts, activities, contract.empty("deals"), as_of, config)
    assert name not in " ".join(scores["reasons"].fillna(""))  # reasons never quote CRM text
    plan = plan_tasks(scores, contacts, as_of, config)
    assert len(plan.tasks) == 1
    task = plan.tasks.iloc[0]
    assert name in task["subject"] + task["body"]
    assert "49" not in (task["subject"] + task["body"]).replace(name, "")  # nothing evaluated
