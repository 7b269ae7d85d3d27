"""Fixtures: the machine's PostgreSQL and a throwaway database on it per test.

PostgreSQL is looked for on 127.0.0.1:5432 and on the local socket, as `postgres` (trust auth)
unless HEATSYNC_TEST_POSTGRES_URL names a server. Not reachable: the tests skip with the reason,
except under CI=true, where they fail with it (CI must run them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from deploy.serve import connect_arguments

CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://postgres@/postgres?host=/var/run/postgresql",
)


def _candidates() -> tuple[str, ...]:
    named = os.environ.get("HEATSYNC_TEST_POSTGRES_URL")
    return (named,) if named else CANDIDATES


def _reachable() -> tuple[str | None, str]:
    import psycopg2

    errors = []
    for url in _candidates():
        try:
            psycopg2.connect(**connect_arguments(url, "postgres"), connect_timeout=3).close()
        except psycopg2.Error as exc:
            errors.append(f"{url}: {str(exc).strip()}")
        else:
            return url, ""
    return None, "; ".join(errors)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a reachable server (its `postgres` database)."""
    url, why = _reachable()
    if url is None:
        message = f"PostgreSQL not reachable at {' or '.join(_candidates())}: {why}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database for this test (dropped after it), as a dagster-postgres URL."""
    import psycopg2
    from psycopg2 import sql
    from sqlalchemy.engine import make_url

    name = f"heatsync_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**connect_arguments(postgres_server, "postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(postgres_server).set(drivername="postgresql+psycopg2", database=name)
        yield url.render_as_string(hide_password=False)
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()
