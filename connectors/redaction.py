"""Redaction for CRM connectors: no secret reaches a log line, an exception text or a repr.

`register_secret` remembers a secret value (a token, a client secret); `register_redaction` adds a
CRM's secret-bearing shapes (e.g. a URL that carries a token), registered by its connector when it
is imported. `redact()` masks both and the usual token-like fields; `RedactingFilter` applies it to
every record of a logger (the shared `connectors.http.log` has one attached).
"""

from __future__ import annotations

import logging
import re
import threading

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def secret_field_pattern(*names: str) -> re.Pattern[str]:
    """A redaction pattern for `name=value` / `"name": "value"` forms of the given field names."""
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"(?i)((?:{alternatives})[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}}]+")


_PATTERNS: list[re.Pattern[str]] = [
    # Authorization: Bearer xxx / "Authorization": "Bearer xxx"
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=:]+"),
    # key=value forms in URLs, form bodies and reprs (OAuth 2 and the usual API key names)
    secret_field_pattern(
        "access_token", "refresh_token", "client_secret", "token", "api_key", "apikey"
    ),
    # an OAuth authorization code in a URL query (a redirect URI, a code exchange)
    re.compile(r"(?i)([?&](?:code|auth_code|authorization_code)=)[^&#\s\"']+"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def register_redaction(pattern: re.Pattern[str]) -> None:
    """Mask what `pattern` matches, keeping its group 1 (e.g. a CRM's URL that holds a token).

    Connectors register their CRM's secret-bearing shapes when they are imported.
    """
    with _SECRETS_LOCK:
        if pattern not in _PATTERNS:
            _PATTERNS.append(pattern)


def redact(text: object) -> str:
    """Return `text` as a string with registered secrets and token-like fields masked."""
    out = str(text)
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
        patterns = list(_PATTERNS)
    for secret in secrets:
        if secret in out:
            out = out.replace(secret, "***")
    for pattern in patterns:
        out = pattern.sub(lambda m: m.group(1) + "***", out)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message of every record passing through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not our concern here
            return True
        record.msg = redact(message)
        record.args = None
        return True
