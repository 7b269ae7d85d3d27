"""Write heatsync's results back to amoCRM: contact fields, their values, follow-up tasks.

- `ensure_schema`: heatsync's contact fields, found by `code`, created once (one POST of every
  missing field, ≤ 50) with `is_api_only` (reps see them, only the API writes them), select enums
  with codes (temperature cold/warm/hot, the segments, the trend), names in the locale (ru, en,
  lv). A field whose name, enums or flag drifted from the locale's gets one PATCH (enums sent as
  the complete list, existing ones with their ids). A second run sends no write. amoCRM fields
  carry no description, so the descriptions live in the README (and in `check`).
- `write_fields`: only the changed heatsync fields of each contact (never its other fields, never
  PHONE/EMAIL), `PATCH /api/v4/contacts` in batches ≤ 50 with `request_id` = contact id. amoCRM
  rejects a whole batch for one invalid element (400 `validation-errors`): the elements it names
  are reported failed and the rest sent again; an error naming none is bisected, so one bad
  record never loses the others.
- Tasks: amoCRM has no idempotency key, so each task's text ends with heatsync's marker
  (`connectors.amocrm.markers`, `[hs:<rule>:<period>:<hash>]`). `create_tasks` first looks for
  the markers among the contact's tasks (open and recent, `find_tasks`) and creates only what is
  missing. A create whose outcome is unknown (5xx, dropped connection, timeout) is never sent
  again blindly: after a pause, the contacts' tasks are read again and only the still missing
  ones are created (bounded attempts).

The work lives in four modules, re-exported here so that `from connectors.amocrm.writeback import
...` keeps naming all of it: the field schema in `connectors.amocrm.field_schema`, field values in
`connectors.amocrm.field_values`, tasks in `connectors.amocrm.tasks`, and the batching both
writes share in `connectors.amocrm.batches`.
"""

from __future__ import annotations

from connectors.amocrm.batches import chunks, send_batch
from connectors.amocrm.field_schema import (
    FIELD_TYPES,
    SELECT_OPTIONS,
    VIP_CODE,
    check_schema,
    ensure_schema,
    field_specs,
)
from connectors.amocrm.field_values import local_midnight, render_values, write_fields
from connectors.amocrm.tasks import create_tasks, find_tasks, task_body, task_text, task_type_id

__all__ = [
    "FIELD_TYPES",
    "SELECT_OPTIONS",
    "VIP_CODE",
    "check_schema",
    "chunks",
    "create_tasks",
    "ensure_schema",
    "field_specs",
    "find_tasks",
    "local_midnight",
    "render_values",
    "send_batch",
    "task_body",
    "task_text",
    "task_type_id",
    "write_fields",
]
