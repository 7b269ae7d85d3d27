"""Write heatsync's results back to HubSpot: property schema, contact fields, follow-up tasks.

- `ensure_schema`: idempotent. GET each group/property first; create on 404 (a 409 means it
  exists) with the locale's label and description; PATCH only the labels, descriptions and
  options that differ from the locale's (one request per property). A second run sends no write.
- `write_fields`: only changed fields, rendered in HubSpot formats, batch/update ≤ 100; a 207's
  transient per-row errors are retried (bounded rounds; a round after a LOCKED row waits out the
  2 s lock), the rest reported in WriteReport.failed.
- `find_tasks`: a consistent lookup (v4 associations contact→tasks + batch read of
  heatsync_task_key), not search, which lags behind writes.
- `create_tasks`: skip keys that already exist; batch/create ≤ 100 with inline association to the
  contact (type 204) and objectWriteTraceId = task key. An ambiguous failure (5xx, dropped
  connection, timeout) is never retried blindly: reconcile with `find_tasks`, then create only the
  missing ones (bounded attempts).

The work lives in three modules, one job each, re-exported here so that
`from connectors.hubspot.writeback import ...` keeps naming all of it: the property schema in
`connectors.hubspot.properties`, field write-back in `connectors.hubspot.fields`, tasks in
`connectors.hubspot.tasks`.
"""

from __future__ import annotations

from connectors.hubspot.fields import (
    LOCK_WAIT_S,
    TRANSIENT_CATEGORIES,
    TRANSIENT_ROW_STATUSES,
    render_value,
    write_fields,
)
from connectors.hubspot.properties import check_schema, ensure_schema, property_specs
from connectors.hubspot.tasks import create_tasks, find_tasks, task_input

__all__ = [
    "LOCK_WAIT_S",
    "TRANSIENT_CATEGORIES",
    "TRANSIENT_ROW_STATUSES",
    "check_schema",
    "create_tasks",
    "ensure_schema",
    "find_tasks",
    "property_specs",
    "render_value",
    "task_input",
    "write_fields",
]
