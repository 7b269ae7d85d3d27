"""amoCRM API v4 client: auth (long-lived token or rotating OAuth), pacing, retries, HAL paging.

Requests go through the shared `connectors.http.JsonHttp` (one `requests.Session`, tenacity
retries), told amoCRM's vocabulary by `AmoRules`:

- Pacing: at most `rate_per_second` (≤ 7) requests counted by amoCRM in any window, whatever
  the credential, the step or the process (`connectors.amocrm.arrivals` states the rule and why
  it is safe; `connectors.amocrm.pace` shares it through a pace file beside the token store;
  `shared_pace=False`: per process only). A request occupies its slot from sending until a
  learned margin or its answer, whichever comes first, plus a window.
- 429 comes as an nginx HTML page without Retry-After: the budget is blocked for a window, the
  margin widens (a few 429s in a minute: each slot is held until the answer plus a window) and
  the request is retried with exponential backoff. Ten or so 429s in a minute get the account
  blocked, which is why the client never bursts.
- 403 as an HTML page is amoCRM's account block for too many requests: `AccountBlockedError`, never
  retried, and every later request of this process to that account fails at once with the same
  message until `block_cooldown_s` passed, so a run stops instead of digging a longer ban. A 403
  with a JSON body is a missing right (`PermissionDeniedError`).
- 204 (an empty list, an unknown id) is an empty answer (None); lists end on a 204 or a page
  without `_links.next`.
- 401 on an OAuth token: the token store is consulted (another process may have refreshed), else
  the token is refreshed once; the rotated refresh token is saved before the new access token is
  used (`connectors.amocrm.tokens`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connectors.amocrm.arrivals import PaceLimiter, process_pace_limiter
from connectors.amocrm.models import Account, CustomField, Pipeline, TokenResponse
from connectors.amocrm.pace import SharedPaceLimiter, shared_pace_limiter
from connectors.amocrm.settings import API, TOKEN_PATH, AmoCrmSettings
from connectors.amocrm.tokens import TokenStore, TokenStoreError, fingerprint
from connectors.base import RequestStats
from connectors.http import (
    AuthError,
    ConnectorError,
    ErrorBody,
    Hints,
    JsonHttp,
    PermissionDeniedError,
    RateLimiter,
    RequestError,
    RetryPolicy,
    ServerRules,
    log,
    redact,
    register_secret,
)

OAUTH_VARIABLES = (
    "AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET, AMOCRM_REDIRECT_URI and AMOCRM_REFRESH_TOKEN"
)
BLOCK_COOLDOWN_S = 600.0


class AccountBlockedError(PermissionDeniedError):
    """amoCRM blocked the account (HTML 403) after too many requests: stop, do not retry."""


class TokenRefusedError(AuthError):
    """amoCRM's token endpoint refused the grant: refreshing again cannot help."""


class AmoRules(ServerRules):
    """How amoCRM's error answers read: problem+json `{title, type, status, detail}` (validation
    errors add `validation-errors`), OAuth problems add `hint`; 429 and 403 blocks are HTML."""

    correlation_label = "request id"

    def read_error(self, body: Any) -> ErrorBody:
        if not isinstance(body, Mapping):
            return ErrorBody()
        detail = body.get("detail") or body.get("title")
        hint = body.get("hint")
        errors = body.get("validation-errors")
        if isinstance(errors, list) and errors:
            parts = []
            for item in errors[:5]:
                if not isinstance(item, Mapping):
                    continue
                for err in item.get("errors") or []:
                    if isinstance(err, Mapping):
                        parts.append(
                            f"#{item.get('request_id')} {err.get('path')}: "
                            f"{err.get('code')} {err.get('detail')}"
                        )
            if parts:
                detail = f"{detail}: " + "; ".join(parts)
        return ErrorBody(category=hint, message=detail)

    def exhausts_window(self, error: ConnectorError) -> bool:
        return error.status == 429  # no Retry-After: hold the whole window back


AMO_RULES = AmoRules()

# account root -> monotonic time until which it counts as blocked (this process)
_BLOCKED: dict[str, tuple[float, str]] = {}
_BLOCKED_LOCK = threading.Lock()


