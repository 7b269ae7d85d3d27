"""The command line both emulators share: `serve` (load or generate the state file, then serve
until Ctrl-C / SIGTERM) and `generate` (write a freshly generated state file)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from sandbox.http import EmulatorServer
from sandbox.persist import JsonFileState

StateT = TypeVar("StateT", bound=JsonFileState)
# (contacts, seed, anchor date or None for today) -> a fresh state
Generate = Callable[[int, int, date | None], StateT]


def _anchor(args: argparse.Namespace) -> date | None:
    return date.fromisoformat(args.anchor) if args.anchor else None


def generate(args: argparse.Namespace, generate_state: Generate[Any]) -> int:
    start = time.perf_counter()
    state = generate_state(args.contacts, args.seed, _anchor(args))
    state.save(args.out)
    took = time.perf_counter() - start
    print(f"wrote {args.out}: {args.contacts} contacts (seed {args.seed}) in {took:.1f}s")
    return 0


def load_or_generate(
    args: argparse.Namespace,
    load: Callable[[Path], StateT],
    generate_state: Generate[StateT],
) -> StateT:
    """The state in `args.state`, or (missing, or `--regenerate`) a generated one saved there."""
    path = Path(args.state)
    if path.exists() and not args.regenerate:
        state = load(path)
        print(f"loaded {path}")
        return state
    state = generate_state(args.contacts, args.seed, _anchor(args))
    state.save(path)
    print(f"generated {path}: {args.contacts} contacts (seed {args.seed})")
    return state


def serve_until_stopped(
    server: EmulatorServer[Any, Any], path: Path, announce: Callable[[], None]
) -> int:
    """Start `server`, `announce` it, serve until Ctrl-C or SIGTERM, then stop (saving state)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    announce()
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


def main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str | None,
    crm: str,
    port: int,
    default_state: Path,
    serve: Callable[[argparse.Namespace], int],
    serve_options: Callable[[argparse.ArgumentParser], None],
    generate_state: Generate[Any],
) -> int:
    """Parse `argv` and run `serve` or `generate`; `serve_options` adds the CRM's own options
    of `serve` (listed after the shared ones, before --regenerate and --verbose)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)

    srv = sub.add_parser("serve", help=f"serve the emulated {crm} API until Ctrl-C / SIGTERM")
    srv.add_argument("--port", type=int, default=port)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--state", default=str(default_state))
    srv.add_argument("--contacts", type=int, default=2000)
    srv.add_argument("--seed", type=int, default=7)
    srv.add_argument("--anchor", help="history anchor date (default: today UTC)")
    srv.add_argument("--fail-rate", type=float, default=0.0, help="share of requests → 5xx")
    srv.add_argument("--latency-ms", type=int, default=0)
    serve_options(srv)
    srv.add_argument("--regenerate", action="store_true", help="ignore an existing state file")
    srv.add_argument("--verbose", action="store_true", help="log every request line")
    srv.set_defaults(func=serve)

    gen = sub.add_parser("generate", help="write a freshly generated state file")
    gen.add_argument("--contacts", type=int, default=2000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--anchor")
    gen.add_argument("--out", required=True)
    gen.set_defaults(func=lambda args: generate(args, generate_state))

    args = parser.parse_args(argv)
    return int(args.func(args))
