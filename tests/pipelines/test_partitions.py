"""Day partitions start at HEATSYNC_FIRST_DAY, or a window before today, in Dagster and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.cli import PROJECT_ROOT
from pipelines.partitions import DEFAULT_WINDOW_DAYS, FIRST_DAY_VARIABLE, first_day
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

FIRST_PARTITION = (
    "from pipelines.definitions import build_defs\n"
    "job = build_defs().resolve_job_def('daily_scoring')\n"
    "dims = {d.name: d.partitions_def for d in job.partitions_def.partitions_defs}\n"
    "print(dims['date'].get_first_partition_key())\n"
)


def _python(code: str, env: dict[str, str], cwd: Path = PROJECT_ROOT) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FIRST_DAY_VARIABLE}
    env["HUBSPOT_ACCESS_TOKEN"] = "placeholder"
    return {**env, **extra}


def test_first_day_is_configured_or_a_window_before_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FIRST_DAY_VARIABLE, raising=False)
    assert first_day(date(2026, 11, 23)) == "2026-08-25"
    assert DEFAULT_WINDOW_DAYS == 90
    monkeypatch.setenv(FIRST_DAY_VARIABLE, "")  # as copied from .env.example
    assert first_day(date(2026, 11, 23)) == "2026-08-25"
    monkeypatch.setenv(FIRST_DAY_VARIABLE, " 2024-02-29 ")
    assert first_day() == "2024-02-29"
    monkeypatch.setenv(FIRST_DAY_VARIABLE, "29.02.2024")
    with pytest.raises(ValueError, match=FIRST_DAY_VARIABLE):
        first_day()


def test_the_code_location_starts_its_days_where_configured() -> None:
    assert _python(FIRST_PARTITION, _env(**{FIRST_DAY_VARIABLE: "2025-06-01"})) == "2025-06-01"
    window = _python(FIRST_PARTITION, _env())
    today = datetime.now(UTC).date()
    # the UTC date may turn between the two readings
    assert window in {(today - timedelta(days=DEFAULT_WINDOW_DAYS + d)).isoformat() for d in (0, 1)}


def test_run_day_is_refused_before_the_configured_first_day(tmp_path: Path) -> None:
    state = generate_state(50, seed=2)
    state.account["timeZone"] = "UTC"
    today = datetime.now(UTC).date()
    start = today - timedelta(days=10)
    with SandboxServer(state, SandboxOptions()) as server:
        env = _env(
            **{
                FIRST_DAY_VARIABLE: start.isoformat(),
                "HUBSPOT_BASE_URL": server.base_url,
                "HUBSPOT_ACCESS_TOKEN": server.token,
                "HEATSYNC_HOME": str(tmp_path / "home"),
                "DAGSTER_HOME": str(tmp_path / "dagster"),
            }
        )
        day = (start - timedelta(days=1)).isoformat()
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", "--day", day],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"--day must be from {start.isoformat()}" in done.stderr
        assert FIRST_DAY_VARIABLE in done.stderr
        assert server.stats()["writes"] == 0


def test_nothing_is_read_from_the_environment_at_import_time() -> None:
    """A bad HEATSYNC_FIRST_DAY breaks building the code location, not importing it."""
    imports = (
        "import pipelines.definitions, pipelines.assets, pipelines.partitions, "
        "pipelines.resources, pipelines.schedules, pipelines.config\n"
        "print('imported')\n"
    )
    bad = _env(**{FIRST_DAY_VARIABLE: "not-a-date"})
    assert _python(imports, bad) == "imported"
    done = subprocess.run(
        [sys.executable, "-c", FIRST_PARTITION],
        cwd=PROJECT_ROOT,
        env=bad,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and FIRST_DAY_VARIABLE in done.stderr
