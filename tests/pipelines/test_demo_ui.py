"""`make ui` opens the Dagster UI on port UI_PORT, without the dagster.yaml warning of Dagster."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox import demo

ROOT = Path(__file__).resolve().parents[2]


def _make_n(*args: str) -> str:
    done = subprocess.run(
        ["make", "-n", "ui", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_ui_passes_the_ui_port() -> None:
    assert "--ui --ui-port 3000" in _make_n()
    assert "--ui --ui-port 3999" in _make_n("UI_PORT=3999")


def test_ui_runs_dagster_dev_on_the_port_from_a_folder_without_dagster_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []

    def call(command: list[str], cwd: Path) -> int:
        calls.append({"command": command, "cwd": Path(cwd)})
        return 0

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setattr(demo.subprocess, "call", call)
    assert demo._ui(3999) == 0
    (launched,) = calls
    command = launched["command"]
    assert command[command.index("-p") + 1] == "3999"
    assert "http://127.0.0.1:3999" in capsys.readouterr().out
    # Dagster warns when its working folder holds a dagster.yaml that is not DAGSTER_HOME's.
    assert not (launched["cwd"] / "dagster.yaml").exists()
    assert (tmp_path / "dagster" / "dagster.yaml").is_file()


def test_ui_refuses_a_taken_port_and_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setattr(demo.subprocess, "call", lambda *a, **k: pytest.fail("launched"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert demo._ui(port) == 2
    assert f"UI_PORT={port + 1}" in capsys.readouterr().out
