"""`make demo` and `make ui`: a sandbox HubSpot portal and a sandbox amoCRM account served by one
heatsync deployment, sharing one run history.

Both emulators answer over loopback HTTP exactly as api.hubapi.com and an amoCRM account would
(2 % of requests answered 5xx, each CRM's rate limits enforced). The demo writes a portals file
that names them (`hubspot-sandbox`, `amocrm-sandbox`) and runs `heatsync run`, which runs every
portal of it and prints one summary each. The portals' state lives in `.heatsync/sandbox/`;
heatsync's stores, the portals file and Dagster's run history under `.heatsync/demo/`, apart from
any real portal's data.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import HubSpotState, generate_state

ROOT = Path(__file__).resolve().parent.parent
DEMO_HOME = ROOT / ".heatsync" / "demo"
SANDBOX_DIR = ROOT / ".heatsync" / "sandbox"
HUBSPOT_PORTAL = "hubspot-sandbox"
AMOCRM_PORTAL = "amocrm-sandbox"
# The variables the demo's portals file names; the sandboxes' own throwaway tokens go in them.
TOKEN_VARIABLES = {HUBSPOT_PORTAL: "DEMO_HUBSPOT_TOKEN", AMOCRM_PORTAL: "DEMO_AMOCRM_TOKEN"}
# Whatever a .env says, the demo must never reach a real portal.
CLEARED = (
    "HEATSYNC_CRM",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_CLIENT_ID",
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_REFRESH_TOKEN",
    "HUBSPOT_BASE_URL",
    "AMOCRM_BASE_URL",
    "AMOCRM_ACCESS_TOKEN",
    "AMOCRM_CLIENT_ID",
    "AMOCRM_CLIENT_SECRET",
    "AMOCRM_REDIRECT_URI",
    "AMOCRM_REFRESH_TOKEN",
    "AMOCRM_AUTH_CODE",
    "AMOCRM_TOKEN_DIR",
    "HEATSYNC_LOCALE",
    "HEATSYNC_SCORING_CONFIG",
)


def _hubspot_state(path: Path, contacts: int, seed: int) -> HubSpotState:
    if path.exists():
        print(f"sandbox HubSpot portal: {path} (delete it, or `make clean`, for a fresh one)")
        return HubSpotState.load(path)
    print(f"sandbox HubSpot portal: generating {contacts} contacts (seed {seed}) into {path}")
    state = generate_state(contacts, seed)
    state.save(path)
    return state


def _amocrm_state(path: Path, contacts: int, seed: int) -> AmoState:
    if path.exists():
        print(f"sandbox amoCRM account: {path} (delete it, or `make clean`, for a fresh one)")
        return AmoState.load(path)
    print(f"sandbox amoCRM account: generating {contacts} contacts (seed {seed}) into {path}")
    state = generate_amocrm(contacts, seed)
    state.save(path)
    return state


def portals_file(hubspot: SandboxServer, amocrm: AmoSandboxServer) -> Path:
    """The demo's portals file: both sandboxes, credentials by variable name only."""
    portals: list[dict[str, Any]] = [
        {
            "name": HUBSPOT_PORTAL,
            "crm": "hubspot",
            "base_url": hubspot.base_url,
            "credentials": {"access_token": TOKEN_VARIABLES[HUBSPOT_PORTAL]},
        },
        {
            "name": AMOCRM_PORTAL,
            "crm": "amocrm",
            "base_url": amocrm.base_url,
            "credentials": {"access_token": TOKEN_VARIABLES[AMOCRM_PORTAL]},
        },
    ]
    path = DEMO_HOME / "portals.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# written by `make demo`: the two sandbox portals it serves\n"
    path.write_text(header + yaml.safe_dump({"portals": portals}, sort_keys=False))
    return path


def _point_environment_at(hubspot: SandboxServer, amocrm: AmoSandboxServer) -> None:
    """The sandboxes, not whatever a .env names."""
    for name in CLEARED:
        os.environ[name] = ""
    os.environ.update(
        {
            TOKEN_VARIABLES[HUBSPOT_PORTAL]: hubspot.token,
            TOKEN_VARIABLES[AMOCRM_PORTAL]: str(amocrm.long_lived_token),
            "HEATSYNC_PORTALS": str(portals_file(hubspot, amocrm)),
            "HEATSYNC_HOME": str(DEMO_HOME),
            "DAGSTER_HOME": str(DEMO_HOME / "dagster"),
            "HEATSYNC_DRY_RUN": "false",
        }
    )


