"""SIGKILL trials: `heatsync run` killed at a random moment, then run again, must converge.

Per CRM: a sandbox portal is generated once from the seed; an uninterrupted reference run on a
fresh copy measures how long a clean run is busy (from the first request of its extract, after
Dagster has loaded, to its exit) and records the heatsync fields and task keys it leaves in the
CRM. Each trial then serves another fresh copy over loopback HTTP (with `--latency-ms` per
request, so that the windows between a request and the store's write after it are wide), starts
`heatsync run` as a subprocess with its own HEATSYNC_HOME and DAGSTER_HOME, and SIGKILLs it (its
process group) at a moment drawn uniformly over the reference's busy time, counted from the
first request of its extract. Then `heatsync run` goes again without latency and must exit 0,
and the trial checks:

- no duplicate task: no (contact, task key) twice among the CRM's heatsync tasks;
- converged: every contact's heatsync fields in the CRM equal the reference run's, temperature
  and score equal the scores the store recorded for the day, the task keys in the CRM are the
  reference's, and the ledger holds exactly those, all `created`;
- the store is readable: every Parquet and JSON file of the home loads, and every table loads
  through `PortalStore`; temporary files left by the kill (`.<name>.<random>.tmp`) are counted
  and must not be matched by the store's own file patterns.

Trials run `--jobs` at a time (each with its own sandbox and folders). Prints one line per trial
and a table per CRM; exits 1 on any failure, naming the seed and the trial to run again
(`--seed S --only-trial K`): trial K's kill moment is the same fraction of the busy time.

python benchmarks/crash_trials.py [--crm hubspot|amocrm|both] [--trials 50] [--seed S]
    [--contacts 300] [--latency-ms 20] [--jobs 2] [--only-trial K]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from pipelines.run.asof import local_today
from pipelines.store import PortalStore
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state as generate_hubspot

ROOT = Path(__file__).resolve().parents[1]
PORTAL = "default"
RUN_TIMEOUT_S = 300
MARKER = re.compile(r"\[hs:[^\]]+\]")
STORE_PATTERNS = ("*.parquet", "*.json", "scores/*.parquet", "log/*.parquet")

Server = SandboxServer | AmoSandboxServer
Fields = dict[str, dict[str, str]]  # contact id -> heatsync field -> value as the CRM holds it


_handle_error = socketserver.BaseServer.handle_error


def _quiet(self: socketserver.BaseServer, request: Any, address: Any) -> None:
    """A killed client resets its connections: not worth a traceback from the sandbox."""
    if not isinstance(sys.exc_info()[1], ConnectionError):
        _handle_error(self, request, address)


# ---------------------------------------------------------------- what differs per CRM
@dataclass(frozen=True)
class Crm:
    name: str
    generate: Callable[[int, int], Any]
    serve: Callable[[Any, int], Server]
    env: Callable[[Server], dict[str, str]]
    tasks: Callable[[Server], Counter[tuple[str, str]]]  # (contact, key) -> how many
    fields: Callable[[Server], Fields]
    time_zone: Callable[[Server], str]
    extract_route: str  # the first request of the extract proper
    update_route: str
    create_route: str


def _hubspot_serve(state: Any, latency_ms: int) -> Server:
    return SandboxServer(state.copy(), SandboxOptions(latency_ms=latency_ms), port=0)


def _hubspot_env(srv: Server) -> dict[str, str]:
    assert isinstance(srv, SandboxServer)
    return {"HUBSPOT_BASE_URL": srv.base_url, "HUBSPOT_ACCESS_TOKEN": srv.token}


def _hubspot_tasks(srv: Server) -> Counter[tuple[str, str]]:
    assert isinstance(srv, SandboxServer)
    with srv.lock:
        keys = [
            str(rec.props["heatsync_task_key"])
            for rec in srv.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        ]
    # the key is account:contact:rule:period
    return Counter((key.split(":")[1], key) for key in keys)


def _hubspot_fields(srv: Server) -> Fields:
    assert isinstance(srv, SandboxServer)
    skip = ("heatsync_vip",)
    with srv.lock:
        return {
            str(rec.id): {
                name: str(value)
                for name, value in rec.props.items()
                if name.startswith("heatsync_") and name not in skip
            }
            for rec in srv.state.iter_live("contacts")
        }


def _hubspot_zone(srv: Server) -> str:
    assert isinstance(srv, SandboxServer)
    return str(srv.state.account.get("timeZone", "UTC"))


def _amocrm_serve(state: Any, latency_ms: int) -> Server:
    fresh = type(state).from_json(state.to_json())
    return AmoSandboxServer(fresh, AmoOptions(latency_ms=latency_ms), port=0)


def _amocrm_env(srv: Server) -> dict[str, str]:
    assert isinstance(srv, AmoSandboxServer)
    return {"AMOCRM_BASE_URL": srv.base_url, "AMOCRM_ACCESS_TOKEN": str(srv.long_lived_token)}


def _amocrm_tasks(srv: Server) -> Counter[tuple[str, str]]:
    assert isinstance(srv, AmoSandboxServer)
    with srv.lock:
        return Counter(
            (str(task.get("entity_id")), mark)
            for task in srv.state.tasks.values()
            for mark in MARKER.findall(str(task.get("text") or ""))
        )


def _amocrm_fields(srv: Server) -> Fields:
    assert isinstance(srv, AmoSandboxServer)
    with srv.lock:
        defs = {
            f["id"]: f
            for f in srv.state.custom_fields["contacts"]
            if str(f.get("code") or "").startswith("HEATSYNC_") and f.get("code") != "HEATSYNC_VIP"
        }
        out: Fields = {}
        for contact in srv.state.contacts.values():
            if contact.get("is_deleted"):
                continue
            row: dict[str, str] = {}
            for value in contact.get("custom_fields_values") or []:
                spec = defs.get(value.get("field_id"))
                if spec is None or not value.get("values"):
                    continue
                enums = {e["id"]: e.get("code") or e["value"] for e in spec.get("enums") or []}
                row[str(spec["code"])] = "|".join(
                    str(enums.get(v.get("enum_id"), v.get("value"))) for v in value["values"]
                )
            out[str(contact["id"])] = row
        return out


def _amocrm_zone(srv: Server) -> str:
    assert isinstance(srv, AmoSandboxServer)
    return str(srv.state.timezone)


CRMS = {
    "hubspot": Crm(
        "hubspot",
        lambda n, seed: generate_hubspot(n, seed=seed),
        _hubspot_serve,
        _hubspot_env,
        _hubspot_tasks,
        _hubspot_fields,
        _hubspot_zone,
        extract_route="GET objects/contacts",
        update_route="POST objects/contacts/batch/update",
        create_route="POST objects/tasks/batch/create",
    ),
    "amocrm": Crm(
        "amocrm",
        lambda n, seed: generate_amocrm(n, seed=seed),
        _amocrm_serve,
        _amocrm_env,
        _amocrm_tasks,
        _amocrm_fields,
        _amocrm_zone,
        extract_route="GET /api/v4/contacts",
        update_route="PATCH /api/v4/contacts",
        create_route="POST /api/v4/tasks",
    ),
}
# what the store's scores say of a field, and the field's name in each CRM
SCORE_FIELDS = {
    "hubspot": {"temperature": "heatsync_temperature", "score": "heatsync_score"},
    "amocrm": {"temperature": "HEATSYNC_TEMPERATURE", "score": "HEATSYNC_SCORE"},
}


# ---------------------------------------------------------------- one run of heatsync
def start_run(crm: Crm, srv: Server, work: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "AMOCRM_"))}
    env.pop("HEATSYNC_CRM", None)
    env.pop("HEATSYNC_PORTALS", None)
    env.update(
        crm.env(srv),
        HEATSYNC_HOME=str(work / "home"),
        DAGSTER_HOME=str(work / "dagster"),
        PYTHONPATH=str(ROOT),
    )
    with (work / "run.log").open("a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "run"],
            cwd=work,  # no stray .env or portals.yaml is read
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, killed as one
        )


def extract_began(crm: Crm, srv: Server, proc: subprocess.Popen[str]) -> float | None:
    """The moment the run's extract reached the sandbox (None: the run exited first)."""
    while not srv.stats()["by_route"].get(crm.extract_route):
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    return time.monotonic()


