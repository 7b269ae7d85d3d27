"""The Arrow reader (pipelines/files_arrow.py) against the pandas reference (files_frame.py).

Messy cells (padding, case, NA words, odd whitespace, bad dates and numbers, repeated and
generated-looking ids) are written to CSV and Parquet, Parquet also with dictionary-encoded
columns, and read both ways: the same table (values, dtypes, str objects) or the same problems
in the same order. Also: the Arrow path is the one taken, and CSV and Parquet give the same.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipelines import files_arrow, files_frame, files_text
from pipelines.files import FileError, read_table
from pipelines.files_text import WHITESPACE

CELLS = (
    "",
    " ",
    "  null",
    "null ",
    "NA",
    "\u3000",
    "\xa0x\xa0",
    "\u200b",
    "call",
    " CALL ",
    "Page_View",
    "telepathy",
    "Won",
    " lost",
    "pending",
    "INBOUND",
    "yes",
    " No ",
    "maybe",
    "1",
    " 2.5 ",
    "1e400",
    "lots",
    "0.5",
    "80",
    "2026-01-05",
    " 2026-01-05 14:30 ",
    "2026-01-05T14:30:00+02:00",
    "2026-01-05Z",
    "2024-02-30",
    "12-31",
    "--02-29",
    "2300-01-01",
    "a1",
    " a1",
    "row-1",
    "row-2",
    "İ",
    "x" * 70,
)
COLUMNS = {
    "contacts": ("contact_id", "portal", "created_at", "birthday", "is_vip", "current_score", "x"),
    "activities": (
        "activity_id",
        "contact_id",
        "portal",
        "occurred_at",
        "type",
        "direction",
        "duration_s",
        "is_rollup",
    ),
    "deals": (
        "deal_id",
        "contact_id",
        "status",
        "closed_at",
        "created_at",
        "stage_probability",
    ),
}
cell = st.one_of(st.sampled_from(CELLS), st.text(max_size=6), st.none())


@st.composite
def frames(draw: st.DrawFn, table: str) -> pd.DataFrame:
    columns = draw(st.lists(st.sampled_from(COLUMNS[table]), min_size=1, unique=True))
    rows = draw(st.integers(0, 6))
    return pd.DataFrame(
        {c: pd.Series([draw(cell) for _ in range(rows)], dtype=object) for c in columns}
    )


def _write(frame: pd.DataFrame, path: Path, dictionary: bool = False) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8", errors="replace")
        return
    data = pa.Table.from_pandas(frame, preserve_index=False)
    if dictionary:
        data = pa.table(
            {
                n: c.dictionary_encode() if pa.types.is_string(c.type) else c
                for n, c in zip(data.column_names, data.columns, strict=True)
            }
        )
    pq.write_table(data, path)


def _both(path: Path, table: str) -> tuple[object, object]:
    """What read_table and the pandas reference make of a file: a frame or the problems."""
    results: list[object] = []
    for read in (
        lambda: read_table(path, table),
        lambda: files_frame.validate(files_frame.read_raw(path), table, path.name),
    ):
        try:
            results.append(read())
        except FileError as exc:
            results.append(exc.problems)
    return results[0], results[1]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its categorical and Arrow text columns as str objects (None if missing),
    after checking they are the columns the Arrow reader hands over that way."""
    out = frame.copy()
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) or dtype == files_arrow.TEXT:
            known = {c for cs in files_arrow.CATEGORICAL.values() for c in cs} | {"activity_id"}
            assert column in known, column
            values = frame[column].astype(object)
            out[column] = values.where(frame[column].notna(), None)
    return out


def _same(got: object, want: object) -> None:
    if isinstance(want, list):
        assert got == want
        return
    assert isinstance(got, pd.DataFrame) and isinstance(want, pd.DataFrame), (got, want)
    plain = _plain(got)
    pd.testing.assert_frame_equal(plain, want, check_exact=True)
    for column in plain.columns[[d == np.dtype(object) for d in plain.dtypes]]:
        kinds = {type(v) for v in plain[column]} - {type(None)}
        assert kinds == {type(v) for v in want[column]} - {type(None)}, column


@given(
    st.sampled_from(("contacts", "activities", "deals")),
    st.data(),
    st.sampled_from((".csv", ".parquet", ".dict.parquet")),
)
def test_arrow_reader_gives_the_tables_and_problems_of_the_reference(
    table: str, data: st.DataObject, suffix: str
) -> None:
    frame = data.draw(frames(table))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{table}{suffix.replace('.dict', '')}"
        _write(frame, path, dictionary=suffix.startswith(".dict"))
        got, want = _both(path, table)
    _same(got, want)


