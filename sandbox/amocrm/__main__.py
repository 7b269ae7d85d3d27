"""Command line for the amoCRM sandbox.

python -m sandbox.amocrm serve [--port 8766] [--state .heatsync/sandbox/amocrm.json]
                               [--contacts 2000] [--seed 7] [--fail-rate 0.02] [--regenerate]
python -m sandbox.amocrm generate --contacts N --out FILE [--seed 7] [--anchor YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from datetime import date
from pathlib import Path

from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.state import AmoState

DEFAULT_STATE = Path(".heatsync/sandbox/amocrm.json")


def _generate(args: argparse.Namespace) -> int:
    anchor = date.fromisoformat(args.anchor) if args.anchor else None
    start = time.perf_counter()
    state = generate_state(args.contacts, args.seed, anchor)
    state.save(args.out)
    took = time.perf_counter() - start
    print(f"wrote {args.out}: {args.contacts} contacts (seed {args.seed}) in {took:.1f}s")
    return 0


def _serve(args: argparse.Namespace) -> int:
    path = Path(args.state)
    if path.exists() and not args.regenerate:
        state = AmoState.load(path)
        print(f"loaded {path}")
    else:
        anchor = date.fromisoformat(args.anchor) if args.anchor else None
        state = generate_state(args.contacts, args.seed, anchor)
        state.save(path)
        print(f"generated {path}: {args.contacts} contacts (seed {args.seed})")
    options = AmoOptions(
        fail_rate_5xx=args.fail_rate,
        latency_ms=args.latency_ms,
        access_token_ttl_s=args.access_ttl,
        rate_per_second=args.rate,
        log_requests=args.verbose,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = AmoSandboxServer(state, options, port=args.port, host=args.host, state_path=path)
    server.start()
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
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print(f"state saved to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.amocrm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the emulated amoCRM API until Ctrl-C / SIGTERM")
    serve.add_argument("--port", type=int, default=8766)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--state", default=str(DEFAULT_STATE))
    serve.add_argument("--contacts", type=int, default=2000)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--anchor", help="history anchor date (default: today UTC)")
    serve.add_argument("--fail-rate", type=float, default=0.0, help="share of requests → 5xx")
    serve.add_argument("--latency-ms", type=int, default=0)
    serve.add_argument("--rate", type=int, default=7, help="requests per second before 429")
    serve.add_argument(
        "--access-ttl", type=float, default=86_400.0, help="access token lifetime (s)"
    )
    serve.add_argument("--regenerate", action="store_true", help="ignore an existing state file")
    serve.add_argument("--verbose", action="store_true", help="log every request line")
    serve.set_defaults(func=_serve)

    gen = sub.add_parser("generate", help="write a freshly generated state file")
    gen.add_argument("--contacts", type=int, default=2000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--anchor")
    gen.add_argument("--out", required=True)
    gen.set_defaults(func=_generate)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
