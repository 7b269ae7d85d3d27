"""A code location for the serve test: one job whose only op naps, so that runs overlap when the
queue lets them. Whoever launches it tags the run with a portal."""

from __future__ import annotations

import time

import dagster as dg

NAP_SECONDS = 5.0


@dg.op
def nap() -> None:
    time.sleep(NAP_SECONDS)


@dg.job(executor_def=dg.in_process_executor)
def nap_job() -> None:
    nap()


defs = dg.Definitions(jobs=[nap_job])
