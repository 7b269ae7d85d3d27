"""`heatsync check`: what each portal's credentials reach, and whether a run would work."""

from __future__ import annotations

import sys

from pipelines.cli.common import (
    PortalSetup,
    label,
    load_env,
    selected_portals,
    setup,
    unconfigured,
)


def check(portal: str | None) -> int:
    """`heatsync check [--portal NAME]`: a read-only report per portal; 0 when every one is
    ready, else 1."""
    load_env()
    from connectors.http import ConnectorError
    from pipelines.config import MissingCredentials

    codes = []
    for chosen in selected_portals(portal):
        try:
            codes.append(_check(setup(chosen)))
        except MissingCredentials as exc:
            print(f"heatsync check: {unconfigured(exc, chosen)}", file=sys.stderr)
            codes.append(1)
        except ConnectorError as exc:
            print(f"heatsync check: {label(chosen)}{exc}", file=sys.stderr)
            codes.append(1)
    return max(codes)


def _check(done: PortalSetup) -> int:
    from pipelines.store import account_key

    portal, connector, config = done.portal.name, done.connector, done.config
    report = connector.check(config.locale)
    base_url = getattr(getattr(connector, "settings", None), "base_url", "")
    print(f"heatsync check · portal {portal} · {done.portal.crm.name} · {base_url}".rstrip(" ·"))
    for item in report.items:
        mark = "ok  " if item.ok and not item.warning else ("warn" if item.ok else "FAIL")
        print(f"  {mark} {item.name}: {item.detail}")
    store = config.store(portal)
    bound = store.account
    if report.account_id is not None:
        reached = account_key(report.crm, report.account_id)
        if bound is None:
            print(f"  ok   local store: the first run binds {portal!r} to {reached}")
        elif bound == reached:
            print(f"  ok   local store: {portal!r} is {reached} ({store.root})")
        else:
            print(
                f"  warn local store: {portal!r} was {bound}; these credentials reach {reached}, "
                "which gets its own store and a full first extract"
            )
    print("ready to run" if report.ok else "not ready: fix the FAIL lines above")
    return 0 if report.ok else 1