@dataclass
class Reference:
    busy_s: float  # first extract request to exit
    total_s: float
    fields: Fields
    tasks: set[tuple[str, str]]
    day: str


def reference(crm: Crm, state: Any, latency_ms: int, scratch: Path) -> Reference:
    work = Path(tempfile.mkdtemp(prefix="reference-", dir=scratch))
    with crm.serve(state, latency_ms) as srv:
        started = time.monotonic()
        proc = start_run(crm, srv, work)
        first = extract_began(crm, srv, proc)
        code = proc.wait(RUN_TIMEOUT_S)
        ended = time.monotonic()
        if code != 0 or first is None:
            raise SystemExit(f"{crm.name}: the reference run failed ({code}): {work / 'run.log'}")
        tasks = crm.tasks(srv)
        if any(n > 1 for n in tasks.values()):
            raise SystemExit(f"{crm.name}: the reference run made duplicate tasks")
        day = local_today(crm.time_zone(srv), pd.Timestamp.now(tz="UTC"))
        return Reference(ended - first, ended - started, crm.fields(srv), set(tasks), day)


# ---------------------------------------------------------------- one trial
@dataclass
class Outcome:
    trial: int
    fraction: float
    delay_s: float
    killed: bool
    phase: str
    recovery_code: int
    duplicates: int
    unconverged: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    leftover_tmp: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.recovery_code == 0
            and not self.duplicates
            and not self.unconverged
            and not self.unreadable
        )


