"""`heatsync check`: what the configured credentials reach, and whether a run would work."""

from __future__ import annotations

from pipelines.cli.common import connector_from_env, load_env


def check(portal: str) -> int:
    """`heatsync check`: what the configured credentials reach, and whether a run would work."""
    load_env()
    crm, connector, config = connector_from_env(portal)
    from pipelines.store import account_key

    report = connector.check(config.locale)
    base_url = getattr(getattr(connector, "settings", None), "base_url", "")
    print(f"heatsync check · portal {portal} · {crm.name} · {base_url}".rstrip(" ·"))
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
