"""Failure notices: their settings (HEATSYNC_NOTIFY_*), their text, and sending them by email
over SMTP and to a Slack-compatible incoming webhook (POST JSON `{"text": ...}`).

Both channels are optional; with neither configured nothing is sent. pipelines.notify's
sensors gather the facts of a run from Dagster and call `send`; nothing here imports Dagster.
A send is tried a few times (tenacity) and a channel that still fails is logged, never raised:
a broken mail server must not break the sensor daemon, nor keep the other channel from sending.
The webhook URL and the SMTP password are secrets: they, and any credential in the environment,
are blanked out of every notice and log line.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import requests
from tenacity import Retrying, stop_after_attempt, wait_exponential

from pipelines.config import TRUE_WORDS, SettingsError

# NotifySettings field -> environment variable
NOTIFY_VARIABLES = {
    "webhook_url": "HEATSYNC_NOTIFY_WEBHOOK_URL",
    "smtp_host": "HEATSYNC_NOTIFY_SMTP_HOST",
    "smtp_port": "HEATSYNC_NOTIFY_SMTP_PORT",
    "smtp_user": "HEATSYNC_NOTIFY_SMTP_USER",
    "smtp_password": "HEATSYNC_NOTIFY_SMTP_PASSWORD",
    "smtp_from": "HEATSYNC_NOTIFY_SMTP_FROM",
    "smtp_to": "HEATSYNC_NOTIFY_SMTP_TO",
    "smtp_starttls": "HEATSYNC_NOTIFY_SMTP_STARTTLS",
    "ui_url": "HEATSYNC_NOTIFY_UI_URL",
}
SECRET_FIELDS = ("webhook_url", "smtp_password")
FALSE_WORDS = ("0", "false", "no")
DEFAULT_SMTP_PORT = 587
IMPLICIT_TLS_PORT = 465
DEFAULT_FROM = "heatsync@localhost"
TIMEOUT_SECONDS = 8
ATTEMPTS = 3
RETRY_WAIT_SECONDS = 1.0  # then twice that
# Environment variables whose values never appear in a notice or a log line.
SECRET_SUFFIXES = ("_TOKEN", "_SECRET", "_PASSWORD", "_AUTH_CODE", "_WEBHOOK_URL")
MAX_LINE = 400

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifySettings:
    """Where notices go: a webhook, an SMTP server and its recipients, either or both or none;
    and the Dagster UI's address, for a link to the run."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = True
    ui_url: str = ""

    @property
    def email(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)

    @property
    def webhook(self) -> bool:
        return bool(self.webhook_url)

    @property
    def configured(self) -> bool:
        return self.email or self.webhook

    def describe(self) -> str:
        """Where notices go, without a secret: e.g. "email to ops@example.com and a webhook"."""
        where = [f"email to {', '.join(self.smtp_to)}"] if self.email else []
        where += ["a webhook"] if self.webhook else []
        return " and ".join(where) or "nowhere (no HEATSYNC_NOTIFY_* channel is configured)"

    def secrets(self) -> list[str]:
        return [getattr(self, name) for name in SECRET_FIELDS if getattr(self, name)]


def _value(env: Mapping[str, str], field: str) -> str:
    return (env.get(NOTIFY_VARIABLES[field]) or "").strip()


