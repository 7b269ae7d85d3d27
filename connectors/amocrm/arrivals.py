"""amoCRM's pace rule: at most `limit` requests counted by the server in any `window_s`, without
keeping a slot for the whole round trip.

amoCRM counts a request when it arrives, somewhere between our send `s` and the answer `c`.
Holding each slot from `s` until `c + W` (W the server's window) is safe wherever the arrival
falls, but under 300 ms of latency it caps the pace at `limit / (W + round trip)`, 0.74 of 7/s.

The rule: request i occupies the budget from its send `s_i` until `min(c_i, s_i + m) + W` (while
in flight, `s_i + m + W`), and a request is sent only while fewer than `limit` occupy it. `m`, the
margin, bounds how much the delay from send to count `d_i = a_i - s_i` varies between requests,
not where it lies in the round trip.

Why it is safe: say every `d_i` lies in `[δ, δ + m]` for some unknown `δ >= 0`. Take a counted
request j and any request i counted in the server's window `(a_j - W, a_j]`; let `τ = a_j - δ`.
Then `s_i = a_i - d_i <= a_j - δ = τ`; `c_i >= a_i > a_j - W >= τ - W`; and
`s_i + m >= a_i - δ > τ - W`. So i occupies the budget at `τ` (as does j): at most `limit`
requests fall in any window of the server. The pace per window is thus `limit / (W + m)` instead
of `limit / (W + round trip)`.

`m` is learned: jitter in the delay before the count is jitter of the round trip (plus that of
the server's work and the way back), so the spread of recent round trips (90th percentile minus
minimum, over the last `samples`) covers it but for rare outliers, which the 429s below catch;
`floor` (1 % of the window) covers clock reading and scheduling.
Until `min_samples` round trips are known, and whenever `strikes` 429s fell within
`strike_window` (60 windows), `m` is infinite: each slot is held until the answer plus a window,
which is safe wherever the arrival falls. A 429 means some delay exceeded the margin: it pauses
sending for `step` (5 % of the window) and widens `m` by `step` for `widen` (30 windows); as
every slot's end is computed with the margin in force, that lengthens the slots of the recent
requests too, the late one among them. A delay outside the margin (a busy client or server, a
retransmitted packet) thus costs at most `strikes` 429s a minute, after which the holding rule
sends none: far from the ten in a minute after which amoCRM blocks the account.

A flight's send time is taken when its request leaves (`sending`, from the request's headers),
not when its slot was granted, which keeps this process's own scheduling out of the delays.

The state is a plain JSON-able dict (`new_state`), so the same arithmetic runs on an in-process
pace (`MemoryPace`) and on an account's pace file shared by processes (`connectors.amocrm.pace`).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.pacing import RateLimiter, SlidingWindow

State = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """The pace's parameters (times in seconds of the server's clock)."""

    limit: int
    window_s: float
    floor_s: float
    step_s: float
    strikes: int = 4
    strike_window_s: float = 60.0
    widen_s: float = 10.0
    samples: int = 64
    min_samples: int = 4
    quantile: float = 0.9
    stale_after_s: float = 120.0

    @classmethod
    def for_window(cls, limit: int, window_s: float) -> Rule:
        """amoCRM's defaults for a server window of `window_s` (scaled with it)."""
        return cls(
            limit=limit,
            window_s=window_s,
            floor_s=0.01 * window_s,
            step_s=0.05 * window_s,
            strike_window_s=60.0 * window_s,
            widen_s=30.0 * window_s,
            stale_after_s=max(120.0, 120.0 * window_s),
        )


def new_state() -> State:
    """flights: [slot, pid, sent, done or None]; rtts: recent round trips; strikes: times of
    recent 429s; until: no send before this time (after a 429)."""
    return {"flights": [], "rtts": [], "strikes": [], "until": 0.0}


def margin(rule: Rule, state: State, now: float) -> float:
    """The margin in force at `now` (infinite: hold each slot until the answer)."""
    strikes = [t for t in state["strikes"] if now - t < rule.strike_window_s]
    rtts = sorted(float(r) for r in state["rtts"])
    if len(strikes) >= rule.strikes or len(rtts) < rule.min_samples:
        return math.inf
    high = rtts[min(len(rtts) - 1, int(rule.quantile * len(rtts)))]
    recent = sum(1 for t in strikes if now - t < rule.widen_s)
    return (high - rtts[0]) + rule.floor_s + rule.step_s * recent


def expiry(rule: Rule, flight: list[Any], m: float) -> float:
    """When a flight stops occupying the budget (infinite: in flight under the holding rule)."""
    sent, done = float(flight[2]), flight[3]
    end = min(math.inf if done is None else float(done), sent + m)
    return end + rule.window_s


def prune(rule: Rule, state: State, now: float, alive: Any = None) -> None:
    """Forget what can no longer occupy the budget under any margin, and stale flights."""
    kept = []
    for flight in state["flights"]:
        sent, done = float(flight[2]), flight[3]
        if done is not None:
            if float(done) + rule.window_s > now:
                kept.append(flight)
        elif now - sent < rule.stale_after_s and (alive is None or alive(int(flight[1]))):
            kept.append(flight)
    state["flights"] = kept
    state["strikes"] = [t for t in state["strikes"] if now - t < rule.strike_window_s]


