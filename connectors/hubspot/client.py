"""HubSpot CRM API client: auth (bearer or OAuth refresh), limits, retries, paging, batching.

Endpoints (paths per `HubSpotSettings`): objects list/search/batch read (also with
`propertiesWithHistory`, ≤ 50 per request)/update/create, token introspection, v4
association batch read, owners, deal pipelines, account details, property and property-group
definitions. Object records are returned as raw dicts so the caller can validate each one and
quarantine what does not fit; everything else is parsed into `connectors.hubspot.models`.

Incremental search never loses records to the 10,000-result cap: windows on the modified-date
property are bisected in time while `total` reaches the cap, and each window is walked by
`hs_object_id GT last_seen` (sorted ascending, 200 per page) instead of the `after` cursor, so
no single query ever pages past the cap - even when >10,000 records share one timestamp.

Requests go through the shared `connectors.http.JsonHttp`, told HubSpot's error and rate-limit
vocabulary by `connectors.hubspot.server_rules.HUBSPOT_RULES`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import RequestStats
from connectors.fanout import Fanout
from connectors.http import (
    AuthError,
    ConnectorError,
    Hints,
    JsonHttp,
    NotFoundError,
    RequestError,
    RetryPolicy,
    log,
    register_secret,
    shared_limiter,
)
from connectors.hubspot.models import (
    AccountDetails,
    AssociationResult,
    BatchResponse,
    ListPage,
    Owner,
    Pipeline,
    PropertyDefinition,
    PropertyGroup,
    SearchPage,
    StandardError,
    TokenResponse,
)
from connectors.hubspot.server_rules import HUBSPOT_RULES
from connectors.hubspot.settings import (
    ASSOC_BATCH_SIZE,
    BATCH_SIZE,
    DEFAULT_MODIFIED_PROPERTY,
    HISTORY_BATCH_SIZE,
    LIST_PAGE_SIZE,
    MODIFIED_PROPERTY,
    REQUIRED_SCOPES,
    SEARCH_PAGE_SIZE,
    SEARCH_RESULT_CAP,
    HubSpotSettings,
)


@dataclass
class BatchOutcome:
    """Merged results of one or more batch requests: successes and per-input errors."""

    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[StandardError] = field(default_factory=list)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _id_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


OAUTH_VARIABLES = "HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN"


def hints_for(settings: HubSpotSettings) -> Hints:
    """What to check when HubSpot is unreachable or refuses heatsync's credentials."""
    scopes = ", ".join(REQUIRED_SCOPES)
    if settings.oauth is not None:
        unauthorized = f"check {OAUTH_VARIABLES}"
        app = "the OAuth app (then reinstall it)"
    else:
        unauthorized = (
            "check HUBSPOT_ACCESS_TOKEN (a private app token or service key of this account), "
            f"or use OAuth: {OAUTH_VARIABLES}"
        )
        app = "the private app (or service key)"
    return Hints(
        unauthorized=unauthorized,
        forbidden=f"give {app} the scopes heatsync needs: {scopes}",
        unreachable="check HUBSPOT_BASE_URL (HubSpot's is https://api.hubapi.com) and the network",
    )


def account_key(settings: HubSpotSettings) -> str:
    """An opaque key for (server, credential): clients with the same key share rate budgets."""
    if settings.access_token is not None:
        credential = settings.access_token.get_secret_value()
    else:
        oauth = settings.oauth
        assert oauth is not None
        credential = f"{oauth.client_id}|{oauth.refresh_token.get_secret_value()}"
    digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
    return f"{settings.base_url.rstrip('/')}|{digest}"


