"""Command line for the amoCRM sandbox.

python -m sandbox.amocrm serve [--port 8766] [--state .heatsync/sandbox/amocrm.json]
                               [--contacts 2000] [--seed 7] [--fail-rate 0.02] [--regenerate]
python -m sandbox.amocrm generate --contacts N --out FILE [--seed 7] [--anchor YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox import cli
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState

DEFAULT_STATE = Path(".heatsync/sandbox/amocrm.json")


def _serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--rate", type=int, default=7, help="requests per second before 429")
    serve.add_argument(
        "--access-ttl", type=float, default=86_400.0, help="access token lifetime (s)"
    )


def _serve(args: argparse.Namespace) -> int:
    path = Path(args.state)
    state = cli.load_or_generate(args, AmoState.load, generate_state)
    options = AmoOptions(
        fail_rate_5xx=args.fail_rate,
        latency_ms=args.latency_ms,
        access_token_ttl_s=args.access_ttl,
        rate_per_second=args.rate,
        log_requests=args.verbose,
    )
    server = AmoSandboxServer(state, options, port=args.port, host=args.host, state_path=path)

    def announce() -> None:
        code = server.issue_code()
        refresh = options.refresh_token or ""
        spent = server.tokens.status("refresh", refresh)
        print(f"amoCRM sandbox listening on {server.base_url}  (account {state.account_id})")
        print(f"AMOCRM_BASE_URL={server.base_url}")
        print(f"AMOCRM_CLIENT_ID={options.client_id}")
        print(f"AMOCRM_CLIENT_SECRET={options.client_secret}")
        print(f"AMOCRM_REDIRECT_URI={options.redirect_uri}")
        print(f"AMOCRM_REFRESH_TOKEN={refresh}" + ("" if spent == "valid" else f"  ({spent})"))
        print(f"AMOCRM_ACCESS_TOKEN={options.long_lived_token}  (long-lived)")
        print(f"authorization code (single use, {int(options.auth_code_ttl_s)} s): {code}")

    return cli.serve_until_stopped(server, path, announce)


def main(argv: list[str] | None = None) -> int:
    return cli.main(
        argv,
        prog="python -m sandbox.amocrm",
        description=__doc__,
        crm="amoCRM",
        port=8766,
        default_state=DEFAULT_STATE,
        serve=_serve,
        serve_options=_serve_options,
        generate_state=generate_state,
    )


if __name__ == "__main__":
    raise SystemExit(main())
