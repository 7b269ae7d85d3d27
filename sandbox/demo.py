"""`make demo` and `make ui`: the sandbox HubSpot portal plus heatsync, sharing one history.

The portal state, heatsync's local store and Dagster's run history all live under
`.heatsync/demo/` (the portal itself in `.heatsync/sandbox/`), apart from any real portal's data.
The pipeline talks to the sandbox over HTTP exactly as it would to api.hubapi.com.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import HubSpotState, generate_state

ROOT = Path(__file__).resolve().parent.parent
DEMO_HOME = ROOT / ".heatsync" / "demo"


def _load_or_generate(path: Path, contacts: int, seed: int) -> HubSpotState:
    if path.exists():
        print(f"sandbox portal: {path} (delete it, or `make clean`, for a fresh one)")
        return HubSpotState.load(path)
    print(f"sandbox portal: generating {contacts} contacts (seed {seed}) into {path}")
    state = generate_state(contacts, seed)
    state.save(path)
    return state


def _point_environment_at(server: SandboxServer) -> None:
    """The sandbox, not whatever a .env names: the demo must never touch a real portal."""
    os.environ.update(
        {
            "HUBSPOT_BASE_URL": server.base_url,
            "HUBSPOT_ACCESS_TOKEN": server.token,
            "HUBSPOT_CLIENT_ID": "",
            "HUBSPOT_CLIENT_SECRET": "",
            "HUBSPOT_REFRESH_TOKEN": "",
            "HEATSYNC_HOME": str(DEMO_HOME),
            "DAGSTER_HOME": str(DEMO_HOME / "dagster"),
            "HEATSYNC_DRY_RUN": "false",
        }
    )


def _backtest_day(state: HubSpotState) -> str | None:
    """The day today's backtest looks back to, when the demo store has no scores for it yet."""
    import pandas as pd

    from pipelines.config import heatsync_config
    from pipelines.steps import local_today
    from pipelines.store import PortalStore

    horizon = heatsync_config(os.environ).backtest_horizon_days
    today = local_today(state.account.get("timeZone", "UTC"), pd.Timestamp.now(tz="UTC"))
    day = (pd.Timestamp(today) - pd.Timedelta(days=horizon)).date().isoformat()
    return None if PortalStore(DEMO_HOME, "default").scores(day) is not None else day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state", default=str(ROOT / ".heatsync" / "sandbox" / "hubspot.json"))
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fail-rate", type=float, default=0.02, help="share of requests answered 5xx"
    )
    parser.add_argument("--ui", action="store_true", help="open the Dagster UI instead of one run")
    parser.add_argument("--ui-port", type=int, default=3000, help="port of the Dagster UI")
    args = parser.parse_args(argv)

    path = Path(args.state)
    state = _load_or_generate(path, args.contacts, args.seed)
    options = SandboxOptions(fail_rate_5xx=args.fail_rate)
    server = SandboxServer(state, options, port=args.port, state_path=path)
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on port {args.port} ({exc}); try `make demo SANDBOX_PORT=8766`")
        return 2
    _point_environment_at(server)
    print(f"sandbox HubSpot at {server.base_url} (token {server.token}), {args.fail_rate:.0%} 5xx")
    try:
        if args.ui:
            return _ui(args.ui_port)
        from pipelines.cli import main as heatsync

        past = _backtest_day(state)
        if past:
            print(f"backfilling {past} (scores only; a past day writes nothing to the CRM)")
            print("so that today's run can backtest what those scores predicted")
            if heatsync(["run", "--day", past]) != 0:
                return 1
        code = heatsync(["run"])
        stats = server.stats()
        print(
            f"  sandbox saw  {stats['requests']} requests, {stats['writes']} writes, "
            f"{stats['5xx']} injected 5xx, {stats['429']} × 429"
            + (" (backfill and today's run)" if past else "")
        )
        print("\nRun `make demo` again: nothing changed in the portal, so nothing is written.")
        print("Open the Dagster UI on this portal and its run history: `make ui`")
        return code
    finally:
        server.stop()


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _ui(port: int = 3000) -> int:
    from pipelines.cli import _ensure_dagster_home

    if _port_taken(port):
        print(f"port {port} is in use; try `make ui UI_PORT={port + 1}`")
        return 2
    _ensure_dagster_home()
    print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C to stop; the sandbox stops with it)")
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-p", str(port)]
    try:
        return subprocess.call(command, cwd=ROOT)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
