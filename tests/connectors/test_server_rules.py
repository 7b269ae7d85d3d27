"""The shared HTTP layer reads error answers through a CRM's rules: plain HTTP by default,
HubSpot's vocabulary when HubSpot's rules are given."""

from __future__ import annotations

import json

import pytest
import requests

from connectors.http import (
    PermissionDeniedError,
    RateLimitedError,
    ServerRules,
    error_from_response,
    redact,
)
from connectors.hubspot.server_rules import HUBSPOT_RULES


def _response(status: int, body: object) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    resp.headers["Content-Type"] = "application/json"
    return resp


RATE_LIMITED = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c-1",
    "policyName": "TEN_SECONDLY_ROLLING",
}
DENIED = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call.",
    "correlationId": "c-2",
    "category": "MISSING_SCOPES",
    "errors": [{"context": {"requiredGranularScopes": ["crm.objects.deals.read"]}}],
}


def test_plain_http_rules_know_only_the_status() -> None:
    err = error_from_response(_response(403, RATE_LIMITED), "GET", "/x", ServerRules())
    assert type(err) is PermissionDeniedError and err.missing_scopes == []
    assert err.policy is None and err.correlation_id is None
    limited = error_from_response(_response(429, {}), "GET", "/x")
    assert isinstance(limited, RateLimitedError)
    assert ServerRules().rate_limit_wait(limited) is None
    assert not ServerRules().exhausts_window(limited)


def test_hubspot_rules_read_policies_scopes_and_correlation_ids() -> None:
    limited = error_from_response(_response(429, RATE_LIMITED), "GET", "/x", HUBSPOT_RULES)
    assert isinstance(limited, RateLimitedError) and limited.policy == "TEN_SECONDLY_ROLLING"
    assert HUBSPOT_RULES.exhausts_window(limited)
    assert HUBSPOT_RULES.rate_limit_wait(limited) == pytest.approx(0.05)
    assert "(correlationId c-1)" in limited.technical
    # HubSpot may answer a rate limit with 403 naming its policy
    assert isinstance(
        error_from_response(_response(403, RATE_LIMITED), "GET", "/x", HUBSPOT_RULES),
        RateLimitedError,
    )
    denied = error_from_response(_response(403, DENIED), "GET", "/x", HUBSPOT_RULES)
    assert isinstance(denied, PermissionDeniedError)
    assert denied.missing_scopes == ["crm.objects.deals.read"]


def test_hubspot_token_urls_are_redacted() -> None:
    line = redact("GET /oauth/v1/access-tokens/abc-123-def?hapikey=k-456 failed")
    assert "abc-123-def" not in line and "k-456" not in line
