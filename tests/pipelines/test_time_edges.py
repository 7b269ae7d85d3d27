"""Time at the edges of the run layer: 'today', the as-of and the day partitions.

Portals at UTC+14 (Pacific/Kiritimati), UTC−11 (Pacific/Pago_Pago) and in two zones with daylight
saving time (Europe/Riga, America/New_York), on the days around each change of 2026, at 23:59 and
00:01 local time. Every instant is fixed: nothing here reads the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.partitions import days
from pipelines.run import day as run
from pipelines.run.asof import AsOf, FutureDayError, end_of_day, local_today
from pipelines.store import PortalStore

ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Riga", "America/New_York")
# (zone, day of the change, hours in that local day)
CHANGES = [
    ("Europe/Riga", "2026-03-29", 23),
    ("Europe/Riga", "2026-10-25", 25),
    ("America/New_York", "2026-03-08", 23),
    ("America/New_York", "2026-11-01", 25),
]
# every zone on every change day of the two DST zones, and on the turn of the year
EDGE_DAYS = ["2026-03-08", "2026-03-29", "2026-10-25", "2026-11-01", "2026-12-31"]


def shift(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


def local(day: str, clock: str, tz: str) -> pd.Timestamp:
    """The UTC instant of wall-clock `clock` on `day` in `tz`."""
    return pd.Timestamp(f"{day} {clock}", tz=tz).tz_convert("UTC")


CASES = [
    (tz, shift(day, n), clock)
    for tz in ZONES
    for day in EDGE_DAYS
    for n in (-1, 0, 1)
    for clock in ("00:01", "23:59")
]


@pytest.mark.parametrize(("tz", "day", "clock"), CASES)
def test_today_and_the_as_of_at_one_minute_past_and_to_midnight(
    tz: str, day: str, clock: str
) -> None:
    now = local(day, clock, tz)
    assert local_today(tz, now) == day
    today = AsOf.resolve(day, tz, now)
    assert today == AsOf.today(tz, now)
    assert today.is_today and today.instant == now == today.run_at
    yesterday = AsOf.resolve(shift(day, -1), tz, now)
    assert not yesterday.is_today and yesterday.run_at == now
    assert yesterday.instant == end_of_day(shift(day, -1), tz) < now
    assert yesterday.instant == local(day, "00:00", tz) - pd.Timedelta(microseconds=1)
    with pytest.raises(FutureDayError, match=f"after the portal's today \\({day} in {tz}\\)"):
        AsOf.resolve(shift(day, 1), tz, now)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("day", EDGE_DAYS)
def test_two_minutes_across_midnight_today_becomes_yesterday(tz: str, day: str) -> None:
    before, after = local(day, "23:59", tz), local(shift(day, 1), "00:01", tz)
    assert after - before == pd.Timedelta(minutes=2)
    assert AsOf.resolve(day, tz, before).is_today
    seen_after = AsOf.resolve(day, tz, after)
    assert not seen_after.is_today and before < seen_after.instant < after
    assert AsOf.resolve(shift(day, 1), tz, after).is_today
    with pytest.raises(FutureDayError):
        AsOf.resolve(shift(day, 1), tz, before)
    # the backtest's earlier day from this run
    assert AsOf.resolve(shift(day, 1), tz, after).earlier(day) == seen_after


@pytest.mark.parametrize(("tz", "day", "hours"), CHANGES)
def test_the_end_of_a_change_day_closes_a_23_or_25_hour_day(tz: str, day: str, hours: int) -> None:
    end = end_of_day(day, tz)
    start = end_of_day(shift(day, -1), tz)
    assert end - start == pd.Timedelta(hours=hours)
    assert end.tzinfo is not None and str(end.tz) == "UTC"
    wall = end.tz_convert(tz)
    assert (wall.date().isoformat(), wall.strftime("%H:%M:%S.%f")) == (day, "23:59:59.999999")
    assert local_today(tz, end) == day
    assert local_today(tz, end + pd.Timedelta(microseconds=1)) == shift(day, 1)
    # the days around it are 24 hours long
    assert end_of_day(shift(day, 1), tz) - end == pd.Timedelta(hours=24)
    assert start - end_of_day(shift(day, -2), tz) == pd.Timedelta(hours=24)


@pytest.mark.parametrize(
    ("tz", "day", "utc_end"),
    [
        ("Pacific/Kiritimati", "2026-12-31", "2026-12-31 09:59:59.999999"),
        ("Pacific/Pago_Pago", "2026-12-31", "2027-01-01 10:59:59.999999"),
        ("Europe/Riga", "2026-03-29", "2026-03-29 20:59:59.999999"),
        ("Europe/Riga", "2026-10-25", "2026-10-25 21:59:59.999999"),
        ("America/New_York", "2026-03-08", "2026-03-09 03:59:59.999999"),
        ("America/New_York", "2026-11-01", "2026-11-02 04:59:59.999999"),
    ],
)
def test_end_of_day_in_utc(tz: str, day: str, utc_end: str) -> None:
    assert end_of_day(day, tz) == pd.Timestamp(utc_end, tz="UTC")


def test_a_naive_now_is_utc() -> None:
    naive = pd.Timestamp("2026-12-31 10:30")  # 00:30 on 1 January at UTC+14
    assert AsOf.today("Pacific/Kiritimati", naive).day == "2027-01-01"
    assert AsOf.resolve("2026-12-31", "Pacific/Kiritimati", naive).instant == pd.Timestamp(
        "2026-12-31 09:59:59.999999", tz="UTC"
    )


@pytest.mark.parametrize("day", EDGE_DAYS)
def test_every_portals_today_is_a_day_partition_at_any_utc_time(day: str) -> None:
    partitions = days("2026-01-01")
    start = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(days=1)
    instants = [start + timedelta(minutes=30 * i) for i in range(3 * 48)]
    instants += [start + timedelta(days=d, minutes=m) for d in (1, 2) for m in (-1, 0, 1)]
    for moment in instants:
        keys = partitions.get_partition_keys(current_time=moment)
        utc_today = moment.date()
        assert keys[-1] == (utc_today + timedelta(days=1)).isoformat()  # UTC tomorrow
        for tz in ZONES:
            assert local_today(tz, pd.Timestamp(moment)) in keys, (moment, tz)


@pytest.mark.parametrize(("tz", "day", "hours"), CHANGES)
def test_saved_scores_of_a_change_day_keep_their_as_of(
    tmp_path: Path, tz: str, day: str, hours: int
) -> None:
    store = PortalStore(tmp_path, "default")
    store.save_portal_meta({"time_zone": tz})
    evening = local(day, "23:59", tz)
    store.save_scores(day, pd.DataFrame({"contact_id": ["1"], "as_of": [evening]}))
    found = run.todays_scores(store, day, evening)
    assert found is not None and found[0].instant == evening and found[0].is_today
    # two minutes later the day is past: nothing is written for it
    assert run.todays_scores(store, day, local(shift(day, 1), "00:01", tz)) is None
    # a backfilled change day's scores are as of its last instant, and read back as a past day
    backfill = AsOf.resolve(day, tz, local(shift(day, 3), "12:00", tz))
    store.save_scores(day, pd.DataFrame({"contact_id": ["1"], "as_of": [backfill.instant]}))
    saved = store.scores(day)
    assert saved is not None
    again = AsOf.of_scores(day, tz, saved)
    assert again is not None and not again.is_today and again.instant == backfill.instant
