"""The run layer, free of Dagster: one portal, one day.

`pipelines.run.asof` turns a day partition into the as-of a run works with, in one place;
`pipelines.run.day` runs each step of that day (extract, scores, write-back, tasks, backtest)
with it, holding the portal's lock and applying the rules of what a day may do (a past day whose
store is already current skips the extract; only the portal's today writes to the CRM). The
Dagster assets and the `heatsync` command line both call it.
"""
