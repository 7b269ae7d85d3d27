"""OAuth 2.0 of the amoCRM sandbox: `/oauth2/access_token`, bearer checks, long-lived tokens.

Authorization codes and refresh tokens are single-use; every refresh returns a new refresh token
and spends the old one (reusing it answers 401 "Token has been revoked"). Access tokens expire
after `access_token_ttl_s`. The registry keeps SHA-256 hashes only and lives in the state, so a
restarted sandbox still knows which tokens are spent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from sandbox.amocrm.common import PROBLEM, AmoOptions, ApiError, Request, Response
from sandbox.amocrm.state import AmoState

_OAUTH_PROBLEM = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _oauth_error(status: int, hint: str) -> Response:
    body = {
        "hint": hint,
        "title": "Некорректный запрос",
        "type": _OAUTH_PROBLEM,
        "status": status,
        "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
    }
    return Response(status, body, content_type=PROBLEM)


class TokenRegistry:
    """Codes, refresh and access tokens of one account (hashes in `state.oauth`)."""

    def __init__(self, state: AmoState, options: AmoOptions, api_domain: str = "") -> None:
        self.state = state
        self.options = options
        self.api_domain = api_domain

    # ------------------------------------------------------------------ registration
    def register_initial(self) -> None:
        """Know the configured code and refresh token (unless known already, e.g. spent)."""
        now = time.time()
        opts = self.options
        with self.state.lock:
            if opts.auth_code and digest(opts.auth_code) not in self.state.oauth["codes"]:
                self._put("codes", opts.auth_code, now + opts.auth_code_ttl_s)
            if opts.refresh_token and digest(opts.refresh_token) not in self.state.oauth["refresh"]:
                self._put("refresh", opts.refresh_token, now + opts.refresh_token_ttl_s)

    def issue_code(self) -> str:
        """A fresh authorization code (single use, valid `auth_code_ttl_s`)."""
        code = "def502" + secrets.token_hex(40)
        with self.state.lock:
            self._put("codes", code, time.time() + self.options.auth_code_ttl_s)
        return code

    def status(self, kind: str, token: str) -> str:
        """ "valid", "spent", "expired" or "unknown" for a code or refresh token."""
        with self.state.lock:
            entry = self.state.oauth[kind].get(digest(token))
        if entry is None:
            return "unknown"
        if entry.get("spent_at") is not None:
            return "spent"
        return "valid" if time.time() < entry["expires_at"] else "expired"

    def _put(self, kind: str, token: str, expires_at: float) -> None:
        self.state.oauth[kind][digest(token)] = {
            "expires_at": expires_at,
            "spent_at": None,
            "issued_at": time.time(),
        }
        self.state.version += 1

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired (for refresh tests)."""
        with self.state.lock:
            past = time.time() - 1
            for entry in self.state.oauth["access"].values():
                entry["expires_at"] = min(entry["expires_at"], past)
            self.state.version += 1

    # ------------------------------------------------------------------ bearer check
    def authenticate(self, req: Request) -> ApiError | None:
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            return ApiError(401, "Unauthorized")
        llt = self.options.long_lived_token
        if llt and secrets.compare_digest(token.encode(), llt.encode()):
            return None
        with self.state.lock:
            entry = self.state.oauth["access"].get(digest(token))
        if entry is None:
            return ApiError(401, "Unauthorized")
        if time.time() >= entry["expires_at"]:
            return ApiError(401, "Unauthorized: the access token has expired")
        return None

    # ------------------------------------------------------------------ token endpoint
    def token_endpoint(self, req: Request) -> Response:
        """`POST /oauth2/access_token` (JSON body; a form body is accepted too)."""
        form = self._form(req)
        if form is None:
            return _oauth_error(400, "Invalid request body")
        opts = self.options
        grant = form.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            return _oauth_error(400, "The authorization grant type is not supported")
        if form.get("client_id") != opts.client_id or not secrets.compare_digest(
            str(form.get("client_secret", "")).encode(), opts.client_secret.encode()
        ):
            return _oauth_error(401, "Client authentication failed")
        if form.get("redirect_uri") != opts.redirect_uri:
            return _oauth_error(400, "Redirect URI does not match the integration settings")
        kind, field = (
            ("codes", "code") if grant == "authorization_code" else ("refresh", "refresh_token")
        )
        token = form.get(field)
        if not isinstance(token, str) or not token:
            return _oauth_error(400, f"Check the `{field}` parameter")
        now = time.time()
        with self.state.lock:
            entry = self.state.oauth[kind].get(digest(token))
            if entry is None:
                hint = (
                    "Cannot decrypt the refresh token"
                    if kind == "refresh"
                    else ("Cannot decrypt the authorization code")
                )
                return _oauth_error(400, hint)
            if entry.get("spent_at") is not None:
                hint = (
                    "Token has been revoked"
                    if kind == "refresh"
                    else ("Authorization code has been revoked")
                )
                return _oauth_error(401 if kind == "refresh" else 400, hint)
            if now >= entry["expires_at"]:
                hint = (
                    "Token has expired" if kind == "refresh" else "Authorization code has expired"
                )
                return _oauth_error(401 if kind == "refresh" else 400, hint)
            entry["spent_at"] = now
            access, refresh = self._access_token(now), "def50200" + secrets.token_hex(64)
            self._put("refresh", refresh, now + opts.refresh_token_ttl_s)
            self._prune(now)
            self.state.oauth["access"][digest(access)] = {
                "expires_at": now + opts.access_token_ttl_s,
                "issued_at": now,
            }
            self.state.version += 1
        return Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": int(opts.access_token_ttl_s),
                "server_time": int(now),
                "access_token": access,
                "refresh_token": refresh,
            },
            content_type="application/json",
        )

    @staticmethod
    def _form(req: Request) -> dict[str, Any] | None:
        kind = (req.headers.get("Content-Type") or "").lower()
        if "x-www-form-urlencoded" in kind:
            return dict(parse_qsl(req.body.decode("utf-8", "replace")))
        try:
            data = json.loads(req.body or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _prune(self, now: float) -> None:
        access = self.state.oauth["access"]
        for key in [k for k, v in access.items() if v["expires_at"] < now - 86_400]:
            del access[key]

    def _access_token(self, now: float) -> str:
        """A JWT-shaped bearer token (the sandbox never verifies its signature)."""
        header = {"typ": "JWT", "alg": "RS256"}
        claims = {
            "aud": self.options.client_id,
            "jti": str(uuid.uuid4()),
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.options.access_token_ttl_s),
            "sub": str(self.state.api_user_id),
            "account_id": self.state.account_id,
            "api_domain": self.api_domain,
            "scopes": ["crm", "notifications"],
        }
        parts = [
            _b64(json.dumps(header, separators=(",", ":")).encode()),
            _b64(json.dumps(claims, separators=(",", ":")).encode()),
            _b64(secrets.token_bytes(32)),
        ]
        return ".".join(parts)
