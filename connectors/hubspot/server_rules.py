"""HubSpot's error and rate-limit vocabulary, given to the shared HTTP layer as `HUBSPOT_RULES`.

- Error answers are `{"status", "category" (or "errorType"), "message", "correlationId",
  "policyName", "errors": [{"context": {"requiredScopes" | "requiredGranularScopes": [...]}}]}`.
- A rate limit is a 429, or a 403 that names a policy or a RATE_LIMIT category. The
  `TEN_SECONDLY_ROLLING` policy means the account's burst window is spent: the shared limiter
  blocks the window, so the retry itself waits only a moment. `SECONDLY` (the search budget) waits
  a second.
- OAuth token metadata lives at `/oauth/v1/access-tokens/{token}` (and refresh tokens at
  `/refresh-tokens/{token}`), and legacy API keys travel as `hapikey=`: both are masked in logs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from connectors.http import (
    ConnectorError,
    ErrorBody,
    ServerRules,
    register_redaction,
    secret_field_pattern,
)

# the token in the path of HubSpot's OAuth token metadata routes
TOKEN_PATH = re.compile(r"(?i)(/(?:access|refresh)-tokens/)[^/\s?\"']+")
# legacy HubSpot API keys in query strings
API_KEY_FIELD = secret_field_pattern("hapikey")


def missing_scopes(body: Any) -> list[str]:
    """Scopes a 403 body names (errors[].context.requiredScopes / requiredGranularScopes)."""
    found: list[str] = []
    errors = body.get("errors") if isinstance(body, Mapping) else None
    for item in errors if isinstance(errors, list) else []:
        context = item.get("context") if isinstance(item, Mapping) else None
        if not isinstance(context, Mapping):
            continue
        for key in ("requiredGranularScopes", "requiredScopes"):
            values = context.get(key)
            for value in values if isinstance(values, list) else []:
                if str(value) not in found:
                    found.append(str(value))
    return found


class HubSpotRules(ServerRules):
    """How HubSpot's error answers and rate-limit policies read."""

    correlation_label = "correlationId"

    def read_error(self, body: Any) -> ErrorBody:
        if not isinstance(body, Mapping):
            return ErrorBody()
        return ErrorBody(
            category=body.get("category") or body.get("errorType"),
            message=body.get("message"),
            correlation_id=body.get("correlationId"),
            policy=body.get("policyName"),
            missing_scopes=tuple(missing_scopes(body)),
        )

    def is_rate_limited(self, status: int, error: ErrorBody) -> bool:
        named = bool(error.policy) or "RATE_LIMIT" in str(error.category or "").upper()
        return status == 429 or (status == 403 and named)

    def exhausts_window(self, error: ConnectorError) -> bool:
        return bool(error.policy) and "TEN_SECONDLY" in str(error.policy).upper()

    def rate_limit_wait(self, error: ConnectorError) -> float | None:
        policy = (error.policy or "").upper()
        message = (error.detail or "").lower()
        if "TEN_SECONDLY" in policy or "ten_secondly" in message:
            # the limiter already blocks the window; a short extra pause suffices here
            return 0.05
        if policy == "SECONDLY" or "secondly limit" in message:
            return 1.0 + random.uniform(0, 0.25)
        return None


HUBSPOT_RULES = HubSpotRules()

register_redaction(API_KEY_FIELD)
register_redaction(TOKEN_PATH)
