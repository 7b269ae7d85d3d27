"""Stopping and overlapping `heatsync run`: real processes against a HubSpot sandbox.

SIGTERM and SIGINT stop a run between steps with exit code 143 / 130 and one line saying what is
left, and the next run finishes the work without a second task; two runs on one portal never
write at the same time (the second waits, or gives up after HEATSYNC_RUN_WAIT seconds); a full
disk while saving the store is one clear line and leaves the previous file readable.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.store import PortalStore, StoreFull
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 120


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    # every request takes 5 ms: the write-back under way when the signal comes ends soon
    with SandboxServer(generate_state(CONTACTS, seed=5), SandboxOptions(latency_ms=5)) as srv:
        yield srv


def _env(server: SandboxServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "AMOCRM_"))}
    env.update(
        HUBSPOT_BASE_URL=server.base_url,
        HUBSPOT_ACCESS_TOKEN=server.token,
        HEATSYNC_HOME=str(tmp_path / "home"),
        DAGSTER_HOME=str(tmp_path / "dagster"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _start(server: SandboxServer, tmp_path: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run"],
        cwd=tmp_path,  # no stray .env is read
        env=_env(server, tmp_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _heatsync_tasks(server: SandboxServer) -> Counter[str]:
    with server.lock:
        return Counter(
            rec.props["heatsync_task_key"]
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        )


def _when_writing(server: SandboxServer, proc: subprocess.Popen[str], limit_s: float) -> None:
    """Wait until the run has begun writing to the sandbox (it is past its extract)."""
    deadline = time.monotonic() + limit_s
    while server.stats()["writes"] == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never wrote"
        time.sleep(0.02)


@pytest.mark.parametrize(("signo", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_between_steps_and_the_next_run_finishes_it(
    server: SandboxServer, tmp_path: Path, signo: int, code: int
) -> None:
    proc = _start(server, tmp_path)
    _when_writing(server, proc, limit_s=60)
    sent = time.monotonic()
    proc.send_signal(signo)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == code, (out, err)
    assert time.monotonic() - sent < 12  # the shared CI machine: usually 3-5 s
    name = signal.Signals(signo).name
    lines = [line for line in err.splitlines() if line.startswith("heatsync run: stopped by")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"heatsync run: stopped by {name} after ")
    assert "the next run" in lines[0]
    assert "Traceback" not in err
    assert "FAILED" in out  # the run history has the run as failed, not as a success
    first = _heatsync_tasks(server)
    assert all(n == 1 for n in first.values())

    # the next run finishes the work: every task once
    again = _start(server, tmp_path)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, (out, err)
    tasks = _heatsync_tasks(server)
    assert tasks and all(n == 1 for n in tasks.values()), tasks
    ledger = PortalStore(tmp_path / "home", "default").ledger()
    assert set(ledger["status"]) == {"created"}
    assert sorted(ledger["task_key"]) == sorted(tasks)


def test_a_second_run_on_the_portal_waits_or_gives_up(
    server: SandboxServer, tmp_path: Path
) -> None:
    # another run holds the portal (this test, so that the timing is ours)
    holder = PortalStore(tmp_path / "home", "default")
    with holder.run_lock():
        refused = _start(server, tmp_path, HEATSYNC_RUN_WAIT="0")
        out, err = refused.communicate(timeout=60)
        assert refused.returncode == 75, (out, err)
        assert f"another heatsync run (pid {os.getpid()}) is still working on it" in err
        log = tmp_path / "waiting.err"
        with log.open("w") as sink:
            waiting = subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "run"],
                cwd=tmp_path,
                env=_env(server, tmp_path, HEATSYNC_RUN_WAIT="60"),
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        told = f"another heatsync run is working on it (pid {os.getpid()}), waiting"
        deadline = time.monotonic() + 45
        while told not in log.read_text() and time.monotonic() < deadline:
            assert waiting.poll() is None, log.read_text()
            time.sleep(0.1)
        assert told in log.read_text()
        time.sleep(0.5)
        assert waiting.poll() is None
        assert server.stats()["writes"] == 0  # neither has written anything
    assert waiting.wait(timeout=60) == 0, log.read_text()

    # two real runs at once: one after the other, every field and task written once
    server.set_faults(latency_ms=20)
    created = _heatsync_tasks(server)
    writes = server.stats()["writes"]
    runs = [_start(server, tmp_path, HEATSYNC_RUN_WAIT="60") for _ in range(2)]
    results = [run.communicate(timeout=90) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert _heatsync_tasks(server) == created
    assert all(n == 1 for n in created.values())
    assert server.stats()["writes"] == writes  # nothing was left to write


def test_the_run_lock_is_per_portal_and_released_when_the_holder_ends(tmp_path: Path) -> None:
    store = PortalStore(tmp_path, "one")
    with store.run_lock():
        with PortalStore(tmp_path, "two").run_lock():
            pass
        seen: list[str] = []
        started = time.monotonic()
        with pytest.raises(Exception, match="held by pid") as busy:
            with PortalStore(tmp_path, "one").run_lock(0.5, seen.append):
                pass
        assert time.monotonic() - started >= 0.4
        assert seen == [f"pid {os.getpid()}"]
        assert busy.typename == "StoreBusy"
    with PortalStore(tmp_path, "one").run_lock():
        pass


@contextmanager
def _full_disk(real_open: object, full: str) -> Iterator[object]:
    """An `atomic_open` whose writes of the file named `full` run out of space."""

    @contextmanager
    def opened(path: Path, **kwargs: bool) -> Iterator[BinaryIO]:
        with real_open(path, **kwargs) as handle:  # type: ignore[operator]
            if path.name == full:

                def write(_data: object) -> int:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

                handle.write = write
            yield handle

    yield opened


def test_a_full_disk_is_one_line_and_the_previous_file_is_intact(
    server: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pipelines.store as store_module

    monkeypatch.chdir(tmp_path)
    for name, value in _env(server, tmp_path).items():
        if name.startswith(("HUBSPOT_", "HEATSYNC_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    store = PortalStore(tmp_path / "home", "default")
    store.save_cursors({"contacts": "before"})
    with _full_disk(store_module.atomic_open, "cursors.json") as opened:
        monkeypatch.setattr(store_module, "atomic_open", opened)
        with pytest.raises(StoreFull, match="no space left on device while saving cursors in"):
            store.save_cursors({"contacts": "after"})
        assert store.cursors() == {"contacts": "before"}
        assert [p.name for p in store.root.iterdir() if p.suffix == ".tmp"] == []

        # the same through a whole run: the extract's save fails once, not retried, one line
        started = time.monotonic()
        assert main(["run"]) == 1
        assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if "no space left" in line]
    assert len(err) == 1, captured.err
    assert "while saving cursors in" in err[0] and "the previous version is intact" in err[0]
    assert "Traceback" not in captured.err
    bound = PortalStore(tmp_path / "home", "default")
    assert pd.read_parquet(bound.root / "contacts.parquet").shape[0] > 0
    assert bound.cursors() == {}  # never saved: the next run extracts in full again
