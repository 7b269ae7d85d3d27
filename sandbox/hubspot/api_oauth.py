"""OAuth in the HubSpot emulator: token refresh and code grant, token introspection."""

from __future__ import annotations

import secrets
import time
import uuid
from urllib.parse import parse_qs

from sandbox.hubspot.auth import ALL_SCOPES, PRIVATE_APP_ID
from sandbox.hubspot.common import ApiBase
from sandbox.hubspot.transport import ApiError, Request, Response


class OAuthApi(ApiBase):
    """Handlers of the OAuth token endpoint and token introspection (no bearer token needed)."""

    def oauth_token(self, req: Request, *args: str) -> Response:
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        opts = self.options

        def fail(status: str, message: str) -> Response:
            return Response(
                400,
                {"status": status, "message": message, "correlationId": str(uuid.uuid4())},
            )

        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return fail("BAD_GRANT_TYPE", "grant_type must be refresh_token or authorization_code")
        if form.get("client_id") != opts.client_id:
            return fail("BAD_CLIENT_ID", "missing or unknown client id")
        if not secrets.compare_digest(form.get("client_secret", ""), opts.client_secret):
            return fail("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if grant == "refresh_token":
            if not secrets.compare_digest(form.get("refresh_token", ""), opts.refresh_token):
                return fail("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        elif not secrets.compare_digest(form.get("code", ""), opts.oauth_code):
            return fail("BAD_AUTH_CODE", "missing or unknown auth code")
        token = "sbx-oauth-" + secrets.token_urlsafe(24)
        ttl = opts.oauth_token_ttl_s
        with self._meta:
            self._oauth[token] = time.time() + ttl
        return Response(
            200,
            {
                "token_type": "bearer",
                "refresh_token": opts.refresh_token,
                "access_token": token,
                "expires_in": max(1, int(ttl)),
            },
        )

    # ------------------------------------------------------------------ token introspection
    def _granted(self) -> list[str]:
        scopes = self.options.scopes
        return list(ALL_SCOPES if scopes is None else scopes)

    def _user_id(self) -> int:
        for owner in self.state.owners:
            if owner.get("userId") is not None and not owner.get("archived"):
                return int(owner["userId"])
        return 1_000_001

    def private_app_token_info(self, req: Request) -> Response:
        """`POST /oauth/v2/private-apps/get/access-token-info` with `{"tokenKey": token}`.

        Answers for the private-app token (SandboxOptions.token) with the hub, user and app it
        belongs to and its granted scopes (the `scopes` fault); any other key is refused.
        """
        body = req.json()
        key = body.get("tokenKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ApiError(400, "VALIDATION_ERROR", "tokenKey is required.")
        if not secrets.compare_digest(key.encode(), self.options.token.encode()):
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "The access token is not a valid private app access token.",
            )
        return Response(
            200,
            {
                "userId": self._user_id(),
                "hubId": int(self.state.account["portalId"]),
                "appId": PRIVATE_APP_ID,
                "scopes": self._granted(),
            },
        )

    def access_token_info(self, req: Request, token: str) -> Response:
        """`GET /oauth/v1/access-tokens/{token}`: metadata of a live OAuth access token."""
        with self._meta:
            expiry = self._oauth.get(token)
        now = time.time()
        if expiry is None or now >= expiry:
            raise ApiError(404, "OBJECT_NOT_FOUND", "The access token was not found or expired.")
        owner = next((o for o in self.state.owners if not o.get("archived")), None)
        portal = int(self.state.account["portalId"])
        return Response(
            200,
            {
                "token": token,
                "user": owner["email"] if owner else "sandbox@example.com",
                "hub_domain": f"sandbox-{portal}.example.com",
                "scopes": self._granted(),
                "hub_id": portal,
                "app_id": PRIVATE_APP_ID,
                "expires_in": max(0, int(expiry - now)),
                "user_id": self._user_id(),
                "token_type": "access",
            },
        )