def _backtest_day(portal: str, time_zone: str) -> str | None:
    """The day today's backtest looks back to, when the portal's store has no scores for it."""
    import pandas as pd

    from pipelines.config import heatsync_config
    from pipelines.run.asof import local_today
    from pipelines.store import PortalStore

    horizon = heatsync_config(os.environ).backtest_horizon_days
    today = local_today(time_zone, pd.Timestamp.now(tz="UTC"))
    day = (pd.Timestamp(today) - pd.Timedelta(days=horizon)).date().isoformat()
    return None if PortalStore(DEMO_HOME, portal).scores(day) is not None else day


@contextmanager
def _serving(args: argparse.Namespace) -> Iterator[tuple[SandboxServer, AmoSandboxServer]]:
    SANDBOX_DIR.mkdir(parents=True, exist_ok=True)
    hubspot_path = Path(args.state)
    amocrm_path = Path(args.amocrm_state)
    hubspot = SandboxServer(
        _hubspot_state(hubspot_path, args.contacts, args.seed),
        SandboxOptions(fail_rate_5xx=args.fail_rate),
        port=args.port,
        state_path=hubspot_path,
    )
    amocrm = AmoSandboxServer(
        _amocrm_state(amocrm_path, args.amocrm_contacts, args.seed),
        AmoOptions(fail_rate_5xx=args.fail_rate),
        port=args.amocrm_port,
        state_path=amocrm_path,
    )
    with ExitStack() as stack:
        for server, port, variable in (
            (hubspot, args.port, "SANDBOX_PORT"),
            (amocrm, args.amocrm_port, "AMOCRM_PORT"),
        ):
            try:
                server.start()
            except OSError as exc:
                raise _PortTaken(
                    f"cannot listen on port {port} ({exc}); try `make demo {variable}={port + 10}`"
                ) from None
            stack.callback(server.stop)
        yield hubspot, amocrm


class _PortTaken(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="the HubSpot sandbox's port")
    parser.add_argument("--amocrm-port", type=int, default=8766, help="the amoCRM sandbox's port")
    parser.add_argument("--state", default=str(SANDBOX_DIR / "hubspot.json"))
    parser.add_argument("--amocrm-state", default=str(SANDBOX_DIR / "amocrm.json"))
    parser.add_argument("--contacts", type=int, default=2000, help="HubSpot portal's contacts")
    parser.add_argument("--amocrm-contacts", type=int, default=1000, help="amoCRM's contacts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fail-rate", type=float, default=0.02, help="share of requests answered 5xx"
    )
    parser.add_argument("--ui", action="store_true", help="open the Dagster UI instead of one run")
    parser.add_argument("--ui-port", type=int, default=3000, help="port of the Dagster UI")
    args = parser.parse_args(argv)

    try:
        with _serving(args) as (hubspot, amocrm):
            _point_environment_at(hubspot, amocrm)
            print(
                f"sandbox HubSpot at {hubspot.base_url} (portal {HUBSPOT_PORTAL}), sandbox amoCRM "
                f"at {amocrm.base_url} (portal {AMOCRM_PORTAL}), {args.fail_rate:.0%} 5xx each"
            )
            print(f"portals file: {os.environ['HEATSYNC_PORTALS']}")
            if args.ui:
                return _ui(args.ui_port)
            return _run(hubspot, amocrm)
    except _PortTaken as exc:
        print(exc)
        return 2


def _run(hubspot: SandboxServer, amocrm: AmoSandboxServer) -> int:
    from pipelines.cli import main as heatsync

    zones = {HUBSPOT_PORTAL: hubspot.state.account.get("timeZone", "UTC")}
    zones[AMOCRM_PORTAL] = amocrm.state.timezone
    backfilled = False
    for portal, zone in zones.items():
        past = _backtest_day(portal, zone)
        if past:
            print(f"\nbackfilling {past} on {portal} (scores only; a past day writes nothing)")
            print("so that today's run can backtest what those scores predicted")
            backfilled = True
            if heatsync(["run", "--day", past, "--portal", portal]) != 0:
                return 1
    code = heatsync(["run"])
    print()
    for name, stats in (("HubSpot", hubspot.stats()), ("amoCRM", amocrm.stats())):
        print(
            f"sandbox {name} saw {stats['requests']} requests, {stats['writes']} writes, "
            f"{stats['5xx']} injected 5xx, {stats['429']} × 429"
            + (" (backfill and today's run)" if backfilled else "")
        )
    print("\nRun `make demo` again: nothing changed in the portals, so nothing is written.")
    print("Open the Dagster UI on both portals and their run history: `make ui`")
    return code


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
    print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C to stop; the sandboxes stop with it)")
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-p", str(port)]
    try:
        return subprocess.call(command, cwd=ROOT)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