def notify_settings(env: Mapping[str, str]) -> NotifySettings:
    """The notice settings of `env`; a value that cannot work is a SettingsError naming its
    variable (never showing a secret's value)."""
    url = _value(env, "webhook_url")
    if url and not re.match(r"https?://[^/\s]+", url):
        raise SettingsError(f"{NOTIFY_VARIABLES['webhook_url']} is not an http(s) URL")
    port_text = _value(env, "smtp_port")
    try:
        port = int(port_text) if port_text else DEFAULT_SMTP_PORT
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise SettingsError(f"{NOTIFY_VARIABLES['smtp_port']}={port_text!r} is not a port number")
    starttls_text = _value(env, "smtp_starttls").lower()
    if starttls_text and starttls_text not in TRUE_WORDS + FALSE_WORDS:
        raise SettingsError(
            f"{NOTIFY_VARIABLES['smtp_starttls']}={starttls_text!r}: use true or false"
        )
    host = _value(env, "smtp_host")
    to = tuple(a.strip() for a in _value(env, "smtp_to").split(",") if a.strip())
    bad = [a for a in to if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", a)]
    if bad:
        raise SettingsError(f"{NOTIFY_VARIABLES['smtp_to']}: not an email address: {bad[0]!r}")
    if host and not to:
        raise SettingsError(
            f"{NOTIFY_VARIABLES['smtp_to']} is empty: set the recipients (comma-separated) to "
            f"send email through {NOTIFY_VARIABLES['smtp_host']}"
        )
    if to and not host:
        raise SettingsError(
            f"{NOTIFY_VARIABLES['smtp_host']} is empty: set the SMTP server to email "
            f"{NOTIFY_VARIABLES['smtp_to']}"
        )
    user = _value(env, "smtp_user")
    return NotifySettings(
        webhook_url=url,
        smtp_host=host,
        smtp_port=port,
        smtp_user=user,
        smtp_password=_value(env, "smtp_password"),
        smtp_from=_value(env, "smtp_from") or (user if "@" in user else DEFAULT_FROM),
        smtp_to=to,
        smtp_starttls=starttls_text not in FALSE_WORDS,
        ui_url=_value(env, "ui_url").rstrip("/"),
    )


def environment_secrets(env: Mapping[str, str]) -> list[str]:
    """Values of the environment's credentials (tokens, secrets, passwords, auth codes)."""
    return [
        value.strip()
        for name, value in env.items()
        if name.upper().endswith(SECRET_SUFFIXES) and len(value.strip()) >= 6
    ]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class CheckOutcome:
    """A failed asset check of a run, as a notice names it."""

    asset: str
    check: str
    blocking: bool
    description: str = ""

    def line(self) -> str:
        kind = "blocking check failed" if self.blocking else "check warns"
        why = f": {self.description}" if self.description else ""
        return f"{kind}: {self.asset} {self.check}{why}"


@dataclass(frozen=True)
class RunFacts:
    """What a notice says about a run: its job, portal and day (empty when it has none)."""

    job: str
    run_id: str
    portal: str = ""
    day: str = ""

    def where(self) -> str:
        parts = [f"portal {self.portal}" if self.portal else "", self.day]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str

    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _body(facts: RunFacts, lines: Sequence[str], ui_url: str) -> str:
    head = [f"job: {facts.job}"]
    head += [f"portal: {facts.portal}"] if facts.portal else []
    head += [f"day: {facts.day}"] if facts.day else []
    tail = [f"run: {facts.run_id}"]
    tail += [f"{ui_url}/runs/{facts.run_id}"] if ui_url else []
    return "\n".join([*head, *(_one_line(line) for line in lines), *tail]) + "\n"


def run_failed(
    facts: RunFacts,
    steps: Sequence[tuple[str, str]],
    checks: Sequence[CheckOutcome] = (),
    reason: str = "",
    ui_url: str = "",
) -> Notice:
    """A failed run: each failed step with its one-line error, the checks that failed (a failed
    blocking check fails its step), or without a failed step the run's own reason."""
    where = facts.where()
    subject = f"heatsync: {facts.job} failed" + (f" ({where})" if where else "")
    lines = [f"failed step: {step}: {error}" for step, error in steps]
    lines += [c.line() for c in checks]
    if not steps and reason:
        lines.append(f"reason: {reason}")
    return Notice(subject, _body(facts, lines, ui_url))


def checks_failed(facts: RunFacts, checks: Sequence[CheckOutcome], ui_url: str = "") -> Notice:
    """A run that succeeded with a check worth hearing about (the backtest's warning)."""
    where = facts.where()
    names = ", ".join(c.check for c in checks)
    subject = f"heatsync: {names} on {facts.job}" + (f" ({where})" if where else "")
    return Notice(subject, _body(facts, [c.line() for c in checks], ui_url))


def _post_webhook(url: str, notice: Notice) -> None:
    try:
        response = requests.post(url, json={"text": notice.text()}, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        # a requests error names the URL, a secret: only its kind is kept
        raise ConnectionError(f"webhook not reached ({type(exc).__name__})") from None
    if response.status_code >= 300:
        raise ConnectionError(f"webhook answered HTTP {response.status_code}")


def _send_email(settings: NotifySettings, notice: Notice) -> None:
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.smtp_to)
    message.set_content(notice.body)
    smtp: smtplib.SMTP
    if settings.smtp_port == IMPLICIT_TLS_PORT:
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=TIMEOUT_SECONDS,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)
    with smtp:
        if settings.smtp_starttls and settings.smtp_port != IMPLICIT_TLS_PORT:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


def send(
    notice: Notice,
    settings: NotifySettings,
    env: Mapping[str, str] | None = None,
    logger: logging.Logger | None = None,
    wait_seconds: float | None = None,
) -> list[str]:
    """Send `notice` on every configured channel; the channels it reached ("email",
    "webhook"). Never raises: a channel that fails ATTEMPTS times is logged and skipped."""
    logger = logger or log
    wait = RETRY_WAIT_SECONDS if wait_seconds is None else wait_seconds
    secrets = [*settings.secrets(), *environment_secrets(env or {})]
    notice = Notice(redact(notice.subject, secrets), redact(notice.body, secrets))
    channels: list[tuple[str, Callable[[], None]]] = []
    if settings.email:
        channels.append(("email", lambda: _send_email(settings, notice)))
    if settings.webhook:
        channels.append(("webhook", lambda: _post_webhook(settings.webhook_url, notice)))
    sent = []
    for name, deliver in channels:
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(ATTEMPTS),
                wait=wait_exponential(multiplier=wait, max=10 * wait),
                reraise=True,
            ):
                with attempt:
                    deliver()
        except Exception as exc:  # a notice must never break its caller
            error = redact(f"{type(exc).__name__}: {exc}", secrets)
            logger.warning(
                "heatsync notice %r not sent by %s after %d attempts: %s",
                notice.subject,
                name,
                ATTEMPTS,
                _one_line(error),
            )
        else:
            sent.append(name)
    return sent
