"""Every environment variable that configures a CRM connection, read from the CRM registry: tests
that configure a portal by the environment clear them all first, so that a developer's shell or
`.env` never leaks in (and a CRM added to the registry is covered without touching the tests)."""

from __future__ import annotations

from pipelines.crms import CRMS

CRM_VARIABLES: tuple[str, ...] = (
    "HEATSYNC_CRM",
    "HEATSYNC_PORTALS",
    *sorted({name for crm in CRMS.values() for name in (*crm.variables.values(), *crm.options)}),
)