class HubSpotClient:
    """One HubSpot portal over one Session; thread-safe counters in `stats`."""

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.stats = stats or RequestStats()
        self._token_lock = threading.Lock()
        self._oauth_token: str | None = None
        self._oauth_expires_at = 0.0
        self._refresh_token: str | None = (
            settings.oauth.refresh_token.get_secret_value() if settings.oauth else None
        )
        self.http = JsonHttp(
            settings.base_url,
            limiter=shared_limiter(
                account_key(settings),
                settings.burst_limit,
                settings.burst_window_s,
                settings.search_per_second,
                margin=min(settings.burst_margin, settings.burst_limit - 1),
                search_window_s=settings.search_window_s,
            ),
            policy=RetryPolicy(
                attempts=settings.max_attempts,
                max_total_wait_s=settings.max_total_wait_s,
                window_s=settings.burst_window_s,
            ),
            timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            auth=self._auth_headers,
            on_unauthorized=self._on_unauthorized,
            stats=self.stats,
            sleep=sleep,
            service="HubSpot",
            hints=hints_for(settings),
            rules=HUBSPOT_RULES,
            pool=max(8, settings.read_workers + 2),
        )

    def close(self) -> None:
        self.http.session.close()

    # -- auth ------------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        if self.settings.access_token is not None:
            return {"Authorization": f"Bearer {self.settings.access_token.get_secret_value()}"}
        return {"Authorization": f"Bearer {self._current_oauth_token()}"}

    def _current_oauth_token(self) -> str:
        oauth = self.settings.oauth
        assert oauth is not None
        with self._token_lock:
            if (
                self._oauth_token is None
                or time.monotonic() >= self._oauth_expires_at - oauth.refresh_ahead_s
            ):
                self._refresh_locked()
            assert self._oauth_token is not None
            return self._oauth_token

    def refresh_access_token(self) -> None:
        """Exchange the refresh token for a new access token (OAuth only)."""
        with self._token_lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        oauth = self.settings.oauth
        if oauth is None or self._refresh_token is None:
            raise AuthError("no OAuth credentials to refresh with")
        try:
            payload = self.http.request(
                "POST",
                oauth.token_path,
                form={
                    "grant_type": "refresh_token",
                    "client_id": oauth.client_id,
                    "client_secret": oauth.client_secret.get_secret_value(),
                    "refresh_token": self._refresh_token,
                },
                authenticated=False,
            )
        except (RequestError, AuthError) as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            code = exc.category or body.get("status") or "refused"
            raise AuthError(
                exc.detail,
                status=exc.status,
                category=exc.category,
                correlation_id=exc.correlation_id,
                correlation_label=exc.correlation_label,
                method=exc.method,
                path=exc.path,
                body=exc.body,
                summary=(
                    f"HubSpot refused to refresh the OAuth token at {self.settings.base_url} "
                    f"({exc.status} {code}): {exc.detail}"
                ),
                hint=f"check {OAUTH_VARIABLES}",
            ) from None
        token = TokenResponse.model_validate(payload)
        register_secret(token.access_token)
        if token.refresh_token:
            register_secret(token.refresh_token)
            self._refresh_token = token.refresh_token
        self._oauth_token = token.access_token
        self._oauth_expires_at = time.monotonic() + token.expires_in
        log.info("refreshed OAuth access token (expires in %ds)", token.expires_in)

    def _on_unauthorized(self, exc: ConnectorError) -> bool:
        if self.settings.oauth is None:
            return False
        expired = (exc.category or "").upper() == "EXPIRED_AUTHENTICATION" or "expired" in (
            exc.detail or ""
        ).lower()
        if not expired:
            return False
        self.refresh_access_token()
        return True

    # -- reads -----------------------------------------------------------------------------
    def list_objects(
        self, object_type: str, properties: Iterable[str], archived: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every record of a type via the list endpoint (100 per page, `after` cursor)."""
        path = self.settings.objects_path(object_type)
        props = ",".join(properties)
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": LIST_PAGE_SIZE, "archived": str(archived).lower()}
            if props:
                params["properties"] = props
            if after:
                params["after"] = after
            page = ListPage.model_validate(self.http.request("GET", path, params=params))
            yield from page.results
            if page.paging is None or page.paging.next is None:
                return
            if page.paging.next.after == after:
                raise ConnectorError(f"list {object_type}: paging cursor did not advance")
            after = page.paging.next.after

    def _search_page(
        self,
        object_type: str,
        modified_prop: str,
        lo_ms: int,
        hi_ms: int,
        after_id: str | None,
        properties: Sequence[str],
    ) -> SearchPage:
        filters: list[dict[str, Any]] = [
            {"propertyName": modified_prop, "operator": "GTE", "value": str(lo_ms)},
            {"propertyName": modified_prop, "operator": "LTE", "value": str(hi_ms)},
        ]
        if after_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": after_id})
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": SEARCH_PAGE_SIZE,
        }
        path = f"{self.settings.objects_path(object_type)}/search"
        return SearchPage.model_validate(
            self.http.request("POST", path, json_body=body, search=True)
        )

    def search_modified(
        self,
        object_type: str,
        since: datetime,
        until: datetime,
        properties: Sequence[str],
    ) -> Iterator[dict[str, Any]]:
        """Records whose modified date lies in [since, until], each once, without the 10k cap."""
        modified_prop = MODIFIED_PROPERTY.get(object_type, DEFAULT_MODIFIED_PROPERTY)
        props = list(dict.fromkeys([*properties, modified_prop]))
        seen: set[str] = set()
        stack = [(to_ms(since), to_ms(until))]
        while stack:
            lo, hi = stack.pop()
            if lo > hi:
                continue
            page = self._search_page(object_type, modified_prop, lo, hi, None, props)
            if page.total >= SEARCH_RESULT_CAP and hi - lo >= 1000:
                mid = (lo + hi) // 2
                stack.append((mid + 1, hi))  # popped second: windows run oldest first
                stack.append((lo, mid))
                continue
            while True:
                last_id: str | None = None
                for record in page.results:
                    rid = str(record.get("id") or "")
                    if rid and rid not in seen:
                        seen.add(rid)
                        yield record
                    if rid and (last_id is None or _id_key(rid) > _id_key(last_id)):
                        last_id = rid
                if len(page.results) < SEARCH_PAGE_SIZE or last_id is None:
                    break
                page = self._search_page(object_type, modified_prop, lo, hi, last_id, props)
                if page.results and all(
                    _id_key(str(r.get("id") or "0")) <= _id_key(last_id) for r in page.results
                ):
                    raise ConnectorError(
                        f"search {object_type}: hs_object_id GT {last_id} did not advance"
                    )

    def batch_read(
        self, object_type: str, ids: Sequence[str], properties: Sequence[str]
    ) -> BatchOutcome:
        """Records by id (≤ 100 per request); unknown ids come back as errors."""
        out = BatchOutcome()
        path = f"{self.settings.objects_path(object_type)}/batch/read"
        for part in chunks(list(dict.fromkeys(ids)), BATCH_SIZE):
            body = {"inputs": [{"id": i} for i in part], "properties": list(properties)}
            resp = BatchResponse.model_validate(self.http.request("POST", path, json_body=body))
            out.results.extend(resp.results)
            out.errors.extend(resp.errors)
        return out

    def batch_read_history(
        self, object_type: str, ids: Sequence[str], history: Sequence[str]
    ) -> BatchOutcome:
        """Records by id with `propertiesWithHistory` (≤ 50 per request: HubSpot's cap when
        history is asked); unknown ids come back as errors."""
        out = BatchOutcome()
        path = f"{self.settings.objects_path(object_type)}/batch/read"
        for part in chunks(list(dict.fromkeys(ids)), HISTORY_BATCH_SIZE):
            body = {
                "inputs": [{"id": i} for i in part],
                "properties": ["hs_object_id"],
                "propertiesWithHistory": list(history),
            }
            resp = BatchResponse.model_validate(self.http.request("POST", path, json_body=body))
            out.results.extend(resp.results)
            out.errors.extend(resp.errors)
        return out

    def token_info(self) -> dict[str, Any]:
        """HubSpot's token introspection (a read): for a private app token or service key
        `POST /oauth/v2/private-apps/get/access-token-info`, for OAuth
        `GET /oauth/v1/access-tokens/{token}`."""
        if self.settings.access_token is not None:
            token = self.settings.access_token.get_secret_value()
            payload = self.http.request(
                "POST",
                "/oauth/v2/private-apps/get/access-token-info",
                json_body={"tokenKey": token},
            )
        else:
            payload = self.http.request(
                "GET", f"/oauth/v1/access-tokens/{self._current_oauth_token()}", authenticated=False
            )
        return payload if isinstance(payload, dict) else {}

    def batch_update(self, object_type: str, inputs: Sequence[dict[str, Any]]) -> BatchOutcome:
        """Update records (≤ 100 per request). A 207 is parsed into per-id errors.

        Updates are idempotent (same values), so whole requests are retried on transient failure.
        """
        out = BatchOutcome()
        path = f"{self.settings.objects_path(object_type)}/batch/update"
        for part in chunks(list(inputs), BATCH_SIZE):
            payload = self.http.request("POST", path, json_body={"inputs": list(part)}, write=True)
            resp = BatchResponse.model_validate(payload or {})
            out.results.extend(resp.results)
            out.errors.extend(resp.errors)
        return out

    def batch_create(self, object_type: str, inputs: Sequence[dict[str, Any]]) -> BatchOutcome:
        """Create up to 100 records in ONE request, never retried after an ambiguous failure.

        Raises TransientError (ServerError/TransportError) when the outcome is unknown; the
        caller must reconcile before creating again. 429s are retried (nothing was created).
        """
        if len(inputs) > BATCH_SIZE:
            raise ValueError(f"batch_create takes at most {BATCH_SIZE} inputs")
        path = f"{self.settings.objects_path(object_type)}/batch/create"
        payload = self.http.request(
            "POST", path, json_body={"inputs": list(inputs)}, write=True, idempotent=False
        )
        resp = BatchResponse.model_validate(payload or {})
        return BatchOutcome(results=resp.results, errors=resp.errors)

    def associations(
        self, from_type: str, to_type: str, ids: Sequence[str], fanout: Fanout | None = None
    ) -> dict[str, list[str]]:
        """v4 batch read: from-id -> associated to-ids (≤ 100 inputs/request, per-input paging)."""
        return self.associations_later(from_type, to_type, ids, fanout)()

    def associations_later(
        self, from_type: str, to_type: str, ids: Sequence[str], fanout: Fanout | None = None
    ) -> Callable[[], dict[str, list[str]]]:
        """`associations`, its first requests sent now (on `fanout`'s threads when given); the
        function returned waits for them, reads the further pages and merges in input order."""
        path = self.settings.associations_path(from_type, to_type)

        def send(inputs: Sequence[dict[str, str]]) -> BatchResponse:
            payload = self.http.request("POST", path, json_body={"inputs": list(inputs)})
            return BatchResponse.model_validate(payload or {})

        def start(pending: list[dict[str, str]]) -> list[Any]:
            parts = list(chunks(pending, ASSOC_BATCH_SIZE))
            if fanout is None:
                return [lambda part=part: send(part) for part in parts]
            return [fanout.submit(send, part).result for part in parts]

        first = start([{"id": i} for i in dict.fromkeys(ids)])

        def finish() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            waiting = first
            while waiting:
                pending: list[dict[str, str]] = []
                for result in waiting:
                    for raw in result().results:
                        item = AssociationResult.model_validate(raw)
                        targets = out.setdefault(item.from_.id, [])
                        for target in item.to:
                            if target.toObjectId not in targets:
                                targets.append(target.toObjectId)
                        if item.paging and item.paging.next and item.paging.next.after:
                            pending.append({"id": item.from_.id, "after": item.paging.next.after})
                waiting = start(pending)
            return out

        return finish

    def owners(self) -> list[Owner]:
        out: list[Owner] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            payload = self.http.request("GET", self.settings.owners_path, params=params) or {}
            out.extend(Owner.model_validate(r) for r in payload.get("results", []))
            page = ListPage.model_validate(payload)
            if page.paging is None or page.paging.next is None:
                return out
            after = page.paging.next.after

    def pipelines(self) -> list[Pipeline]:
        payload = self.http.request("GET", self.settings.pipelines_path) or {}
        return [Pipeline.model_validate(p) for p in payload.get("results", [])]

    def account_details(self) -> AccountDetails:
        return AccountDetails.model_validate(self.http.request("GET", self.settings.account_path))

    # -- property definitions ----------------------------------------------------------------
    def get_property(self, object_type: str, name: str) -> PropertyDefinition | None:
        try:
            payload = self.http.request(
                "GET", f"{self.settings.properties_path(object_type)}/{name}"
            )
        except NotFoundError:
            return None
        return PropertyDefinition.model_validate(payload)

    def create_property(self, object_type: str, body: dict[str, Any]) -> PropertyDefinition:
        """Create a property; raises ConflictError (409) if it already exists."""
        payload = self.http.request(
            "POST", self.settings.properties_path(object_type), json_body=body, write=True
        )
        return PropertyDefinition.model_validate(payload)

    def update_property(
        self, object_type: str, name: str, body: dict[str, Any]
    ) -> PropertyDefinition:
        payload = self.http.request(
            "PATCH",
            f"{self.settings.properties_path(object_type)}/{name}",
            json_body=body,
            write=True,
        )
        return PropertyDefinition.model_validate(payload)

    def get_group(self, object_type: str, name: str) -> PropertyGroup | None:
        try:
            payload = self.http.request(
                "GET", f"{self.settings.properties_path(object_type)}/groups/{name}"
            )
        except NotFoundError:
            return None
        return PropertyGroup.model_validate(payload)

    def create_group(self, object_type: str, body: dict[str, Any]) -> PropertyGroup:
        payload = self.http.request(
            "POST",
            f"{self.settings.properties_path(object_type)}/groups",
            json_body=body,
            write=True,
        )
        return PropertyGroup.model_validate(payload)

    def update_group(self, object_type: str, name: str, body: dict[str, Any]) -> PropertyGroup:
        payload = self.http.request(
            "PATCH",
            f"{self.settings.properties_path(object_type)}/groups/{name}",
            json_body=body,
            write=True,
        )
        return PropertyGroup.model_validate(payload)
