"""Authentication and scopes of the HubSpot emulator: bearer tokens (private app or OAuth, with
expiry) and the scope each route needs (403 MISSING_SCOPES).
"""

from __future__ import annotations

import secrets
import time

from sandbox.hubspot import schema
from sandbox.hubspot.common import ApiBase
from sandbox.hubspot.state import iso_ms
from sandbox.hubspot.transport import ApiError, Request, Response

# Emulator-chosen scope rules, after the reference's table: activities use the contacts scopes;
# property definitions need the schema scope (a read also passes with the object read scope);
# account details need none. Each inner tuple is "any one of these".
_SCOPE_FAMILY = {t: "contacts" for t in schema.ENGAGEMENT_TYPES} | {
    "contacts": "contacts",
    "deals": "deals",
    "companies": "companies",
}
_OBJECT_READS = {"list", "get", "search", "batch_read", "object_associations", "assoc_batch_read"}
_PROPERTY_READS = {"properties_list", "property_get", "groups_list", "group_get"}


# Endpoints that authenticate by what they are sent (a form or the token itself), not by a bearer
# token, and need no scope.
TOKEN_ENDPOINTS = ("oauth_token", "private_app_token_info", "access_token_info")
_UNSCOPED = {*TOKEN_ENDPOINTS, "account"}
# What token introspection lists when `SandboxOptions.scopes` is None (every scope the emulator
# checks, plus `oauth` and the optional e-mail scope).
ALL_SCOPES = (
    "oauth",
    *(
        f"crm.{kind}.{family}.{access}"
        for family in ("contacts", "companies", "deals")
        for kind in ("objects", "schemas")
        for access in ("read", "write")
    ),
    "crm.objects.owners.read",
    "sales-email-read",
)
PRIVATE_APP_ID = 3_000_001  # the app id token introspection reports (private app and OAuth app)


def required_scopes(handler: str, args: tuple[str, ...]) -> list[tuple[str, ...]]:
    if handler in _UNSCOPED:
        return []
    if handler in ("owners_list", "owner_get"):
        return [("crm.objects.owners.read",)]
    if handler.startswith("pipeline"):
        family = _SCOPE_FAMILY.get(schema.resolve_type(args[0]) or "", "deals")
        return [(f"crm.objects.{family}.read",)]
    types = [schema.resolve_type(a) for a in args[:1]]
    if handler in ("object_associations", "associate", "unassociate", "associate_default"):
        types.append(schema.resolve_type(args[2]) if len(args) > 2 else None)
    elif handler.startswith("assoc_"):
        types.append(schema.resolve_type(args[1]) if len(args) > 1 else None)
    families = list(dict.fromkeys(_SCOPE_FAMILY[t] for t in types if t in _SCOPE_FAMILY))
    if handler in _PROPERTY_READS:
        return [(f"crm.schemas.{f}.read", f"crm.objects.{f}.read") for f in families]
    if handler.startswith(("property_", "group_")):
        return [(f"crm.schemas.{f}.write",) for f in families]
    access = "read" if handler in _OBJECT_READS else "write"
    return [(f"crm.objects.{f}.{access}",) for f in families]


class AuthMixin(ApiBase):
    """Bearer authentication and scope checks of `SandboxServer.handle`."""

    def _authenticate(self, req: Request) -> Response | None:
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token and secrets.compare_digest(token, self.options.token):
            return None
        with self._meta:
            expiry = self._oauth.get(token) if token else None
        if expiry is not None:
            now = time.time()
            if now < expiry:
                return None
            ago = int(now - expiry)
            return self._error(
                ApiError(
                    401,
                    "EXPIRED_AUTHENTICATION",
                    f"The OAuth token used to make this call expired {ago} second(s) ago.",
                    context={"expire time": [iso_ms(expiry * 1000)]},
                )
            )
        return self._error(
            ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        )

    def _check_scopes(self, handler: str, args: tuple[str, ...]) -> Response | None:
        granted = self.options.scopes
        if granted is None:
            return None
        for alternatives in required_scopes(handler, args):
            if not set(alternatives) & set(granted):
                return self._error(
                    ApiError(
                        403,
                        "MISSING_SCOPES",
                        "This app hasn't been granted all required scopes to make this call. "
                        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                        errors=[
                            {
                                "message": "One or more of the following scopes are required.",
                                "context": {"requiredScopes": list(alternatives)},
                            }
                        ],
                        links={"scopes": "https://developers.hubspot.com/scopes"},
                    )
                )
        return None
