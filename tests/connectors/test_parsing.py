"""Pure value parsing and rendering rules of the HubSpot connector (no HTTP)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from connectors.http import ConnectorError, SlidingWindow, redact, register_secret
from connectors.hubspot.extract import parse_birthday, parse_num, parse_ts
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.writeback import render_value
from scoring.contract import BIRTHDAY_UNKNOWN_YEAR
from tests.connectors.conftest import fake_token


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1990-05-02", date(1990, 5, 2)),
        ("02.05.1990", date(1990, 5, 2)),
        ("1990/05/02", date(1990, 5, 2)),
        ("--05-02", date(BIRTHDAY_UNKNOWN_YEAR, 5, 2)),
        ("05-02", date(BIRTHDAY_UNKNOWN_YEAR, 5, 2)),
        ("--02-29", date(BIRTHDAY_UNKNOWN_YEAR, 2, 29)),
        ("", None),
        (None, None),
    ],
)
def test_birthday_formats(text: str | None, expected: date | None) -> None:
    assert parse_birthday(text) == expected


@pytest.mark.parametrize("text", ["next spring", "31.02.1990", "1990-13-01"])
def test_birthday_unparseable_raises(text: str) -> None:
    with pytest.raises(ValueError):
        parse_birthday(text)


def test_timestamps_iso_and_epoch_ms_are_utc() -> None:
    expected = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert parse_ts("2026-03-01T10:00:00Z") == expected
    assert parse_ts("2026-03-01T12:00:00+02:00") == expected
    assert parse_ts("2026-03-01T10:00:00.000Z") == expected
    assert parse_ts(str(int(expected.timestamp() * 1000))) == expected
    assert parse_ts("") is None
    with pytest.raises(ValueError):
        parse_ts("yesterday")
    assert parse_num("12.5") == 12.5
    with pytest.raises(ValueError):
        parse_num("12,5 EUR")


def test_render_values_in_hubspot_formats() -> None:
    assert render_value("score", 71.6) == "72"
    assert render_value("touches_30d", 3.0) == "3"
    assert render_value("next_touch_due", pd.Timestamp("2026-03-05")) == "2026-03-05"
    assert (
        render_value("next_touch_due", pd.Timestamp("2026-03-05 23:30", tz="UTC")) == "2026-03-05"
    )
    assert render_value("temperature", None) == ""
    assert render_value("score", float("nan")) == ""
    assert len(render_value("reasons", "x" * 70_000)) == 65_536


def test_settings_repr_and_redaction_hide_secrets() -> None:
    client_secret, refresh_token = fake_token(), fake_token()
    settings = HubSpotSettings(
        client_id="app-1", client_secret=client_secret, refresh_token=refresh_token
    )
    text = repr(settings) + str(settings) + str(settings.model_dump())
    assert client_secret not in text and refresh_token not in text
    token = fake_token()
    register_secret(token)
    line = redact(f"GET /x Authorization: Bearer {token} refresh_token=rt-abc&x=1")
    assert token not in line and "rt-abc" not in line
    err = ConnectorError(f"token {token} rejected", status=401, category="INVALID")
    assert token not in str(err)


def test_only_one_auth_method() -> None:
    with pytest.raises(ValueError):
        HubSpotSettings()
    with pytest.raises(ValueError):
        HubSpotSettings(access_token="a-token", client_id="x", client_secret="y", refresh_token="z")


def test_sliding_window_sleeps_instead_of_exceeding() -> None:
    window = SlidingWindow(limit=5, window_s=0.3)
    start = time.monotonic()
    for _ in range(10):
        window.acquire()
    # 10 acquisitions with 5 per 0.3 s need at least one full window of waiting
    assert time.monotonic() - start >= 0.3


def test_logging_filter_redacts(caplog: pytest.LogCaptureFixture) -> None:
    from connectors.http import log

    register_secret("sekrit-token-987")
    with caplog.at_level(logging.INFO, logger=log.name):
        log.warning("failed with %s", "Bearer sekrit-token-987")
    assert "sekrit-token-987" not in caplog.text
