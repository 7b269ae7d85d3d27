"""Hypothesis profiles for the property-based tests (docs/reliability.md), and state no test
may inherit from another.

`ci` (the default, used by `make test`): a small budget per property, no deadline (the
suite runs in 4 processes on 2 CPUs, so timings are noisy), no example database writes.
`thorough`: many more examples, for a run by hand or nightly: HYPOTHESIS_PROFILE=thorough.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=3_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _no_amocrm_block_from_an_earlier_test() -> None:
    """amoCRM's "account blocked" pause is remembered per server address for the process; a
    block set on purpose by one test must not meet a later test whose sandbox got the same port."""
    from connectors.amocrm import client

    with client._BLOCKED_LOCK:
        client._BLOCKED.clear()
