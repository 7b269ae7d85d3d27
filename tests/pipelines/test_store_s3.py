"""The canonical store on an S3-compatible object store: moto's S3 server over loopback.

A whole `heatsync run` with HEATSYNC_STORE_URI=s3://…, and the next run reading it back; a save
that fails half-way, and a process killed in the middle of an upload, never leave a partial
table for the next read; with HEATSYNC_POSTGRES_URL the store's locks hold across machines
(PostgreSQL as in tests/deploy/conftest.py: skipped when unreachable, a failure under CI=true).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from pipelines.cli import main
from pipelines.storage import ObjectPath
from pipelines.store import PortalStore, StoreBusy
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state
from tests.deploy import conftest as postgres_fixtures

# the machine's PostgreSQL and a new database per test (tests/deploy/conftest.py)
postgres_server = postgres_fixtures.postgres_server
postgres_url = postgres_fixtures.postgres_url

BUCKET = "heatsync-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "heatsync-test-key",
    "AWS_SECRET_ACCESS_KEY": "heatsync-test-secret",
    "AWS_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with an empty bucket."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=CREDENTIALS["AWS_REGION"],
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def s3_store(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """HEATSYNC_STORE_URI on a prefix of its own; returns the prefix."""
    prefix = f"stores/{uuid.uuid4().hex[:12]}"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HEATSYNC_STORE_URI", f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv("HEATSYNC_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
    return prefix


def _keys(endpoint: str, prefix: str) -> list[str]:
    pages = (
        _client(endpoint)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=BUCKET, Prefix=prefix + "/")
    )
    return sorted(o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def hubspot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(generate_state(250, seed=5), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


@pytest.mark.parametrize("locks", ["local", "postgres"])
def test_a_run_keeps_its_store_on_s3_and_the_next_run_reads_it_back(
    locks: str,
    hubspot: SandboxServer,
    s3_store: str,
    s3_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if locks == "postgres":
        monkeypatch.setenv("HEATSYNC_POSTGRES_URL", request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv("HEATSYNC_POSTGRES_URL", raising=False)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    created = re.search(r"tasks +(\d+) created", out)
    assert created and int(created.group(1)) > 0
    first = hubspot.stats()
    assert first["writes"] > 0

    keys = _keys(s3_endpoint, s3_store)
    account = next(k.split("/")[1] for k in keys if k.startswith("accounts/"))
    assert account.startswith("hubspot-")
    for name in ("portal.json", "cursors.json", "contacts.parquet", "activities.parquet"):
        assert f"accounts/{account}/{name}" in keys
    assert f"accounts/{account}/ledger.parquet" in keys
    assert any(k.startswith(f"accounts/{account}/scores/") for k in keys)
    assert any(k.startswith(f"accounts/{account}/log/") for k in keys)
    assert "accounts.json" in keys
    # nothing of the store is on the machine: only the run locks and Dagster's own files
    home = tmp_path / "home"
    assert not (home / "accounts").exists() and not (home / "accounts.json").exists()
    assert not (home / "store").exists()

    store = PortalStore(home, "default")
    assert isinstance(store.root, ObjectPath)
    assert str(store.root) == f"s3://{BUCKET}/{s3_store}/accounts/{account}"
    contacts = store.table("contacts")
    assert len(contacts) > 200 and set(contacts["portal"]) == {account}
    ledger = store.ledger()
    assert (ledger["status"] == "created").sum() == int(created.group(1))
    cursors = store.cursors()
    assert cursors

    # the next run (another machine would do the same) starts from the cursors kept on S3: an
    # incremental extract, nothing to write, no task twice
    hubspot.reset_stats()
    assert main(["run"]) == 0
    second = hubspot.stats()
    assert second["writes"] == 0
    assert second["requests"] < first["requests"] / 2
    again = PortalStore(home, "default")
    assert len(again.ledger()) == len(ledger)
    assert len(again.scored_days()) == 1
    assert len(again.decisions()) >= len(store.decisions())

    # the commands that read the store find it there too
    contact = str(contacts["contact_id"].iloc[0])
    capsys.readouterr()
    assert main(["history", contact]) == 0
    assert contact in capsys.readouterr().out
    assert main(["forget", contact, "--yes"]) == 0
    assert again.contact(contact).empty
    assert f"accounts/{account}/erasures.jsonl" in _keys(s3_endpoint, s3_store)


def _scores(rows: int, text: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": [str(i) for i in range(rows)],
            "score": [float(i % 100) for i in range(rows)],
            "reasons": [text] * rows,
        }
    )


def test_a_save_that_fails_half_way_leaves_the_previous_table(
    s3_store: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PortalStore(tmp_path / "home", "default")
    store.save_scores("2026-05-01", _scores(50))
    before = _keys(s3_endpoint, s3_store)
    real = pd.DataFrame.to_parquet

    def half_then_fail(frame: pd.DataFrame, handle: Any, **kwargs: Any) -> None:
        whole = io.BytesIO()
        real(frame, whole, **kwargs)
        handle.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        raise ConnectionResetError("the network went away in the middle of the save")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_then_fail)
    with pytest.raises(ConnectionResetError):
        store.save_scores("2026-05-01", _scores(5_000, "new"))
    with pytest.raises(ConnectionResetError):
        store.save_scores("2026-05-02", _scores(10))
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)

    assert _keys(s3_endpoint, s3_store) == before  # no new object, not even a partial one
    kept = PortalStore(tmp_path / "home", "default").scores("2026-05-01")
    assert kept is not None
    pd.testing.assert_frame_equal(kept, _scores(50))
    assert store.scored_days() == ["2026-05-01"]


def _save_big_scores(home: str) -> None:
    """In a child process: save a table of about 60 MB of incompressible text."""
    big = _scores(2_000)
    big["reasons"] = [os.urandom(15 * 1024).hex() for _ in range(len(big))]
    PortalStore(Path(home), "default").save_scores("2026-05-01", big)


def test_a_process_killed_in_the_middle_of_an_upload_leaves_the_previous_table(
    s3_store: str, s3_endpoint: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    PortalStore(home, "default").save_scores("2026-05-01", _scores(50))
    client = _client(s3_endpoint)
    key = f"{s3_store}/store/default/scores/2026-05-01.parquet"

    def uploads() -> list[dict[str, Any]]:
        found = client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
        return list(found)

    child = multiprocessing.get_context("spawn").Process(target=_save_big_scores, args=(str(home),))
    child.start()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.is_alive() and not uploads():
            time.sleep(0.002)
        os.kill(child.pid or 0, signal.SIGKILL)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == -signal.SIGKILL
    started = uploads()
    assert started, "the child was not caught in the middle of its upload"

    # the upload was started and never completed: S3 shows the object as it was
    assert uploads() == started
    size = client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    assert size < 1_000_000
    kept = PortalStore(home, "default").scores("2026-05-01")
    assert kept is not None
    pd.testing.assert_frame_equal(kept, _scores(50))


def test_with_postgres_the_locks_hold_across_machines(
    s3_store: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEATSYNC_POSTGRES_URL", postgres_url)
    # two machines: no local folder in common, one store on S3
    first = PortalStore(tmp_path / "machine-a", "default")
    second = PortalStore(tmp_path / "machine-b", "default")
    told: list[str] = []
    with first.run_lock():
        started = time.monotonic()
        with pytest.raises(StoreBusy) as busy, second.run_lock(0.6, told.append):
            pass
        assert time.monotonic() - started >= 0.5
    assert told == [busy.value.holder]
    assert f"heatsync pid {os.getpid()} on {socket.gethostname()}" in busy.value.holder
    with second.run_lock():  # released with the first one's connection
        pass

    # the per-step lock: the second machine's step waits for the first one's
    order: list[str] = []
    entered = threading.Event()

    def other_machine() -> None:
        entered.wait(10)
        with second.lock():
            order.append("b")

    thread = threading.Thread(target=other_machine)
    thread.start()
    with first.lock():
        entered.set()
        time.sleep(0.5)
        order.append("a")
    thread.join(10)
    assert order == ["a", "b"]


def test_without_postgres_the_locks_are_the_machines_own(
    s3_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEATSYNC_POSTGRES_URL", raising=False)
    first = PortalStore(tmp_path / "machine-a", "default")
    second = PortalStore(tmp_path / "machine-b", "default")
    with first.run_lock(), second.run_lock():  # nothing in common: Dagster's limits must hold
        assert (tmp_path / "machine-a" / "locks" / "name-default.lock").exists()
    with first.run_lock(), pytest.raises(StoreBusy):
        with PortalStore(tmp_path / "machine-a", "default").run_lock():
            pass


def test_a_config_adopted_by_recalibration_lives_in_the_object_store(
    s3_store: str, s3_endpoint: str, tmp_path: Path
) -> None:
    from pipelines.run.calibration import ADOPTED, DEFAULT, adopt, scoring_choice
    from scoring import load_config

    store = PortalStore(tmp_path / "home", "default")
    assert scoring_choice(store).source == DEFAULT
    defaults = load_config(None)
    halved = {kind: days / 2 for kind, days in defaults.half_life_days.items()}
    learned = load_config({"half_life_days": halved})
    assert learned != defaults
    path = adopt(store, "2026-05-04", learned, ["learned by a test"])
    assert isinstance(path, ObjectPath)
    keys = _keys(s3_endpoint, s3_store)
    assert any(k.endswith("config/adopted.yaml") for k in keys), keys
    assert any(k.endswith("config/history/2026-05-04.yaml") for k in keys), keys
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*.yaml"))
    choice = PortalStore(tmp_path / "home", "default")
    chosen = scoring_choice(choice)
    assert chosen.source == ADOPTED and chosen.config == learned
