"""Signal-to-task latency of the hot-lead fast lane, with the Dagster daemon running.

Serves a sandbox HubSpot portal and a sandbox amoCRM account over loopback HTTP (their rate
limits enforced), names both in a portals file, runs the daily job once (`heatsync run`) so that
both stores and CRMs hold today's values, then starts `dagster-daemon run` on the project's
workspace with the shipped instance settings (queued run coordinator, one run per portal). Each
trial makes a hot signal arrive (HubSpot: a form submission asking for a quote on a cold
contact; amoCRM: a 25-minute inbound call on a warm contact) and polls the sandbox until the
contact's call-now task exists: that wait is the latency. Afterwards the daily run goes again and
must create no second task for any trial contact. Prints figures; asserts nothing else.

python benchmarks/fast_lane.py [--trials 3] [--hubspot-contacts 400] [--amocrm-contacts 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from pipelines.cli import main as heatsync
from pipelines.store import PortalStore
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.amocrm.telephony import log_inbound_call
from sandbox.hubspot import history
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state as generate_hubspot
from sandbox.hubspot.state import iso_ms, now_ms

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 180.0


def _quote_request(server: SandboxServer, contact: str) -> None:
    with server.lock:
        rec = server.state.get("contacts", contact)
        assert rec is not None
        now = now_ms()
        values: dict[str, str | None] = {
            "recent_conversion_date": iso_ms(now),
            "recent_conversion_event_name": "Request a quote",
            "message": "Please send us a price quote, we want to buy this week",
        }
        history.record(server.state, "contacts", rec, values, now, {"sourceType": "FORM"})
        server.state.set_props("contacts", rec, values)
        server.state.touch("contacts", rec, now)


def _hubspot_calls(server: SandboxServer, contact: str) -> int:
    with server.lock:
        return sum(
            1
            for task in server.state.iter_live("tasks")
            if ":call_now:" in (task.props.get("heatsync_task_key") or "")
            and int(contact) in server.state.associations("tasks", task.id, "contacts")
        )


def _amocrm_calls(server: AmoSandboxServer, contact: str) -> int:
    with server.lock:
        return sum(
            1
            for t in server.state.tasks.values()
            if "[hs:call_now:" in str(t["text"]) and str(t.get("entity_id")) == contact
        )


def _candidates(home: Path, portal: str, temperature: str) -> list[str]:
    store = PortalStore(home, portal)
    scores = store.scores(store.scored_days()[-1])
    assert scores is not None
    contacts = store.table("contacts").set_index("contact_id")
    ok = (
        (scores["temperature"] == temperature)
        & (scores["segment"].fillna("") != "burning")  # a burning contact is called already
        & scores["contact_id"].map(contacts["owner_id"]).notna()
        & ~scores["contact_id"].map(contacts["do_not_contact"]).fillna(False).astype(bool)
    )
    return [str(c) for c in scores[ok].sort_values("score", ascending=False)["contact_id"]]


def _wait(done: Callable[[], bool]) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < TIMEOUT_S:
        if done():
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def _daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    daemon = Path(sys.executable).with_name("dagster-daemon")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(daemon), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--hubspot-contacts", type=int, default=400)
    parser.add_argument("--amocrm-contacts", type=int, default=300)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="heatsync-fast-lane-"))
    hubspot = SandboxServer(generate_hubspot(args.hubspot_contacts, seed=21), SandboxOptions())
    amocrm = AmoSandboxServer(generate_amocrm(args.amocrm_contacts, seed=22), AmoOptions())
    hubspot.start()
    amocrm.start()
    daemon: subprocess.Popen[bytes] | None = None
    try:
        portals = {
            "portals": [
                {
                    "name": "hubspot-bench",
                    "crm": "hubspot",
                    "base_url": hubspot.base_url,
                    "credentials": {"access_token": "BENCH_HUBSPOT_TOKEN"},
                },
                {
                    "name": "amocrm-bench",
                    "crm": "amocrm",
                    "base_url": amocrm.base_url,
                    "credentials": {"access_token": "BENCH_AMOCRM_TOKEN"},
                },
            ]
        }
        (work / "portals.yaml").write_text(yaml.safe_dump(portals, sort_keys=False))
        (work / "dagster").mkdir()
        shutil.copyfile(ROOT / "pipelines" / "dagster.yaml", work / "dagster" / "dagster.yaml")
        env = {
            **os.environ,
            "HEATSYNC_PORTALS": str(work / "portals.yaml"),
            "HEATSYNC_HOME": str(work / "home"),
            "DAGSTER_HOME": str(work / "dagster"),
            "BENCH_HUBSPOT_TOKEN": hubspot.token,
            "BENCH_AMOCRM_TOKEN": str(amocrm.long_lived_token),
        }
        for name in ("HEATSYNC_CRM", "HUBSPOT_ACCESS_TOKEN", "AMOCRM_ACCESS_TOKEN"):
            env.pop(name, None)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(work)

        print(f"daily run on both portals ({args.hubspot_contacts} + {args.amocrm_contacts})")
        started = time.monotonic()
        if heatsync(["run"]) != 0:
            print("the daily run failed")
            return 1
        print(f"  took {time.monotonic() - started:.1f} s")

        daemon = _daemon(env, work / "daemon.log")
        print("dagster-daemon started; waiting for the sensor's first look at both portals")
        time.sleep(25)  # the hot_signals sensor's first tick sets each portal's cursor
        cold = _candidates(work / "home", "hubspot-bench", "cold")
        warm = _candidates(work / "home", "amocrm-bench", "warm")
        latencies: dict[str, list[float]] = {"HubSpot form": [], "amoCRM inbound call": []}
        cold = [c for c in cold if _hubspot_calls(hubspot, c) == 0]
        warm = [c for c in warm if _amocrm_calls(amocrm, c) == 0]
        for trial in range(args.trials):
            contact = cold[trial]
            _quote_request(hubspot, contact)
            took = _wait(lambda c=contact: _hubspot_calls(hubspot, c) > 0)  # type: ignore[misc]
            print(f"  trial {trial + 1}: HubSpot form -> call-now task in {_fmt(took)}")
            if took is not None:
                latencies["HubSpot form"].append(took)
            contact = warm[trial]
            log_inbound_call(amocrm, int(contact), duration_s=25 * 60, result="wants an offer")
            took = _wait(lambda c=contact: _amocrm_calls(amocrm, c) > 0)  # type: ignore[misc]
            print(f"  trial {trial + 1}: amoCRM inbound call -> call-now task in {_fmt(took)}")
            if took is not None:
                latencies["amoCRM inbound call"].append(took)
        daemon.terminate()
        daemon.wait(timeout=60)
        daemon = None

        print("daily run again: no second task for any trial contact")
        heatsync(["run"])
        dupes = sum(_hubspot_calls(hubspot, c) > 1 for c in cold[: args.trials])
        dupes += sum(_amocrm_calls(amocrm, c) > 1 for c in warm[: args.trials])
        print()
        print("| signal | trials | median | max |")
        print("|---|---|---|---|")
        for name, values in latencies.items():
            if values:
                print(
                    f"| {name} | {len(values)} of {args.trials} | "
                    f"{statistics.median(values):.1f} s | {max(values):.1f} s |"
                )
            else:
                print(f"| {name} | 0 of {args.trials} | — | — |")
        print(f"\nduplicate call-now tasks after the next daily run: {dupes}")
        print(f"(daemon log: {work / 'daemon.log'})")
        return 0
    finally:
        if daemon is not None:
            daemon.terminate()
        hubspot.stop()
        amocrm.stop()


def _fmt(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else f"more than {TIMEOUT_S:.0f} s"


if __name__ == "__main__":
    raise SystemExit(main())
