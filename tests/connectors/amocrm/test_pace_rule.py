"""The arithmetic of amoCRM's pace rule (connectors.amocrm.arrivals), on simulated time: the
margin it learns, when a slot frees, the holding rule after 429s, and, in a simulation of a
server that counts each request somewhere in its round trip, that no window of the server ever
holds more than the limit while the delays vary within the margin, at about limit / (W + m)."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import replace

import pytest

from connectors.amocrm.arrivals import (
    Rule,
    finish,
    margin,
    new_state,
    prune,
    sending,
    strike,
    try_take,
)

RULE = Rule.for_window(7, 1.0)


def _learned(rtts: list[float]) -> dict:
    state = new_state()
    state["rtts"] = list(rtts)
    return state


def test_the_margin_is_the_spread_of_round_trips_plus_a_floor() -> None:
    assert math.isinf(margin(RULE, _learned([0.3] * (RULE.min_samples - 1)), 0.0))
    assert margin(RULE, _learned([0.3] * 8), 0.0) == pytest.approx(RULE.floor_s)
    spread = [0.30 + 0.01 * i for i in range(8)]  # 0.30 .. 0.37
    high = sorted(spread)[int(RULE.quantile * 8)]
    assert margin(RULE, _learned(spread), 0.0) == pytest.approx(high - 0.30 + RULE.floor_s)


def test_a_slot_frees_a_window_after_the_margin_or_the_answer() -> None:
    rule = replace(RULE, limit=2, floor_s=0.02)
    state = _learned([0.3] * 8)  # margin: the floor
    assert try_take(rule, state, 0.0, "a", 1) == 0.0
    assert try_take(rule, state, 0.0, "b", 1) == 0.0
    # both in flight: each occupies until send + margin + window, whatever its round trip
    assert try_take(rule, state, 0.1, "c", 1) == pytest.approx(1.02 - 0.1)
    finish(rule, state, "a", 0.01)  # answered before the margin ran out: it frees sooner
    assert try_take(rule, state, 0.1, "c", 1) == pytest.approx(1.01 - 0.1)
    assert try_take(rule, state, 1.01, "c", 1) == 0.0


def test_a_slot_ends_counting_from_when_its_request_left() -> None:
    rule = replace(RULE, limit=1, floor_s=0.02)
    state = _learned([0.3] * 8)
    assert try_take(rule, state, 0.0, "a", 1) == 0.0
    sending(state, "a", 0.2)  # granted at 0, sent at 0.2: it occupies from 0 to 0.2 + m + W
    assert try_take(rule, state, 0.5, "b", 1) == pytest.approx(0.2 + 0.02 + 1.0 - 0.5)


def test_a_429_lengthens_the_slots_of_recent_requests() -> None:
    rule = replace(RULE, limit=1, floor_s=0.02)
    state = _learned([0.3] * 40)
    assert try_take(rule, state, 0.0, "a", 1) == 0.0
    finish(rule, state, "a", 0.3)
    assert try_take(rule, state, 0.8, "b", 1) == pytest.approx(1.02 - 0.8)
    strike(rule, state, 0.8)  # a 429: some count came later than the margin allowed
    assert try_take(rule, state, 0.9, "b", 1) == pytest.approx(1.02 + rule.step_s - 0.9)


def test_until_round_trips_are_known_a_slot_is_held_until_the_answer() -> None:
    rule = replace(RULE, limit=1)
    state = new_state()
    assert try_take(rule, state, 0.0, "a", 1) == 0.0
    assert try_take(rule, state, 5.0, "b", 1) is None  # in flight: wait for its answer
    finish(rule, state, "a", 5.0)
    assert try_take(rule, state, 5.5, "b", 1) == pytest.approx(0.5)


def test_429s_pause_widen_and_then_hold() -> None:
    state = _learned([0.3] * 8)
    base = margin(RULE, state, 0.0)
    strike(RULE, state, 0.0)
    assert try_take(RULE, state, 0.05, "a", 1) == pytest.approx(RULE.step_s - 0.05)  # a pause
    assert margin(RULE, state, 1.0) == pytest.approx(base + RULE.step_s)
    assert margin(RULE, state, RULE.widen_s + 1) == pytest.approx(base)  # the widening ends
    for at in range(1, RULE.strikes):
        assert not math.isinf(margin(RULE, state, 10.0 * at))
        strike(RULE, state, 10.0 * at)  # the last one: `strikes` within a minute, hold
    assert math.isinf(margin(RULE, state, 10.0 * RULE.strikes))
    prune(RULE, state, 61.0)  # the first one is a minute old
    assert not math.isinf(margin(RULE, state, 61.0))


def _simulate(
    rule: Rule, delay: tuple[float, float], work: tuple[float, float], seconds: float, seed: int
) -> tuple[float, int]:
    """Greedy senders under the rule against a server that counts each request `d` after it is
    sent (`delay`: uniform range) and answers `p` later (`work`). Returns (requests per second,
    the most requests the server counted in any window)."""
    rng = random.Random(seed)
    state = new_state()
    now, arrivals, answers, n = 0.0, [], [], 0
    while now < seconds:
        while answers and answers[0][0] <= now:
            done, slot = heapq.heappop(answers)
            finish(rule, state, slot, done)
        prune(rule, state, now)
        slot = f"r{n}"
        wait = try_take(rule, state, now, slot, 1)
        if wait == 0.0:
            d, p = rng.uniform(*delay), rng.uniform(*work)
            arrivals.append(now + d)
            heapq.heappush(answers, (now + d + p, slot))
            n += 1
            continue
        soonest = answers[0][0] if answers else math.inf
        now = min(soonest, now + wait) if wait is not None else soonest
    arrivals.sort()
    worst, lo = 0, 0
    for hi, at in enumerate(arrivals):
        while arrivals[lo] <= at - rule.window_s:
            lo += 1
        worst = max(worst, hi - lo + 1)
    return n / seconds, worst


@pytest.mark.parametrize("seed", range(5))
def test_no_window_ever_holds_more_than_the_limit(seed: int) -> None:
    # counted anywhere from 0.25 to 0.33 s after sending, answered up to 0.2 s later; the
    # margin is learned from the round trips (the maximum, so that it covers the delays)
    rule = replace(RULE, quantile=1.0)
    rate, worst = _simulate(rule, (0.25, 0.33), (0.0, 0.2), 120.0, seed)
    assert worst <= rule.limit
    # the holding rule would allow 7 / (1 + ~0.4) = 5/s; this one 7 / (1 + m) with m ~0.3
    assert rate > 7 / (1.0 + 0.4 + 0.02)


def test_with_steady_delays_the_pace_is_over_nine_tenths_of_the_budget() -> None:
    rate, worst = _simulate(RULE, (0.30, 0.31), (0.0, 0.02), 120.0, 1)
    assert worst <= RULE.limit
    assert rate / RULE.limit > 0.93


def test_the_holding_rule_is_safe_wherever_the_count_falls() -> None:
    # no round trips learned yet (min_samples out of reach): every slot is held until its answer
    rule = replace(RULE, min_samples=10**9)
    rate, worst = _simulate(rule, (0.0, 0.6), (0.0, 0.3), 60.0, 3)
    assert worst <= rule.limit
    assert rate < 7 / 1.2
