"""Failure notices: a failed run, a failed blocking check and the backtest's warning reach a local
SMTP server and a local webhook receiver, started here, once each, without a secret.

The SMTP server is a few lines on socketserver (plain SMTP: EHLO, MAIL, RCPT, DATA, QUIT), so the
tests need no new dependency; the webhook receiver is http.server. Both listen on port 0.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pipelines import notices
from pipelines.config import SettingsError
from pipelines.notices import NotifySettings, notify_settings
from pipelines.notify import NotifyResource, notify_resource, notify_sensors
from pipelines.partitions import PORTAL_TAG, PORTALS, partition_key
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state

WRONG_TOKEN = "pat-eu1-00000000-not-this-portal"
PASSWORD = "smtp-pass-do-not-leak"


class _SmtpHandler(socketserver.StreamRequestHandler):
    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._say("220 localhost test SMTP")
        lines: list[str] | None = None
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if lines is not None:
                if line == ".":
                    self.server.messages.append("\r\n".join(lines))  # type: ignore[attr-defined]
                    lines = None
                    self._say("250 queued")
                else:
                    lines.append(line[1:] if line.startswith("..") else line)
                continue
            verb = line[:4].upper()
            if verb == "DATA":
                lines = []
                self._say("354 end with .")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("250 OK")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[str] = []

    def mails(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_string(m, policy=email.policy.default)  # type: ignore[misc]
            for m in self.messages
        ]


class _HookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append(json.loads(body))  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.posts: list[dict[str, Any]] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/T0/B0/hook-secret"


def _serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    _serve(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer()
    _serve(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notices, "RETRY_WAIT_SECONDS", 0.01)
    for name in notices.NOTIFY_VARIABLES.values():
        monkeypatch.delenv(name, raising=False)


def _notify_env(
    monkeypatch: pytest.MonkeyPatch, smtp_port: int | None, hook_url: str | None
) -> NotifyResource:
    """Configure both channels in the environment, as a deployment does; the resource reads the
    secrets from it (EnvVar)."""
    values = {"HEATSYNC_NOTIFY_SMTP_STARTTLS": "false", "HEATSYNC_NOTIFY_SMTP_FROM": "hs@test"}
    if smtp_port is not None:
        values |= {
            "HEATSYNC_NOTIFY_SMTP_HOST": "127.0.0.1",
            "HEATSYNC_NOTIFY_SMTP_PORT": str(smtp_port),
            "HEATSYNC_NOTIFY_SMTP_TO": "ops@test, lead@test",
            "HEATSYNC_NOTIFY_SMTP_PASSWORD": PASSWORD,
        }
    if hook_url is not None:
        values["HEATSYNC_NOTIFY_WEBHOOK_URL"] = hook_url
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return notify_resource(values)


def _sensor(name: str) -> Any:
    return next(s for s in notify_sensors({}) if s.name == name)


def _evaluate(
    sensor_name: str,
    result: dg.ExecuteInProcessResult,
    instance: dg.DagsterInstance,
    notify: NotifyResource,
) -> Any:
    event = result.get_run_failure_event() if not result.success else result.get_run_success_event()
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"notify": notify},
    )
    return _sensor(sensor_name)(context)


def test_a_failed_daily_run_is_emailed_and_posted_once_without_a_secret(
    smtp: SmtpServer,
    hook: HookServer,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notify = _notify_env(monkeypatch, smtp.server_address[1], hook.url)
    with SandboxServer(generate_state(20, seed=5), SandboxOptions()) as sandbox:
        monkeypatch.setenv("HUBSPOT_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", WRONG_TOKEN)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("HEATSYNC_PORTALS", raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.chdir(tmp_path)
        from pipelines.definitions import build_defs

        defs = build_defs()
        instance.add_dynamic_partitions(PORTALS, ["default"])
        day = datetime.now(UTC).date().isoformat()
        result = defs.resolve_job_def("daily_scoring").execute_in_process(
            instance=instance,
            partition_key=partition_key(day, "default"),
            raise_on_error=False,
            tags={PORTAL_TAG: "default"},
        )
    assert not result.success
    assert _evaluate("notify_run_failure", result, instance, notify) is None

    [mail] = smtp.mails()
    [post] = hook.posts
    body = mail.get_content()
    assert mail["To"] == "ops@test, lead@test" and mail["From"] == "hs@test"
    assert "daily_scoring failed" in mail["Subject"] and "portal default" in mail["Subject"]
    for text in (body, post["text"]):
        assert "job: daily_scoring" in text and "portal: default" in text
        assert f"day: {day}" in text
        assert "failed step: crm__extract: HubSpot refused the access token (401" in text
        assert f"run: {result.run_id}" in text
        for secret in ("not-this-portal", sandbox.token, PASSWORD, "hook-secret"):
            assert secret not in text
    # the run succeeded sensor has nothing to say about a failed run's steps
    assert not smtp.messages[1:] and len(hook.posts) == 1


def _tiny_job(asset_key: list[str], check: str, blocking: bool, passed: bool) -> dg.JobDefinition:
    """A one-asset daily_scoring job whose check fails or passes: the shape of heatsync's checks
    without a CRM."""
    spec = dg.AssetCheckSpec(check, asset=dg.AssetKey(asset_key), blocking=blocking)

    @dg.asset(key=asset_key, check_specs=[spec])
    def tiny() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name=check,
                    passed=passed,
                    severity=dg.AssetCheckSeverity.ERROR
                    if blocking
                    else dg.AssetCheckSeverity.WARN,
                    description="hot converts better than warm, and warm better than cold",
                )
            ]
        )

    job = dg.define_asset_job("daily_scoring", selection=[tiny.key])
    return dg.Definitions(assets=[tiny], jobs=[job]).resolve_job_def("daily_scoring")


def test_a_failed_blocking_check_fails_the_run_and_the_notice_names_it(
    smtp: SmtpServer,
    hook: HookServer,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notify = _notify_env(monkeypatch, smtp.server_address[1], hook.url)
    job = _tiny_job(["heatsync", "scores"], "every_contact_scored", blocking=True, passed=False)
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, tags={PORTAL_TAG: "acme"}
    )
    assert not result.success  # Dagster 1.13: the blocking check fails its step, and the run
    assert _evaluate("notify_run_failure", result, instance, notify) is None
    [post] = hook.posts
    assert "portal: acme" in post["text"]
    assert "blocking check failed: heatsync/scores every_contact_scored" in post["text"]
    assert "failed step: heatsync__scores: DagsterAssetCheckFailedError" in post["text"]
    assert len(smtp.messages) == 1


def test_the_backtest_warning_on_a_successful_run_is_sent_a_passing_one_is_not(
    smtp: SmtpServer,
    hook: HookServer,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notify = _notify_env(monkeypatch, smtp.server_address[1], hook.url)
    key = ["heatsync", "backtest"]
    warns = _tiny_job(key, "hot_converts_best", blocking=False, passed=False).execute_in_process(
        instance=instance, tags={PORTAL_TAG: "acme"}
    )
    assert warns.success
    assert _evaluate("notify_check_warnings", warns, instance, notify) is None
    [mail] = smtp.mails()
    assert "hot_converts_best" in mail["Subject"] and "portal acme" in mail["Subject"]
    assert "check warns: heatsync/backtest hot_converts_best: hot converts better" in (
        mail.get_content()
    )
    assert f"run: {warns.run_id}" in hook.posts[0]["text"]

    passes = _tiny_job(key, "hot_converts_best", blocking=False, passed=True).execute_in_process(
        instance=instance, tags={PORTAL_TAG: "acme"}
    )
    assert isinstance(_evaluate("notify_check_warnings", passes, instance, notify), dg.SkipReason)
    assert len(smtp.messages) == 1 and len(hook.posts) == 1


def test_nothing_configured_sends_nothing_and_says_so(
    smtp: SmtpServer, hook: HookServer, instance: dg.DagsterInstance
) -> None:
    failed = _tiny_job(["heatsync", "scores"], "scores_in_range", True, False).execute_in_process(
        instance=instance, raise_on_error=False
    )
    skipped = _evaluate("notify_run_failure", failed, instance, notify_resource({}))
    assert isinstance(skipped, dg.SkipReason)
    assert "no HEATSYNC_NOTIFY_* channel" in str(skipped.skip_message)
    assert not smtp.messages and not hook.posts
    assert all("nowhere" in str(s.description) for s in notify_sensors({}))


def test_a_dead_smtp_server_is_logged_and_the_webhook_still_sent(
    hook: HookServer,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # closed again: nothing listens there
    notify = _notify_env(monkeypatch, dead_port, hook.url)
    failed = _tiny_job(["heatsync", "scores"], "scores_in_range", True, False).execute_in_process(
        instance=instance, raise_on_error=False
    )
    capfd.readouterr()
    assert _evaluate("notify_run_failure", failed, instance, notify) is None  # nothing raised
    assert len(hook.posts) == 1
    logged = capfd.readouterr().err  # the sensor's log (Dagster's console logger)
    warnings = [line for line in logged.splitlines() if "not sent by email" in line]
    assert len(warnings) == 1 and "after 3 attempts" in warnings[0], logged
    assert PASSWORD not in logged and "hook-secret" not in logged


def test_a_failing_webhook_is_retried_then_logged_without_its_url(
    hook: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    hook.status = 500
    settings = NotifySettings(webhook_url=hook.url)
    notice = notices.run_failed(notices.RunFacts("hot_lane", "r1"), [("s", "boom")])
    with caplog.at_level(logging.WARNING):
        assert notices.send(notice, settings) == []
    assert len(hook.posts) == notices.ATTEMPTS
    assert "HTTP 500" in caplog.text and "hook-secret" not in caplog.text


def test_credentials_in_the_environment_never_reach_a_notice(hook: HookServer) -> None:
    settings = NotifySettings(webhook_url=hook.url)
    facts = notices.RunFacts("daily_scoring", "r1", "acme", "2025-01-05")
    notice = notices.run_failed(facts, [("crm__extract", f"bad token {WRONG_TOKEN} refused")])
    assert notices.send(notice, settings, {"HUBSPOT_ACCESS_TOKEN": WRONG_TOKEN}) == ["webhook"]
    assert WRONG_TOKEN not in hook.posts[0]["text"]
    assert "bad token *** refused" in hook.posts[0]["text"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HEATSYNC_NOTIFY_SMTP_PORT": "smtp"}, "HEATSYNC_NOTIFY_SMTP_PORT"),
        ({"HEATSYNC_NOTIFY_SMTP_HOST": "mail.example.com"}, "HEATSYNC_NOTIFY_SMTP_TO"),
        ({"HEATSYNC_NOTIFY_SMTP_TO": "ops@example.com"}, "HEATSYNC_NOTIFY_SMTP_HOST"),
        ({"HEATSYNC_NOTIFY_SMTP_STARTTLS": "maybe"}, "HEATSYNC_NOTIFY_SMTP_STARTTLS"),
        ({"HEATSYNC_NOTIFY_WEBHOOK_URL": "hooks/secret-part"}, "HEATSYNC_NOTIFY_WEBHOOK_URL"),
    ],
)
def test_a_setting_that_cannot_work_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable) as error:
        notify_settings(env)
    assert "secret-part" not in str(error.value)


def test_the_definitions_hold_the_secrets_only_as_environment_references(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "placeholder-token")
    monkeypatch.setenv("HEATSYNC_NOTIFY_WEBHOOK_URL", "https://hooks.example/T0/hook-secret")
    from pipelines.definitions import build_defs

    defs = build_defs()
    shown = repr(defs.resources)
    assert "hook-secret" not in shown and "HEATSYNC_NOTIFY_WEBHOOK_URL" in shown
    assert "a webhook" in str(defs.resolve_sensor_def("notify_run_failure").description)