def hints_for(settings: AmoCrmSettings) -> Hints:
    if settings.oauth:
        unauthorized = f"check {OAUTH_VARIABLES} (or authorize the integration again)"
    else:
        unauthorized = (
            "check AMOCRM_ACCESS_TOKEN (a long-lived token of this account's integration, "
            f"not expired), or use OAuth: {OAUTH_VARIABLES}"
        )
    return Hints(
        unauthorized=unauthorized,
        forbidden="give the integration's user the rights heatsync needs (an administrator)",
        unreachable=(
            "check AMOCRM_BASE_URL (the account's root, e.g. https://example.amocrm.ru or "
            "https://example.kommo.com) and the network"
        ),
    )


class AmoClient:
    """One amoCRM account over one Session; thread-safe counters in `stats`."""

    def __init__(
        self,
        settings: AmoCrmSettings,
        *,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.stats = stats or RequestStats()
        self._token_lock = threading.Lock()
        self._sent = threading.local()
        self._access: str | None = None
        self._expires_at = 0.0  # unix time
        self.store: TokenStore | None = None
        if settings.oauth:
            assert settings.client_id is not None
            self.store = TokenStore(
                settings.token_dir,
                settings.root,
                settings.client_id,
                lock_timeout_s=settings.lock_timeout_s,
            )
        limiter: RateLimiter
        if settings.shared_pace:
            name = f"pace-{fingerprint(settings.root.lower())[:20]}.json"
            limiter = shared_pace_limiter(
                settings.token_dir / name, settings.rate_per_second, settings.rate_window_s
            )
        else:
            limiter = process_pace_limiter(
                f"amocrm|{settings.root.lower()}", settings.rate_per_second, settings.rate_window_s
            )
        self.http = JsonHttp(
            settings.root,
            limiter=limiter,
            policy=RetryPolicy(
                attempts=settings.max_attempts,
                max_total_wait_s=settings.max_total_wait_s,
                window_s=settings.rate_window_s,
            ),
            timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            auth=self._auth_headers,
            on_unauthorized=self._on_unauthorized,
            stats=self.stats,
            sleep=sleep,
            service="amoCRM",
            hints=hints_for(settings),
            rules=AMO_RULES,
            pool=max(8, settings.read_workers + 2),
        )
        # The token request is made while an API request holds its slot of the account's budget
        # (the refresh happens inside that request's auth): it gets a budget of its own, so that
        # requests waiting for the refresh can never hold every slot it needs.
        self.token_http = JsonHttp(
            settings.root,
            limiter=RateLimiter(settings.rate_per_second, settings.rate_window_s, 1),
            policy=self.http.policy,
            timeout=self.http.timeout,
            session=self.http.session,
            stats=self.stats,
            sleep=sleep,
            service="amoCRM",
            hints=hints_for(settings),
            rules=AMO_RULES,
        )

    def close(self) -> None:
        self.http.session.close()

    # -- requests ----------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request through JsonHttp; a 403 HTML block becomes AccountBlockedError."""
        root = self.settings.root.lower()
        with _BLOCKED_LOCK:
            blocked = _BLOCKED.get(root)
        if blocked is not None and time.monotonic() < blocked[0]:
            raise AccountBlockedError(blocked[1], status=403, method=method, path=path)
        pace = self.http.limiter.pace if isinstance(self.http.limiter, SharedPaceLimiter) else None
        message = pace.blocked() if pace is not None else None
        if message is not None:  # another process of this account met the block
            raise AccountBlockedError(message, status=403, method=method, path=path)
        try:
            return self.http.request(method, path, **kwargs)
        except AccountBlockedError:
            raise
        except PermissionDeniedError as exc:
            if exc.body is not None:  # a JSON 403: a right is missing
                raise
            summary = (
                f"amoCRM blocked the account at {self.settings.root} ({method} {exc.path} answered "
                "403 Forbidden as an HTML page): too many requests per second. heatsync stops "
                "this run instead of retrying into a longer ban"
            )
            hint = (
                "wait for the block to end (often minutes; amoCRM support can lift it), check "
                "that no other integration floods the account, then run again"
            )
            with _BLOCKED_LOCK:
                _BLOCKED[root] = (time.monotonic() + BLOCK_COOLDOWN_S, f"{summary} — {hint}")
            if pace is not None:
                pace.block(BLOCK_COOLDOWN_S, f"{summary} — {hint}")
            log.error("%s", summary)
            raise AccountBlockedError(
                exc.detail,
                status=403,
                method=method,
                path=path,
                summary=summary,
                hint=hint,
            ) from None

    def get(
        self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
    ) -> Any:
        return self.request("GET", f"{API}{path}", params=params)

    def pages(
        self,
        path: str,
        key: str,
        params: list[tuple[str, Any]] | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a HAL list, page by page, until a 204 or a page without `next`."""
        page = 1
        while True:
            items, more = self.page(path, key, params, page, limit=limit)
            yield from items
            if not more:
                return
            page += 1

    def page(
        self,
        path: str,
        key: str,
        params: list[tuple[str, Any]] | None,
        page: int,
        *,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The items of page `page` (from 1) of a HAL list, and whether a next page follows."""
        query = [*(params or []), ("page", page), ("limit", limit or self.settings.page_size)]
        payload = self.get(path, query)
        if not payload:
            return [], False
        items = (payload.get("_embedded") or {}).get(key) or []
        return items, bool(items) and bool((payload.get("_links") or {}).get("next"))

    # -- auth --------------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        token = self.access_token()
        self._sent.token = token  # what this thread's request carries, for a 401 that follows
        if isinstance(self.http.limiter, PaceLimiter):
            self.http.limiter.sending()  # the request leaves now (JsonHttp sends right after)
        return {"Authorization": f"Bearer {token}"}

    def access_token(self) -> str:
        """The access token to send: the long-lived one, or a stored/refreshed OAuth token."""
        if self.settings.access_token is not None:
            return self.settings.access_token.get_secret_value()
        with self._token_lock:
            if self._access and time.time() < self._expires_at - self.settings.refresh_ahead_s:
                return self._access
            assert self.store is not None
            with self.store.locked():
                self._load_or_refresh(failed=None)
            assert self._access is not None
            return self._access

    def _on_unauthorized(self, exc: ConnectorError) -> bool:
        if not self.settings.oauth or isinstance(exc, TokenRefusedError):
            return False
        assert self.store is not None
        with self._token_lock:
            # the token this thread's request carried (another thread may have refreshed since)
            failed = getattr(self._sent, "token", None)
            with self.store.locked():
                self._load_or_refresh(failed=failed)
        return True

    def _grant(self) -> tuple[str, str, str]:
        """(origin fingerprint, grant type, grant value) of the grant in the settings."""
        s = self.settings
        if s.auth_code is not None:
            value = s.auth_code.get_secret_value()
            return fingerprint("code:" + value), "authorization_code", value
        assert s.refresh_token is not None
        value = s.refresh_token.get_secret_value()
        return fingerprint("refresh:" + value), "refresh_token", value

    def _load_or_refresh(self, failed: str | None) -> None:
        """Under the store lock: use the stored access token if it is fresh and not the one that
        just failed; otherwise spend the stored refresh token (or the settings' new grant)."""
        assert self.store is not None
        try:
            data = self.store.read()
        except TokenStoreError as exc:
            raise AuthError(str(exc), summary=str(exc), hint="fix or remove the file") from None
        origin, grant_type, grant_value = self._grant()
        if data is None or data.get("origin") != origin:
            if data is not None:
                log.info("amoCRM: a new grant in the settings starts a new token chain")
            self._exchange(grant_type, grant_value, origin, data, new_grant=True)
            return
        access = data.get("access_token")
        expires_at = float(data.get("expires_at") or 0)
        fresh = time.time() < expires_at - self.settings.refresh_ahead_s
        if access and fresh and access != failed:
            register_secret(access)
            self._access, self._expires_at = access, expires_at
            return
        refresh = data.get("refresh_token")
        if not refresh:
            raise AuthError(
                "the token store holds no refresh token",
                summary=f"no refresh token is stored for {self.settings.root}",
                hint=f"authorize the integration again and set {OAUTH_VARIABLES}",
            )
        self._exchange("refresh_token", str(refresh), origin, data, new_grant=False)

    def _exchange(
        self,
        grant_type: str,
        value: str,
        origin: str,
        previous: dict[str, Any] | None,
        *,
        new_grant: bool,
    ) -> None:
        """POST /oauth2/access_token and save the answer before anything uses it."""
        assert self.store is not None
        s = self.settings
        interrupted = (previous or {}).get("inflight")
        if interrupted and interrupted.get("token") != fingerprint(value):
            interrupted = None
        # Record the refresh in flight (if we die before saving, the next run can say why). A
        # new grant keeps the stored chain until amoCRM accepted the grant: a mistyped token in
        # the environment must not destroy a working chain.
        marker = {"since": time.time(), "token": fingerprint(value), "grant_type": grant_type}
        self.store.write({**(previous or {"origin": None}), "inflight": marker})
        body = {
            "client_id": s.client_id,
            "client_secret": s.client_secret.get_secret_value() if s.client_secret else "",
            "grant_type": grant_type,
            "redirect_uri": s.redirect_uri,
            ("code" if grant_type == "authorization_code" else "refresh_token"): value,
        }
        try:
            payload = self.token_http.request(
                "POST", TOKEN_PATH, json_body=body, authenticated=False, write=True
            )
        except (RequestError, AuthError) as exc:
            if isinstance(exc, PermissionDeniedError) and exc.body is None:
                raise
            # refused, not interrupted: the next run must not read it as a lost answer
            self.store.write({**(previous or {"origin": None}), "inflight": None})
            self._refused(exc, grant_type, interrupted)
        token = TokenResponse.model_validate(payload)
        register_secret(token.access_token)
        if token.refresh_token:
            register_secret(token.refresh_token)
        expires_at = time.time() + token.expires_in
        # saved (fsync + rename) before the new access token is used for anything
        self.store.write(
            {
                "origin": origin,
                "access_token": token.access_token,
                "refresh_token": token.refresh_token,
                "expires_at": expires_at,
                "refreshed_at": time.time(),
                "inflight": None,
            }
        )
        self._access, self._expires_at = token.access_token, expires_at
        log.info("amoCRM: new OAuth tokens saved (access token valid %ds)", token.expires_in)

    def _refused(
        self, exc: ConnectorError, grant_type: str, interrupted: dict[str, Any] | None
    ) -> None:
        hint_text = str(exc.category or "")
        what = "authorization code" if grant_type == "authorization_code" else "refresh token"
        summary = (
            f"amoCRM refused the {what} at {self.settings.root}{TOKEN_PATH} "
            f"({exc.status} {hint_text or 'refused'})"
        )
        if "revoked" in hint_text.lower():
            if interrupted:
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(interrupted["since"]))
                summary += (
                    f": a token refresh started at {when} was interrupted before its answer was "
                    "saved, and amoCRM had already spent the refresh token, so the chain is lost"
                )
            else:
                summary += (
                    ": it was already used (amoCRM refresh tokens are single-use) — by another "
                    "copy of heatsync with its own token store, or the store was lost"
                )
        hint = (
            "authorize the integration again (a new authorization code, or a new "
            "AMOCRM_REFRESH_TOKEN), or use a long-lived AMOCRM_ACCESS_TOKEN"
        )
        raise TokenRefusedError(
            exc.detail,
            status=exc.status,
            category=exc.category,
            method="POST",
            path=TOKEN_PATH,
            body=exc.body,
            summary=redact(summary),
            hint=hint,
        ) from None

    # -- reads -------------------------------------------------------------------------------
    def account(self) -> Account:
        params = [("with", "task_types,datetime_settings,is_api_filter_enabled")]
        payload = self.get("/account", params)
        return Account.model_validate(payload or {})

    def custom_fields(self, entity: str = "contacts") -> list[CustomField]:
        return [
            CustomField.model_validate(f)
            for f in self.pages(f"/{entity}/custom_fields", "custom_fields")
        ]

    def pipelines(self) -> list[Pipeline]:
        payload = self.get("/leads/pipelines") or {}
        return [
            Pipeline.model_validate(p)
            for p in (payload.get("_embedded") or {}).get("pipelines", [])
        ]