def _phase(crm: Crm, srv: Server, home: Path, day: str) -> str:
    """Where the killed run was, from what reached the sandbox and what the store holds."""
    routes = srv.stats()["by_route"]
    if not routes:
        return "startup (no request yet)"
    store = PortalStore(home, PORTAL)
    parts: list[str] = []
    creates, updates = routes.get(crm.create_route, 0), routes.get(crm.update_route, 0)
    in_crm = sum(crm.tasks(srv).values())
    try:
        ledger = store.ledger()
        pending = int((ledger["status"] == "pending").sum())
        created = int((ledger["status"] == "created").sum())
    except Exception as exc:  # reported, the checks after the recovery decide
        return f"unreadable ledger at the kill: {exc!r}"
    if created and not pending:
        parts.append(f"after the tasks: {in_crm} tasks in the CRM, all {created} recorded")
    elif creates or pending:
        parts.append(
            f"tasks: {creates} create requests, {in_crm} tasks in the CRM, "
            f"ledger {pending} pending/{created} created"
        )
    elif updates:
        parts.append(f"field write-back: {updates} update requests")
    elif store.root.exists() and (store.scores_path(day)).exists():
        parts.append("scored, before the write-back")
    elif store.root.exists() and (store.root / "contacts.parquet").exists():
        parts.append("extract saved (or scoring)")
    else:
        parts.append(f"extract: {sum(routes.values())} requests")
    return "; ".join(parts)


