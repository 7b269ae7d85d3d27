"""Retakes docs/img/backfill-partitions.png, by hand (not part of `make test`):

    .venv/bin/python -m tests.deploy.screenshot_backfill

Serves both sandboxes and `make serve` on a throwaway PostgreSQL database (127.0.0.1:5432, or
HEATSYNC_TEST_POSTGRES_URL's server), runs today once, backfills three past days × two portals
through the webserver's GraphQL API as test_backfill.py does, then has headless Chromium render
the partitions page of heatsync/scores. Needs Debian's chromium (/usr/bin/chromium)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.serve import ROOT, connect_arguments, ensure_database
from tests.deploy.backfill_rig import (
    ASSETS,
    answers,
    deployment,
    partition_keys,
    past_days,
    until,
)

OUTPUT = ROOT / "docs" / "img" / "backfill-partitions.png"
PAGE = "/assets/heatsync/scores?view=partitions"


def _drop(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    name = connect_arguments(url)["dbname"]
    admin = psycopg2.connect(**connect_arguments(url, "postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()


def screenshot(url: str, output: Path, budget_ms: int) -> None:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        command = [
            os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            *("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
            *("--disable-background-networking", "--disable-component-update"),
            *("--disable-sync", "--no-first-run", f"--user-data-dir={profile}"),
            f"--virtual-time-budget={budget_ms}",
            "--window-size=1400,900",
            f"--screenshot={output}",
            url,
        ]
        subprocess.run(command, check=True, timeout=120, capture_output=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--budget-ms", type=int, default=20000, help="Chromium's virtual time")
    args = parser.parse_args(argv)

    server = os.environ.get("HEATSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/x")
    base, _, _ = server.rpartition("/")
    url = f"{base}/heatsync_shot_{uuid.uuid4().hex[:12]}".replace(
        "postgresql://", "postgresql+psycopg2://"
    )
    ensure_database(url)
    workdir = Path(tempfile.mkdtemp(prefix="heatsync-shot-"))
    try:
        first = (datetime.now(UTC).date() - timedelta(days=6)).isoformat()
        with deployment(workdir, url, first) as deployed:
            os.environ.update(deployed.env)
            os.chdir(workdir)  # no stray .env is read
            from pipelines.cli import main as heatsync

            if heatsync(["run"]) != 0:
                return 1
            until("answer from the webserver", lambda: answers(deployed.ui), 60, deployed.serve)
            backfill = deployed.launch_backfill(partition_keys(past_days(3)), ASSETS)
            status = until(
                "finished backfill",
                lambda: (s := deployed.backfill_status(backfill)) != "REQUESTED" and s,
                600,
                deployed.serve,
            )
            print(f"backfill {backfill}: {status}")
            # The instance remembers that its "Join the Dagster community" dialog was seen.
            deployed.graphql("mutation SetNuxSeen { setNuxSeen }")
            screenshot(deployed.ui + PAGE, args.output.resolve(), args.budget_ms)
            print(f"wrote {args.output}")
    finally:
        _drop(url)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
