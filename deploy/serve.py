"""`make serve`: heatsync for real on PostgreSQL — dagster-webserver and dagster-daemon on the
production instance (deploy/dagster.yaml), with the daily schedule and the sensors running.

Reads `.env` from the working directory like the CLI. The database is `HEATSYNC_POSTGRES_URL`
(default postgresql://postgres@127.0.0.1:5432/heatsync), created when missing. DAGSTER_HOME is
`.heatsync/serve` (or --dagster-home), holding a fresh copy of deploy/dagster.yaml at each start.
Ctrl-C or SIGTERM stops both processes (and the code servers and runs they started); if either
dies on its own, the other is stopped and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_YAML = ROOT / "deploy" / "dagster.yaml"
WORKSPACE = ROOT / "workspace.yaml"
DEFAULT_HOME = ROOT / ".heatsync" / "serve"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/heatsync"
URL_VARIABLE = "HEATSYNC_POSTGRES_URL"
# How long each process has to stop after its interrupt, before it is killed.
STOP_SECONDS = 20.0


def sqlalchemy_url(url: str) -> str:
    """`url` with the psycopg2 driver named: a bare postgresql:// means psycopg 3 to SQLAlchemy
    2.1, which dagster-postgres does not install."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


def shown(url: str) -> str:
    """`url` with its password hidden, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def connect_arguments(url: str, database: str | None = None) -> dict[str, Any]:
    """psycopg2.connect's keyword arguments for `url` (its database, or `database`)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(sqlalchemy_url(url))
    arguments: dict[str, Any] = {
        key: str(value) for key, value in parsed.query.items() if isinstance(value, str)
    }
    named = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
    }
    arguments.update({key: value for key, value in named.items() if value is not None})
    arguments["dbname"] = database or parsed.database or "postgres"
    return arguments


def ensure_database(url: str) -> bool:
    """Create the database `url` names when the server has none of that name (connecting to
    the `postgres` database); True if it was created."""
    import psycopg2
    from psycopg2 import sql

    name = connect_arguments(url)["dbname"]
    connection = psycopg2.connect(**connect_arguments(url, "postgres"))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        connection.close()


def prepare_home(home: Path) -> Path:
    """`home` with a copy of deploy/dagster.yaml (replacing an older copy: edits to the shipped
    file take effect at the next start)."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")
    return home


def _commands(port: int, host: str, workspace: Path) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    return {
        "dagster-webserver": [
            str(bin_dir / "dagster-webserver"),
            *("-w", str(workspace), "-h", host, "-p", str(port)),
        ],
        "dagster-daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
    }


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Interrupt every process group (each child and whatever it started), then wait; kill a
    group that outlives STOP_SECONDS."""
    for process in processes.values():
        if process.poll() is None:
            _signal_group(process, signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"serve: {name} did not stop in {STOP_SECONDS:.0f} s; killing it", flush=True)
            _signal_group(process, signal.SIGKILL)
            process.wait()
        # A grandchild (a code server, a run worker) may outlive its parent by a moment.
        _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def serve(port: int, host: str, home: Path, workspace: Path = WORKSPACE) -> int:
    """Run webserver and daemon until a signal (0) or until one of them exits (1)."""
    stopping = threading.Event()
    received: list[int] = []

    def _on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)

    environment = {**os.environ, "DAGSTER_HOME": str(home)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in _commands(port, host, workspace).items():
        # Each in its own session: a terminal's Ctrl-C reaches this script alone, which stops
        # both in order, and a process group per child lets nothing it started survive.
        processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=environment, start_new_session=True
        )
    ui = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    print(f"serve: starting the Dagster UI at {ui} and dagster-daemon (Ctrl-C stops both)")
    ready = False
    status = 0
    while not stopping.wait(0.5):
        dead = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
        if dead:
            for name, code in dead.items():
                print(f"serve: {name} exited with status {code}; stopping", file=sys.stderr)
            status = 1
            break
        if not ready and _answers(f"{ui}/server_info"):
            ready = True
            print(f"serve: the Dagster UI is up at {ui}", flush=True)
    if received:
        print(f"serve: {signal.Signals(received[0]).name}: stopping webserver and daemon")
    _stop(processes)
    print("serve: stopped", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000, help="the UI's port (default 3000)")
    parser.add_argument("--host", default="127.0.0.1", help="the UI's address (default 127.0.0.1)")
    parser.add_argument(
        "--dagster-home",
        type=Path,
        default=DEFAULT_HOME,
        help=f"DAGSTER_HOME for both processes (default {DEFAULT_HOME.relative_to(ROOT)})",
    )
    parser.add_argument("--workspace", type=Path, default=WORKSPACE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    if not os.environ.get(URL_VARIABLE):
        print(f"serve: {URL_VARIABLE} is not set; using {DEFAULT_URL}")
    url = sqlalchemy_url(os.environ.get(URL_VARIABLE) or DEFAULT_URL)
    os.environ[URL_VARIABLE] = url
    try:
        if ensure_database(url):
            print(f"serve: created the database {shown(url)}")
    except Exception as exc:  # psycopg2.OperationalError and friends: say what and where
        print(f"serve: cannot reach PostgreSQL at {shown(url)}: {exc}".strip(), file=sys.stderr)
        return 2
    home = prepare_home(args.dagster_home)
    print(f"serve: run history in {shown(url)}; DAGSTER_HOME={home}")
    return serve(args.port, args.host, home, args.workspace.resolve())


if __name__ == "__main__":
    sys.exit(main())