def _store_problems(home: Path, day: str) -> tuple[list[str], int]:
    """Files or tables of the store that do not load, and how many temp files are left."""
    problems: list[str] = []
    tmp = [p for p in home.rglob("*.tmp")]
    store = PortalStore(home, PORTAL)
    for pattern in STORE_PATTERNS:
        for path in store.root.glob(pattern):
            if path in tmp or path.name.startswith("."):
                problems.append(f"{path.name}: a temporary file matches {pattern}")
    for path in home.rglob("*"):
        if path.is_dir() or path in tmp or "locks" in path.parts:
            continue
        try:
            if path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:
            problems.append(f"{path.relative_to(home)}: {type(exc).__name__}: {exc}")
    try:
        for name in ("contacts", "activities", "deals"):
            store.table(name)
        store.ledger()
        store.written()
        store.quarantine()
        store.decisions()
        store.cursors()
        store.portal_meta()
        if store.scores(day) is None:
            problems.append(f"no scores for {day}")
    except Exception as exc:
        problems.append(f"PortalStore: {type(exc).__name__}: {exc}")
    return problems, len(tmp)


def _convergence(crm: Crm, srv: Server, home: Path, ref: Reference, day: str) -> list[str]:
    """How the CRM and the store after the recovery differ from the reference run's."""
    problems: list[str] = []
    fields = crm.fields(srv)
    differ = sorted(c for c in set(fields) | set(ref.fields) if fields.get(c) != ref.fields.get(c))
    if differ:
        c = differ[0]
        problems.append(
            f"{len(differ)} contacts' fields differ from the reference, e.g. {c}: "
            f"{fields.get(c)} != {ref.fields.get(c)}"
        )
    store = PortalStore(home, PORTAL)
    try:
        scores = store.scores(day)
        ledger = store.ledger()
    except Exception as exc:
        return [*problems, f"store: {exc!r}"]
    names = SCORE_FIELDS[crm.name]
    if scores is not None:
        off = 0
        for row in scores.drop_duplicates("contact_id").itertuples(index=False):
            held = fields.get(str(row.contact_id), {})
            want = {names["temperature"]: str(row.temperature)}
            if pd.notna(row.score):
                want[names["score"]] = str(round(float(row.score)))
            off += any(held.get(k) != v for k, v in want.items())
        if off:
            problems.append(f"{off} contacts' temperature/score differ from the store's scores")
    tasks = set(crm.tasks(srv))
    if tasks != ref.tasks:
        problems.append(
            f"tasks: {len(tasks - ref.tasks)} not in the reference, "
            f"{len(ref.tasks - tasks)} missing"
        )
    statuses = Counter(ledger["status"])
    if set(statuses) - {"created"}:
        problems.append(f"ledger statuses after the recovery: {dict(statuses)}")
    if ledger["task_key"].duplicated().any():
        problems.append("ledger has a task key twice")
    if len(ledger) != len(tasks):
        problems.append(f"ledger has {len(ledger)} rows, the CRM {len(tasks)} heatsync tasks")
    return problems


def trial(
    crm: Crm, state: Any, ref: Reference, seed: int, k: int, latency_ms: int, scratch: Path
) -> Outcome:
    rng = random.Random(f"{seed}:{crm.name}:{k}")
    fraction = rng.random()
    delay = fraction * ref.busy_s
    work = Path(tempfile.mkdtemp(prefix=f"trial-{k}-", dir=scratch))
    home = work / "home"
    started = time.monotonic()
    with crm.serve(state, latency_ms) as srv:
        proc = start_run(crm, srv, work)
        first = extract_began(crm, srv, proc)
        if first is not None:
            time.sleep(max(0.0, first + delay - time.monotonic()))
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(RUN_TIMEOUT_S)
        day = local_today(crm.time_zone(srv), pd.Timestamp.now(tz="UTC"))
        phase = _phase(crm, srv, home, day) if killed else "finished before the kill"
        srv.set_faults(latency_ms=0)
        again = start_run(crm, srv, work)
        code = again.wait(RUN_TIMEOUT_S)
        duplicates = sum(n - 1 for n in crm.tasks(srv).values() if n > 1)
        unconverged = _convergence(crm, srv, home, ref, day)
        unreadable, leftover = _store_problems(home, day)
    outcome = Outcome(
        k,
        fraction,
        delay,
        killed,
        phase,
        code,
        duplicates,
        unconverged,
        unreadable,
        leftover,
        time.monotonic() - started,
    )
    if outcome.ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        outcome.unconverged.append(f"kept: {work}")
    return outcome