def _activities(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "contact_id": ["c1"] * n,
        "occurred_at": ["2026-01-05"] * n,
        "type": ["call"] * n,
    }
    return pd.DataFrame({**base, **columns})


def test_padded_upper_case_enums_in_a_dictionary_column(tmp_path: Path) -> None:
    types = [" CALL", "call ", "Page_View", "\u3000EMAIL_OPEN\t", "call"] * 3
    path = tmp_path / "activities.parquet"
    _write(_activities(type=types), path, dictionary=True)
    assert pa.types.is_dictionary(pq.read_schema(path).field("type").type)
    raw = files_arrow.read_arrow(path, "activities")
    assert raw is not None and pa.types.is_dictionary(raw.data["type"].type)
    got, want = _both(path, "activities")
    _same(got, want)
    assert isinstance(got, pd.DataFrame)
    assert got["type"].tolist()[:5] == ["call", "call", "page_view", "email_open", "call"]
    # handed over as a categorical of the distinct values once stripped and lower-cased
    assert isinstance(got["type"].dtype, pd.CategoricalDtype)
    assert sorted(got["type"].cat.categories) == ["call", "email_open", "page_view"]

    bad = [*types[:-1], " Telepathy "]
    _write(_activities(type=bad), path, dictionary=True)
    got, want = _both(path, "activities")
    assert (
        got
        == want
        == [
            "activities.parquet row 15, column type: unknown activity type ' Telepathy ' "
            "(expected one of: " + ", ".join(files_frame.ENUMS["activities"]["type"][1]) + ")"
        ]
    )


def test_csv_and_parquet_give_the_same_table(tmp_path: Path) -> None:
    frame = _activities(
        activity_id=["a1", " a2", "a3 ", None, "a5", "a6"],
        contact_id=["c1", " c1", "c2", "c2 ", "\xa0c3", "c3"],
        occurred_at=["2026-01-05", " 2026-01-05 14:30", "2026-01-05T14:30:00+02:00", "", "x", None],
        type=["CALL", " page_view", "Email_Open ", "call", "call", "note"],
        direction=["inbound", None, " OUTBOUND", "", "inbound", "inbound"],
        duration_s=["60", " 1e3 ", "", None, "2.5", "0"],
        is_rollup=["yes", "no", "", None, "TRUE", "0"],
    )
    frame.loc[4, "occurred_at"] = "2026-02-01"
    frame.loc[5, "occurred_at"] = "2026-02-02 10:00Z"
    frame.loc[3, "occurred_at"] = "2026-02-03"
    tables = []
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"activities{suffix}"
        _write(frame, path)
        assert files_arrow.read_arrow(path, "activities") is not None  # the Arrow path reads it
        tables.append(read_table(path, "activities"))
    pd.testing.assert_frame_equal(_plain(tables[0]), _plain(tables[1]), check_exact=True)
    assert tables[0]["activity_id"].tolist() == ["a1", "a2", "a3", "row-4", "a5", "a6"]
    assert tables[0]["contact_id"].tolist() == ["c1", "c1", "c2", "c2", "c3", "c3"]


def test_csv_spacing_and_na_words_read_as_pandas_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "activities.csv"
    path.write_text(
        "\ufeff activity_id , contact_id,occurred_at,type,x\n"
        "a1,  null,2026-01-05,call, null\n"
        "a2,c2,  2026-01-06 ,  CALL ,  x \n"
        "\n"
        "a3,c3,N/A,call,null \n",
        encoding="utf-8",
    )
    assert files_arrow.read_arrow(path, "activities") is not None
    got, want = _both(path, "activities")
    assert (
        got
        == want
        == [
            "activities.csv row 1, column contact_id: missing value",
            "activities.csv row 3, column occurred_at: missing value",
        ]
    )
    path.write_text(path.read_text().replace("  null", "c1").replace("N/A", "2026-01-07"))
    got, want = _both(path, "activities")
    _same(got, want)
    assert isinstance(got, pd.DataFrame)
    assert got["x"].tolist()[1:] == ["x ", "null "] and pd.isna(got["x"][0])


