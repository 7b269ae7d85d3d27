"""A 200 with an empty body where JSON is due (a proxy's page, a cut answer) is no answer, not an
empty result: the shared HTTP client retries it like a 5xx, and reports it as ambiguous for a
create. Before, it read as "nothing": the account details became None and `heatsync run` crashed
with a pydantic traceback (HubSpot and amoCRM alike, the fault matrix's empty-200 cells)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from connectors.http import JsonHttp, RateLimiter, ServerError
from tests.reliability.crms import Portal, portal


@pytest.fixture
def hubspot() -> Iterator[Portal]:
    with portal("hubspot", 20, 3, date(2026, 12, 1), False) as p:
        yield p


def _client(p: Portal) -> JsonHttp:
    return JsonHttp(
        p.server.base_url,
        limiter=RateLimiter(100, 10.0, 10),
        auth=lambda: {"Authorization": f"Bearer {p.server.token}"},
        sleep=lambda _s: None,
    )


def test_an_empty_200_on_a_read_is_retried_and_the_answer_read(hubspot: Portal) -> None:
    hubspot.tamper(hubspot.is_read, "empty", 2)
    client = _client(hubspot)
    answer = client.request("GET", "/account-info/v3/details")
    assert answer["portalId"], answer
    assert client.stats.retries == 2


def test_an_empty_200_on_a_create_is_an_error_for_the_caller_to_reconcile(
    hubspot: Portal,
) -> None:
    hubspot.tamper(hubspot.is_task_create, "empty", 1)
    body = {
        "inputs": [{"properties": {"hs_task_subject": "x", "hs_timestamp": "2026-12-01T10:00:00Z"}}]
    }
    with pytest.raises(ServerError, match="empty answer"):
        _client(hubspot).request(
            "POST", "/crm/v3/objects/tasks/batch/create", json_body=body, idempotent=False
        )
    with hubspot.server.lock:
        subjects = [r.props.get("hs_task_subject") for r in hubspot.server.state.iter_live("tasks")]
    assert subjects.count("x") == 1, "the create was applied once; its answer was lost"