def _line(crm: str, o: Outcome) -> str:
    verdict = "ok" if o.ok else "FAIL"
    extra = []
    if o.recovery_code:
        extra.append(f"recovery exit {o.recovery_code}")
    if o.duplicates:
        extra.append(f"{o.duplicates} duplicate tasks")
    extra += o.unconverged + o.unreadable
    return (
        f"{crm} trial {o.trial:>3}  kill at +{o.delay_s:5.2f} s ({o.fraction:.3f})  "
        f"{o.phase}  tmp left {o.leftover_tmp}  {o.seconds:4.1f} s  {verdict}"
        + (f"  [{'; '.join(extra)}]" if extra else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crm", choices=("hubspot", "amocrm", "both"), default="both")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=20, help="per request, killed run")
    parser.add_argument("--jobs", type=int, default=2, help="trials at a time")
    parser.add_argument("--only-trial", type=int, default=None, help="run trial K alone")
    args = parser.parse_args(argv)
    socketserver.BaseServer.handle_error = _quiet  # type: ignore[method-assign,assignment]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"crash trials: seed {seed}, {args.contacts} contacts, latency {args.latency_ms} ms")
    names = ["hubspot", "amocrm"] if args.crm == "both" else [args.crm]
    trials = [args.only_trial] if args.only_trial is not None else list(range(1, args.trials + 1))
    summary: list[dict[str, Any]] = []
    failures: list[tuple[str, int]] = []
    scratch = Path(tempfile.mkdtemp(prefix="heatsync-crash-"))
    for name in names:
        crm = CRMS[name]
        began = time.monotonic()
        state = crm.generate(args.contacts, seed % 100_000)
        ref = reference(crm, state, args.latency_ms, scratch)
        print(
            f"{name}: reference run {ref.total_s:.1f} s ({ref.busy_s:.1f} s from its first "
            f"request), {len(ref.tasks)} tasks, {len(ref.fields)} contacts, day {ref.day}"
        )
        outcomes: list[Outcome] = []

        def one(k: int, crm: Crm = crm, state: Any = state, ref: Reference = ref) -> Outcome:
            o = trial(crm, state, ref, seed, k, args.latency_ms, scratch)
            print(_line(crm.name, o), flush=True)
            return o

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            outcomes = list(pool.map(one, trials))
        failures += [(name, o.trial) for o in outcomes if not o.ok]
        summary.append(
            {
                "crm": name,
                "trials": len(outcomes),
                "killed": sum(o.killed for o in outcomes),
                "in write-back": sum(o.phase.startswith("field") for o in outcomes),
                "in tasks": sum(o.phase.startswith("tasks") for o in outcomes),
                "after tasks": sum(o.phase.startswith("after the tasks") for o in outcomes),
                "duplicates": sum(o.duplicates for o in outcomes),
                "unconverged": sum(bool(o.unconverged) for o in outcomes),
                "unreadable stores": sum(bool(o.unreadable) for o in outcomes),
                "recovery failed": sum(o.recovery_code != 0 for o in outcomes),
                "tmp files left": sum(o.leftover_tmp for o in outcomes),
                "minutes": round((time.monotonic() - began) / 60, 1),
                "seed": seed,
            }
        )
    print()
    print(pd.DataFrame(summary).to_string(index=False))
    if failures:
        for name, k in failures:
            print(
                f"FAILED: {name} trial {k}; reproduce with: python benchmarks/crash_trials.py "
                f"--crm {name} --seed {seed} --only-trial {k} --contacts {args.contacts} "
                f"--latency-ms {args.latency_ms}"
            )
        return 1
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