@pytest.mark.parametrize(
    "body",
    [
        'activity_id,contact_id,occurred_at,type\na1, "c1,c2",2026-01-05,call\n',
        'activity_id,contact_id,occurred_at,type\na1," null",2026-01-05,call\n',
        "activity_id,contact_id,occurred_at,type\na1,c\x001,2026-01-05,call\n",
        "activity_id,contact_id,occurred_at,type\na1,c1,2026-01-05\n",
        "activity_id,activity_id,occurred_at,type\na1,c1,2026-01-05,call\n",
        "activity_id,contact_id,occurred_at,type\na1,c1,2026-01-05,call,extra\n",
        'contact_id\n""\nc1\n\n',
        "",
    ],
)
def test_csv_that_arrow_would_read_differently_goes_to_pandas(tmp_path: Path, body: str) -> None:
    path = tmp_path / "activities.csv"
    path.write_text(body, encoding="utf-8")
    assert files_arrow.read_arrow(path, "activities") is None
    got, want = _both(path, "activities")
    _same(got, want)


def test_duplicate_ids_after_trimming_and_generated_ids(tmp_path: Path) -> None:
    path = tmp_path / "activities.parquet"
    _write(_activities(activity_id=["a1", "a2", " a1", "a3", "a2\t"]), path)
    got, want = _both(path, "activities")
    assert (
        got
        == want
        == [
            "activities.parquet row 3, column activity_id: duplicate activity id 'a1' "
            "(first at row 1) (also row 5)"
        ]
    )
    # a given id equal to the one a row without an id gets
    _write(_activities(activity_id=["row-2", None, "a3"]), path)
    got, want = _both(path, "activities")
    assert got == want
    assert got == [
        "activities.parquet row 2, column activity_id: duplicate activity id 'row-2' "
        "(first at row 1)"
    ]
    # ids too long to hash with numpy, once each and repeated
    long = ["x" * 100 + str(i) for i in range(4)]
    _write(_activities(activity_id=long), path)
    _same(*_both(path, "activities"))
    _write(_activities(activity_id=[*long, long[1]]), path)
    got, want = _both(path, "activities")
    assert got == want and "row 5, column activity_id: duplicate" in str(got)


def test_a_deal_may_repeat_for_other_contacts_not_for_the_same(tmp_path: Path) -> None:
    path = tmp_path / "deals.parquet"
    deals = pd.DataFrame(
        {
            "deal_id": ["d1", "d1", "d2", "d1 "],
            "contact_id": ["c1", "c2", "c1", "c1"],
            "status": ["won"] * 4,
            "closed_at": ["2026-01-05"] * 4,
        }
    )
    _write(deals, path)
    got, want = _both(path, "deals")
    assert (
        got
        == want
        == [
            "deals.parquet row 4, column deal_id: duplicate deal for this contact 'd1' "
            "(first at row 1)"
        ]
    )
    _write(deals.iloc[:3], path)
    _same(*_both(path, "deals"))


def test_many_unique_ids_are_checked_without_a_hash_table(tmp_path: Path) -> None:
    n = 50_000
    ids = pd.Series(np.arange(n)).map("id-{:07d}".format)
    path = tmp_path / "contacts.parquet"
    _write(pd.DataFrame({"contact_id": ids}), path)
    got, want = _both(path, "contacts")
    _same(got, want)
    ids[n - 1] = f" {ids[17]}  "
    _write(pd.DataFrame({"contact_id": ids}), path)
    got, want = _both(path, "contacts")
    assert (
        got
        == want
        == [
            f"contacts.parquet row {n}, column contact_id: duplicate contact id 'id-0000017' "
            "(first at row 18)"
        ]
    )


def test_whitespace_is_what_str_strip_removes() -> None:
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert WHITESPACE == every


def test_a_column_heatsync_does_not_know_is_kept_as_pandas_reads_it(tmp_path: Path) -> None:
    frame = pd.DataFrame({"contact_id": ["c1", "c2"], "x": ["", " a "], "n": [1.5, None]})
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"contacts{suffix}"
        _write(frame, path)
        got, want = _both(path, "contacts")
        _same(got, want)
        assert isinstance(got, pd.DataFrame) and got["x"].dtype == object


