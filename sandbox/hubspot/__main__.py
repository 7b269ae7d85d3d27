"""Command line for the HubSpot sandbox.

python -m sandbox.hubspot serve [--port 8765] [--state .heatsync/sandbox/hubspot.json]
                                [--contacts 2000] [--seed 7] [--fail-rate 0.02] [--regenerate]
python -m sandbox.hubspot generate --contacts N --out FILE [--seed 7] [--anchor YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox import cli
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import HubSpotState, generate_state

DEFAULT_STATE = Path(".heatsync/sandbox/hubspot.json")


def _serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--search-lag", type=float, default=0.0, help="seconds until search sees writes"
    )
    serve.add_argument("--token", default="sandbox-token")


def _serve(args: argparse.Namespace) -> int:
    path = Path(args.state)
    state = cli.load_or_generate(args, HubSpotState.load, generate_state)
    options = SandboxOptions(
        token=args.token,
        fail_rate_5xx=args.fail_rate,
        latency_ms=args.latency_ms,
        search_lag_s=args.search_lag,
        log_requests=args.verbose,
    )
    server = SandboxServer(state, options, port=args.port, host=args.host, state_path=path)

    def announce() -> None:
        print(f"HubSpot sandbox listening on {server.base_url}")
        print(f"token: {server.token}")
        print(
            f"OAuth: client_id={options.client_id} client_secret={options.client_secret} "
            f"refresh_token={options.refresh_token}"
        )

    return cli.serve_until_stopped(server, path, announce)


def main(argv: list[str] | None = None) -> int:
    return cli.main(
        argv,
        prog="python -m sandbox.hubspot",
        description=__doc__,
        crm="HubSpot",
        port=8765,
        default_state=DEFAULT_STATE,
        serve=_serve,
        serve_options=_serve_options,
        generate_state=generate_state,
    )


if __name__ == "__main__":
    raise SystemExit(main())
