"""The line `heatsync run` prints for a step that failed after Dagster's retries names the cause
(the last attempt's error), not only Dagster's "Exceeded max_retries of 2": the fault matrix's
starved search budget ended with that line alone."""

from __future__ import annotations

import dagster as dg

from connectors.http import RateLimitedError
from pipelines.cli.run import _step_failures


def _run(error: Exception, retries: int) -> dg.ExecuteInProcessResult:
    @dg.op(retry_policy=dg.RetryPolicy(max_retries=retries, delay=0))
    def extract() -> None:
        raise error

    @dg.job
    def daily() -> None:
        extract()

    return daily.execute_in_process(raise_on_error=False)


def test_a_step_failing_after_its_retries_names_the_last_error() -> None:
    error = RateLimitedError("You have reached your secondly limit.", status=429, path="/x")
    ((step, line),) = _step_failures(_run(error, retries=2))
    assert step == "extract"
    assert "HTTP 429" in line and "secondly limit" in line, line
    assert "max_retries" not in line and "(the step failed 3 times)" in line, line
    # what to do, without Python's class path in front
    assert "another app may be spending the same API budget" in line, line
    assert not line.startswith("connectors.") and "RateLimitedError" not in line, line


def test_a_step_failing_without_retries_keeps_its_own_line() -> None:
    error = RateLimitedError("You have reached your secondly limit.", status=429, path="/x")
    ((_, line),) = _step_failures(_run(error, retries=0))
    assert "secondly limit" in line and "failed" not in line.split("limit")[-1], line


def test_an_error_with_no_advice_is_left_as_it_is() -> None:
    ((_, line),) = _step_failures(_run(ValueError("portal settings: no base URL"), retries=0))
    assert line == "portal settings: no base URL", line