def test_unknown_contacts_counts_rows_from_the_pairs_read(tmp_path: Path) -> None:
    from pipelines.files import read_tables, unknown_contacts

    paths = {t: tmp_path / f"{t}.parquet" for t in ("contacts", "activities", "deals")}
    _write(
        pd.DataFrame({"contact_id": ["c1", "c2", "c1"], "portal": ["p", "p", "q"]}),
        paths["contacts"],
    )
    activities = _activities(
        contact_id=["c1", "c3", " c3", "c2", "c2", "c1"], portal=["p", "p", "p", "q", "p", None]
    )
    _write(activities, paths["activities"])
    deals = pd.DataFrame({"contact_id": ["c1"], "status": ["won"], "closed_at": ["2026-01-05"]})
    _write(deals, paths["deals"])
    tables = read_tables(paths["contacts"], paths["activities"], paths["deals"])
    assert set(tables.contact_rows) == {"contacts", "activities", "deals"}
    # c3 twice, c2 in portal q, c1 in the default portal: 4 rows; the deal is in "default"
    assert unknown_contacts(tables) == {"activities": 4, "deals": 1}
    counted = dict(tables.contact_rows)
    tables.contact_rows = {}  # every row hashed again: the same counts
    assert unknown_contacts(tables) == {"activities": 4, "deals": 1}
    tables.contact_rows = counted
    tables.activities = tables.activities.iloc[:2].copy()  # a frame replaced: counted afresh
    assert unknown_contacts(tables) == {"activities": 1, "deals": 1}


def test_typed_parquet_columns_as_the_reference_reads_them(tmp_path: Path) -> None:
    when = pd.Series(pd.to_datetime(["2026-01-05 14:30", None, "2025-12-31 00:00"]))
    activities = pd.DataFrame(
        {
            "activity_id": [1.0, 2.0, 3.0],  # float ids: "1", "2", "3"
            "contact_id": pd.Series([7, 8, 7], dtype="int64"),
            "occurred_at": when.dt.tz_localize("UTC"),
            "type": ["call", "CALL", "note"],
            "duration_s": pd.Series([60, None, 5], dtype="Int64"),
            "is_rollup": pd.Series([True, None, False], dtype="boolean"),
        }
    )
    contacts = pd.DataFrame(
        {
            "contact_id": ["7", "8", "9"],
            "created_at": when.dt.tz_localize("Europe/Berlin").astype(
                "datetime64[us, Europe/Berlin]"
            ),
            "birthday": when,
            "is_vip": [1, 0, 1],
            "current_score": pd.Series([1, 2, 3], dtype="int32"),
        }
    )
    for table, frame in (("activities", activities), ("contacts", contacts)):
        path = tmp_path / f"{table}.parquet"
        frame.to_parquet(path, index=False)
        got, want = _both(path, table)
        _same(got, want)
    activities.loc[1, "occurred_at"] = pd.NaT
    path = tmp_path / "activities.parquet"
    activities.to_parquet(path, index=False)
    got, want = _both(path, "activities")
    assert got == want == ["activities.parquet row 2, column occurred_at: missing value"]


@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from("0123456789٣٤१२ :.,+-ZzT\u3000\xa0\t\u2009x"), max_size=24
        ).map(str.strip),
        min_size=1,
        max_size=20,
    )
)
@example(["2026-01-05T14:30:00+02:00", "2026-01-05 14:30Z", "2026-01-05 1٤:3٣ \u3000+0200"])
def test_the_offset_pattern_matches_what_python_matches(texts: list[str]) -> None:
    import re

    want = [re.search(files_frame._OFFSET, t) is not None for t in texts]
    assert files_arrow.has_offset(np.asarray(texts, dtype=object)).tolist() == want


def test_an_id_repeated_in_another_row_group_of_other_widths(tmp_path: Path) -> None:
    first = ["a1", "b" * 40, "c3"]  # a long id beside "a1" in the first row group only
    second = ["d4", "a1", "e5"]
    path = tmp_path / "contacts.parquet"
    pq.write_table(pa.table({"contact_id": first + second}), path, row_group_size=3)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    got, want = _both(path, "contacts")
    assert (
        got
        == want
        == ["contacts.parquet row 5, column contact_id: duplicate contact id 'a1' (first at row 1)"]
    )


@pytest.mark.parametrize("split_from", [1, 10**9])
def test_duplicate_id_numbers_are_found_in_either_half_of_the_split_sort(
    monkeypatch: pytest.MonkeyPatch, split_from: int
) -> None:
    monkeypatch.setattr(files_text, "SPLIT_SORT_ROWS", split_from)
    rng = np.random.default_rng(5)
    numbers = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64, endpoint=True)
    numbers[:3] = [0, 2**63, 2**64 - 1]  # both halves and the boundary between them
    assert not files_text._repeats(numbers.copy())
    for at in (1, 2, 4000):  # a repeat of a number in the low half, the high half, either
        repeated = np.append(numbers, numbers[at])
        rng.shuffle(repeated)
        assert files_text._repeats(repeated) == (len(np.unique(repeated)) < len(repeated))
        assert files_text._repeats(np.append(numbers, numbers[at]))
