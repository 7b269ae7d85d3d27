"""`heatsync check`: what the configured credentials reach, and whether a run would work."""

from __future__ import annotations

from pipelines.cli.common import load_env, settings_from_env


def check(portal: str) -> int:
    """`heatsync check`: what the configured credentials reach, and whether a run would work."""
    load_env()
    settings, config = settings_from_env(portal)
    from connectors.hubspot import HubSpotConnector
    from pipelines.store import account_key

    report = HubSpotConnector(settings).check(config.locale)
    print(f"heatsync check · portal {portal} · {settings.base_url}")
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