def try_take(rule: Rule, state: State, now: float, slot: str, pid: int) -> float | None:
    """Take a slot at `now` (returns 0.0), or the seconds to wait before trying again (None:
    until a flight completes)."""
    if now < float(state["until"]):
        return float(state["until"]) - now
    m = margin(rule, state, now)
    ends = [e for e in (expiry(rule, f, m) for f in state["flights"]) if e > now]
    if len(ends) < rule.limit:
        state["flights"].append([slot, pid, now, None])
        return 0.0
    # the slot frees when all but limit - 1 of the occupying flights ended
    soonest = sorted(ends)[len(ends) - rule.limit]
    return None if math.isinf(soonest) else soonest - now


def finish(rule: Rule, state: State, slot: str, now: float, *, sample: bool = True) -> None:
    """A flight's answer came at `now`: its slot may end sooner, its round trip is a sample."""
    for flight in state["flights"]:
        if flight[0] == slot and flight[3] is None:
            flight[3] = now
            if sample:
                state["rtts"] = [*state["rtts"], now - float(flight[2])][-rule.samples :]
            return


def sending(state: State, slot: str, now: float) -> None:
    """The flight's request leaves now: its send time moves here from the grant (its slot still
    counts from the grant), so the time spent in between is no part of its delay."""
    for flight in state["flights"]:
        if flight[0] == slot and flight[3] is None:
            flight[2] = max(float(flight[2]), now)
            return


def strike(rule: Rule, state: State, now: float) -> None:
    """The server answered 429: a short pause, and the margin widens."""
    state["strikes"] = [*state["strikes"], now]
    state["until"] = max(float(state["until"]), now + rule.step_s)


class Pace(Protocol):
    """Where the state lives (this process, or a file shared by an account's processes)."""

    rule: Rule

    def acquire(self) -> tuple[str, float]: ...

    def release(self, slot: str, *, sample: bool = True) -> None: ...

    def sending(self, slot: str) -> None: ...

    def penalize(self) -> None: ...


class MemoryPace:
    """The rule for the threads of one process."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.state = new_state()
        self._cond = threading.Condition()

    def acquire(self) -> tuple[str, float]:
        slot = uuid.uuid4().hex
        start = time.time()
        with self._cond:
            while True:
                now = time.time()
                prune(self.rule, self.state, now)
                wait = try_take(self.rule, self.state, now, slot, 0)
                if wait == 0.0:
                    return slot, now - start
                self._cond.wait(None if wait is None else wait + 0.0005)

    def release(self, slot: str, *, sample: bool = True) -> None:
        with self._cond:
            finish(self.rule, self.state, slot, time.time(), sample=sample)
            self._cond.notify_all()

    def sending(self, slot: str) -> None:
        with self._cond:
            sending(self.state, slot, time.time())

    def penalize(self) -> None:
        with self._cond:
            strike(self.rule, self.state, time.time())


class _Strikes(SlidingWindow):
    """`JsonHttp` reports a window-spending 429 as `limiter.burst.penalize(seconds)` (the rule
    decides how long to pause)."""

    def __init__(self, pace: Pace) -> None:
        super().__init__(pace.rule.limit, pace.rule.window_s)
        self.pace = pace

    def penalize(self, seconds: float) -> None:
        self.pace.penalize()


class PaceLimiter(RateLimiter):
    """A `connectors.http` limiter whose slots follow the rule (amoCRM has no search budget)."""

    def __init__(self, pace: Pace) -> None:
        super().__init__(pace.rule.limit, pace.rule.window_s, pace.rule.limit)
        self.pace = pace
        self.burst = _Strikes(pace)
        self._held = threading.local()  # this thread's slot, while it holds one

    def sending(self) -> None:
        """Called just before this thread's request goes out (from the request's headers)."""
        slot = getattr(self._held, "slot", None)
        if slot is not None:
            self.pace.sending(slot)

    def acquire(self, *, search: bool = False) -> float:
        """A slot for a request whose answer is not reported: it counts as answered now."""
        slot, slept = self.pace.acquire()
        self.pace.release(slot, sample=False)
        return slept

    @contextlib.contextmanager
    def slot(self, *, search: bool = False) -> Iterator[float]:
        slot, slept = self.pace.acquire()
        self._held.slot = slot
        try:
            yield slept
        finally:
            self._held.slot = None
            self.pace.release(slot)


_SHARED: dict[tuple[str, int, float], PaceLimiter] = {}
_SHARED_LOCK = threading.Lock()


def process_pace_limiter(account: str, limit: int, window_s: float) -> PaceLimiter:
    """The limiter of `account` shared by this process's clients (no pace file)."""
    key = (account, limit, window_s)
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = PaceLimiter(MemoryPace(Rule.for_window(limit, window_s)))
        return limiter
