"""`heatsync score`, `backtest` and `calibrate` on CSV and Parquet files, with no CRM or Dagster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import PROJECT_ROOT, main
from scoring import contract, load_config

AS_OF = "2026-03-01"


def _contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["0007", "0008", "0009", "0010"],
            "created_at": ["2025-06-01", "2025-09-15", "2026-01-10", "2025-02-01"],
            "email": ["a@example.com", None, "c@example.com", "d@example.com"],
            "is_vip": ["yes", "", "no", "false"],
        }
    )


def _activities() -> pd.DataFrame:
    rows = [
        ("a1", "0007", "2026-02-27T10:00:00Z", "form_submission", "inbound", None, "need a quote"),
        ("a2", "0007", "2026-02-28 09:30", "call", "inbound", "connected", None),
        ("a3", "0007", "2026-02-20", "page_view", None, None, None),
        ("a4", "0008", "2026-01-05", "email_open", "inbound", None, None),
        ("a5", "0009", "2026-02-25T16:00:00+02:00", "meeting", None, "completed", None),
        ("a6", "0010", "2025-05-01", "email_sent", "outbound", None, None),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "activity_id",
            "contact_id",
            "occurred_at",
            "type",
            "direction",
            "outcome",
            "text",
        ],
    )


def _deals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["0007", "0010", "0010"],
            "status": ["won", "won", "lost"],
            "closed_at": ["2026-02-15", "2025-03-01", "2025-08-01"],
            "amount": ["1200", "300.5", ""],
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _files(
    tmp: Path,
    ext: str = "csv",
    contacts: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    deals: pd.DataFrame | None = None,
) -> dict[str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        "contacts": _write(_contacts() if contacts is None else contacts, tmp / f"contacts.{ext}"),
        "activities": _write(
            _activities() if activities is None else activities, tmp / f"activities.{ext}"
        ),
        "deals": _write(_deals() if deals is None else deals, tmp / f"deals.{ext}"),
    }


def _args(files: dict[str, Path], *extra: str) -> list[str]:
    out: list[str] = []
    for name, path in files.items():
        out += [f"--{name}", str(path)]
    return [*out, "--as-of", AS_OF, "--quiet", *extra]


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"contact_id": str})
    return pd.read_parquet(path)


@pytest.mark.parametrize(("in_ext", "out_ext"), [("csv", "csv"), ("parquet", "parquet")])
def test_score_writes_contract_columns(tmp_path: Path, in_ext: str, out_ext: str) -> None:
    out = tmp_path / f"scores.{out_ext}"
    assert main(["score", *_args(_files(tmp_path, in_ext)), "--out", str(out)]) == 0
    scores = _read(out)
    assert list(scores.columns[: len(contract.SCORES)]) == list(contract.SCORES)
    assert scores["contact_id"].tolist() == ["0007", "0008", "0009", "0010"]  # zeros kept
    assert set(scores["portal"]) == {"default"}
    assert set(scores["temperature"]) <= set(contract.TEMPERATURES)
    assert scores["score"].between(0, 100).all()
    assert pd.to_datetime(scores["as_of"], utc=True).eq(pd.Timestamp(AS_OF, tz="UTC")).all()
    hottest = scores.set_index("contact_id").loc["0007"]
    assert hottest["score"] == scores["score"].max()
    assert "," in hottest["reason_codes"] and " " not in hottest["reason_codes"]
    assert "; " in hottest["reasons"]
    assert bool(hottest["is_vip"]) is True


def test_csv_and_parquet_inputs_score_the_same(tmp_path: Path) -> None:
    results = []
    for ext in ("csv", "parquet"):
        out = tmp_path / f"scores-{ext}.csv"
        assert main(["score", *_args(_files(tmp_path / ext, ext)), "--out", str(out)]) == 0
        results.append(pd.read_csv(out, dtype={"contact_id": str}))
    pd.testing.assert_frame_equal(results[0], results[1])


def test_score_without_activities_or_deals(tmp_path: Path) -> None:
    files = _files(tmp_path)
    out = tmp_path / "scores.csv"
    args = ["score", "--contacts", str(files["contacts"]), "--as-of", AS_OF, "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert len(pd.read_csv(out)) == 4


def test_events_after_the_date_change_nothing(tmp_path: Path) -> None:
    base = tmp_path / "base.csv"
    assert main(["score", *_args(_files(tmp_path / "a")), "--out", str(base)]) == 0

    later = pd.DataFrame(
        [
            ("late1", "0008", "2026-03-01T00:00:01Z", "form_submission", "inbound", None),
            ("late2", "0009", "2026-03-05", "call", "inbound", "connected"),
        ],
        columns=["activity_id", "contact_id", "occurred_at", "type", "direction", "outcome"],
    )
    activities = pd.concat([_activities(), later], ignore_index=True)
    deals = pd.concat(
        [
            _deals(),
            pd.DataFrame({"contact_id": ["0008"], "status": ["won"], "closed_at": ["2026-03-02"]}),
        ]
    )
    contacts = pd.concat(
        [_contacts(), pd.DataFrame({"contact_id": ["0011"], "created_at": ["2026-03-02"]})]
    )
    files = _files(tmp_path / "b", activities=activities, deals=deals, contacts=contacts)
    with_later = tmp_path / "with_later.csv"
    assert main(["score", *_args(files), "--out", str(with_later)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(base, dtype=str), pd.read_csv(with_later, dtype=str))

    # An event at 00:00 UTC of the date itself is known.
    at_midnight = later.assign(occurred_at="2026-03-01T00:00:00Z").iloc[:1]
    files = _files(tmp_path / "c", activities=pd.concat([_activities(), at_midnight]))
    known = tmp_path / "known.csv"
    assert main(["score", *_args(files), "--out", str(known)]) == 0
    before = pd.read_csv(base, dtype={"contact_id": str}).set_index("contact_id")
    after = pd.read_csv(known, dtype={"contact_id": str}).set_index("contact_id")
    assert after.loc["0008", "score"] > before.loc["0008", "score"]


BAD_FILES = [
    pytest.param(
        "contacts",
        lambda: _contacts().rename(columns={"contact_id": "id"}),
        ["contacts.csv", "column contact_id", "missing"],
        id="contacts-missing-column",
    ),
    pytest.param(
        "activities",
        lambda: _activities().drop(columns="occurred_at"),
        ["activities.csv", "column occurred_at", "missing"],
        id="activities-missing-column",
    ),
    pytest.param(
        "deals",
        lambda: _deals().drop(columns="closed_at"),
        ["deals.csv", "column closed_at or created_at", "missing"],
        id="deals-missing-dates",
    ),
    pytest.param(
        "activities",
        lambda: _activities().assign(
            occurred_at=lambda f: f["occurred_at"].where(f.index != 2, "31/02/2026")
        ),
        ["activities.csv row 3, column occurred_at: cannot read '31/02/2026' as a date"],
        id="bad-date",
    ),
    pytest.param(
        "deals",
        lambda: _deals().assign(closed_at=["2026-02-15", "2025-02-30", "2025-08-01"]),
        ["deals.csv row 2, column closed_at: cannot read '2025-02-30' as a date"],
        id="impossible-date",
    ),
    pytest.param(
        "activities",
        lambda: _activities().assign(type=lambda f: f["type"].where(f.index != 4, "telepathy")),
        ["activities.csv row 5, column type: unknown activity type 'telepathy'"],
        id="unknown-activity-type",
    ),
    pytest.param(
        "activities",
        lambda: _activities().assign(type=lambda f: f["type"].where(f.index != 1, None)),
        ["activities.csv row 2, column type: missing value"],
        id="missing-type",
    ),
    pytest.param(
        "deals",
        lambda: _deals().assign(status=["won", "closed won", "lost"]),
        ["deals.csv row 2, column status: unknown deal status 'closed won'"],
        id="unknown-deal-status",
    ),
    pytest.param(
        "contacts",
        lambda: _contacts().assign(contact_id=["0007", "0008", "0007", "0010"]),
        ["contacts.csv row 3, column contact_id: duplicate contact id '0007' (first at row 1)"],
        id="duplicate-contact",
    ),
    pytest.param(
        "activities",
        lambda: _activities().assign(activity_id=["a1", "a2", "a3", "a4", "a2", "a6"]),
        ["activities.csv row 5, column activity_id: duplicate activity id 'a2' (first at row 2)"],
        id="duplicate-activity",
    ),
    pytest.param(
        "deals",
        lambda: _deals().assign(amount=["1200", "lots", ""]),
        ["deals.csv row 2, column amount: cannot read 'lots' as a number"],
        id="bad-number",
    ),
    pytest.param(
        "deals",
        lambda: _deals().assign(stage_probability=["", "", "80"]),
        ["deals.csv row 3, column stage_probability: '80.0' is not a probability between 0 and 1"],
        id="probability-out-of-range",
    ),
    pytest.param(
        "contacts",
        lambda: _contacts().assign(is_vip=["yes", "maybe", "", "no"]),
        ["contacts.csv row 2, column is_vip: cannot read 'maybe' as true/false"],
        id="bad-bool",
    ),
]


@pytest.mark.parametrize(("table", "make", "expected"), BAD_FILES)
@pytest.mark.parametrize("command", ["score", "backtest"])
def test_bad_file_names_file_row_column_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    make: object,
    expected: list[str],
    command: str,
) -> None:
    files = _files(tmp_path, **{table: make()})  # type: ignore[operator]
    out = tmp_path / "scores.csv"
    plot = tmp_path / "plot.png"
    extra = ["--out", str(out)] if command == "score" else ["--horizon", "30d", "--plot", str(plot)]
    assert main([command, *_args(files), *extra]) == 2
    captured = capsys.readouterr()
    for text in expected:
        assert text in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists() and not plot.exists()
    assert captured.out == ""


def test_problems_in_several_files_are_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    activities = _activities().assign(
        type=["telepathy", "call", "page_view", "nope", "meeting", "email_sent"],
        occurred_at=lambda f: f["occurred_at"].where(f.index != 5, "yesterday"),
    )
    deals = _deals().assign(status=["won", "won", "pending"])
    files = _files(tmp_path, "parquet", activities=activities, deals=deals)
    out = tmp_path / "scores.parquet"
    assert main(["score", *_args(files), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "activities.parquet row 1, column type: unknown activity type 'telepathy'" in err
    assert "(also row 4)" in err
    assert "activities.parquet row 6, column occurred_at: cannot read 'yesterday'" in err
    assert "deals.parquet row 3, column status: unknown deal status 'pending'" in err
    assert not out.exists()


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["score", *_args(files), "--out", "x.csv", "--as-of", "01/03/2026"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["backtest", *_args(files), "--horizon", "a month"])
    assert exc.value.code == 2
    assert main(["score", *_args(files), "--out", str(tmp_path / "scores.xlsx")]) == 2
    assert "use .csv or .parquet" in capsys.readouterr().err
    missing = ["score", *_args({**files, "deals": tmp_path / "nope.csv"}), "--out", "s.csv"]
    assert main(missing) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_validation_of_a_large_file_finds_the_last_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 200_000
    rng = np.random.default_rng(3)
    contacts = pd.DataFrame({"contact_id": [f"c{i}" for i in range(2_000)]})
    days = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    activities = pd.DataFrame(
        {
            "contact_id": "c" + pd.Series(rng.integers(0, 2_000, n)).astype(str),
            "occurred_at": days.strftime("%Y-%m-%d"),
            "type": rng.choice(["page_view", "email_open", "form_submission"], n),
        }
    )
    activities.loc[n - 1, "occurred_at"] = "2025-13-01"
    files = _files(tmp_path, contacts=contacts, activities=activities, deals=_deals().iloc[:0])
    started = time.perf_counter()
    assert main(["score", *_args(files), "--out", str(tmp_path / "s.csv")]) == 2
    assert time.perf_counter() - started < 15
    err = capsys.readouterr().err
    assert f"activities.csv row {n}, column occurred_at: cannot read '2025-13-01'" in err


def _history(tmp: Path, ext: str = "csv") -> dict[str, Path]:
    """300 contacts whose recent inbound interest makes them buy in the month after AS_OF."""
    rng = np.random.default_rng(7)
    n = 300
    ids = [f"{i:04d}" for i in range(n)]
    interest = rng.random(n)
    contacts = pd.DataFrame({"contact_id": ids, "created_at": "2025-06-01"})
    as_of = pd.Timestamp(AS_OF)
    events = rng.poisson(interest * 6)
    owner = np.repeat(np.arange(n), events)
    age = rng.integers(1, 60, owner.size)
    activities = pd.DataFrame(
        {
            "contact_id": np.array(ids)[owner],
            "occurred_at": (as_of - pd.to_timedelta(age, unit="D")).strftime("%Y-%m-%d"),
            "type": rng.choice(["form_submission", "email_reply", "page_view"], owner.size),
            "direction": "inbound",
        }
    )
    buys = rng.random(n) < 0.1 + 0.7 * interest
    buy_day = as_of + pd.to_timedelta(rng.integers(1, 30, n), unit="D")
    deals = pd.DataFrame(
        {
            "contact_id": np.array(ids)[buys],
            "status": "won",
            "closed_at": buy_day[buys].strftime("%Y-%m-%d"),
            "amount": 100.0,
        }
    )
    return _files(tmp, ext, contacts=contacts, activities=activities, deals=deals)


def test_backtest_prints_figures_and_draws_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _history(tmp_path, "parquet")
    plot = tmp_path / "out" / "backtest.png"
    report = tmp_path / "out" / "backtest.json"
    args = ["backtest", *_args(files), "--horizon", "30d", "--plot", str(plot)]
    assert main([*args, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC 0." in out
    assert "conversion by temperature band" in out
    assert "conversion by segment" in out
    assert "calibration (score bins)" in out
    table = out.split("conversion by temperature band\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == ["band", "n", "converted", "rate"]
    assert [row.split()[0] for row in table[1:]] == ["hot", "warm", "cold"]
    assert sum(int(row.split()[1].replace(",", "")) for row in table[1:]) == 300
    figures = json.loads(report.read_text())
    assert figures["n"] == 300 and figures["horizon_days"] == 30
    assert figures["auc"] > 0.6  # interest drives both the score and the purchases
    assert f"ROC AUC {figures['auc']:.3f}" in out
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_calibrate_writes_a_config_that_score_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _history(tmp_path)
    config = tmp_path / "fitted.yaml"
    args = ["calibrate", *_args(files), "--horizon", "30d", "--out", str(config)]
    assert main(args) == 0
    assert "values differ from the default config" in capsys.readouterr().out
    fitted = load_config(config)
    assert fitted != load_config(None)
    assert fitted.customers.horizon_days == 30
    out = tmp_path / "scores.csv"
    assert main(["score", *_args(files), "--config", str(config), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 300
    # what happened after the outcome window never reaches the fit
    ids = pd.read_csv(files["contacts"], dtype=str)["contact_id"]
    later = pd.DataFrame({"contact_id": ids, "status": "won", "closed_at": "2026-04-01"})
    deals = pd.concat([pd.read_csv(files["deals"], dtype=str), later])
    files["deals"] = _write(deals, tmp_path / "deals-later.csv")
    again = tmp_path / "again.yaml"
    args = ["calibrate", *_args(files), "--horizon", "30d", "--window", "30d", "--out", str(again)]
    assert main(args) == 0
    body = [line for line in config.read_text().splitlines() if not line.startswith("#")]
    assert body == [line for line in again.read_text().splitlines() if not line.startswith("#")]


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("temperature:\n  hot: 500\n")
    out = tmp_path / "s.csv"
    assert (
        main(["score", *_args(_files(tmp_path)), "--config", str(config), "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "temperature.hot" in err
    assert not out.exists()


def test_progress_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    args = [a for a in _args(files) if a != "--quiet"]
    assert main(["score", *args, "--out", str(tmp_path / "s.csv")]) == 0
    captured = capsys.readouterr()
    assert "reading activities.csv" in captured.err and "scoring as of" in captured.err
    assert "reading" not in captured.out


def test_file_commands_do_not_import_dagster(tmp_path: Path) -> None:
    files = _history(tmp_path)
    score = ["score", *_args(files), "--out", str(tmp_path / "s.parquet")]
    backtest = ["backtest", *_args(files), "--horizon", "30d", "--plot", str(tmp_path / "p.png")]
    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        f"assert main({score!r}) == 0\n"
        f"assert main({backtest!r}) == 0\n"
        "assert 'dagster' not in sys.modules, 'dagster was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s.parquet").stat().st_size > 0


@pytest.mark.parametrize(
    ("table", "make", "expected"),
    [
        pytest.param(
            "contacts",
            lambda: _contacts().assign(
                contact_id=["0007", "0007", None, "0010"], is_vip=["yes", "", "no", "maybe"]
            ),
            [
                "contacts.csv row 3, column contact_id: missing value",
                "contacts.csv row 4, column is_vip: cannot read 'maybe' as true/false",
                "contacts.csv row 2, column contact_id: duplicate contact id '0007' "
                "(first at row 1)",
            ],
            id="contacts-missing-id",
        ),
        pytest.param(
            "activities",
            lambda: (
                _activities()
                .assign(activity_id=["a1", "a2", "a3", "a4", "a2", "a6"])
                .drop(columns="type")
            ),
            [
                "activities.csv, column type: missing",
                "activities.csv row 5, column activity_id: duplicate activity id 'a2' "
                "(first at row 2)",
            ],
            id="activities-missing-column",
        ),
        pytest.param(
            "deals",
            lambda: _deals().assign(
                deal_id=["d1", "d1", "d3"], contact_id=["0007", "0007", None], amount="lots"
            ),
            [
                "deals.csv row 3, column contact_id: missing value",
                "deals.csv row 1, column amount: cannot read 'lots' as a number (also rows 2, 3)",
                "deals.csv row 2, column deal_id: duplicate deal for this contact 'd1' "
                "(first at row 1)",
            ],
            id="deals-missing-contact",
        ),
    ],
)
def test_duplicate_ids_are_reported_with_the_other_problems(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    make: object,
    expected: list[str],
) -> None:
    files = _files(tmp_path, **{table: make()})  # type: ignore[operator]
    out = tmp_path / "scores.csv"
    assert main(["score", *_args(files), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err
    assert not out.exists()


def test_unknown_columns_warn_and_suggest_a_known_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pipelines.files import read_tables

    contacts = _contacts().rename(columns={"email": "emial"}).assign(shoe_size="42")
    files = _files(tmp_path, contacts=contacts)
    out = tmp_path / "scores.csv"
    with caplog.at_level("WARNING", logger="heatsync"):
        assert main(["score", *_args(files), "--out", str(out)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # one warning per file, naming every unknown column
    (warning,) = warnings
    assert warning.startswith("contacts.csv: ")
    assert "'emial' (did you mean 'email'?)" in warning
    assert "'shoe_size'" in warning and "shoe_size' (did you mean" not in warning
    known = warning.split("known contacts columns: ", 1)[1]
    assert "contact_id" in known and "email" in known and "is_vip" in known
    assert out.exists()  # a warning, not an error

    caplog.clear()
    with caplog.at_level("WARNING", logger="heatsync"):
        tables = read_tables(files["contacts"], files["activities"], files["deals"])
    assert tables.notes == [warning]
    assert "emial" in tables.contacts.columns  # kept, as before; scoring does not read it
