"""amoCRM / Kommo configured by environment variables (AMOCRM_*), and its registration (`CRM`).

`AMOCRM_BASE_URL` (the account's root) with a long-lived `AMOCRM_ACCESS_TOKEN`, or OAuth
(`AMOCRM_CLIENT_ID`, `AMOCRM_CLIENT_SECRET`, `AMOCRM_REDIRECT_URI` and `AMOCRM_REFRESH_TOKEN` or a
one-time `AMOCRM_AUTH_CODE`). The rotating refresh tokens are kept under the pipeline's state
directory (`<state_dir>/tokens`) unless `AMOCRM_TOKEN_DIR` says otherwise, or in PostgreSQL when
`HEATSYNC_POSTGRES_URL` is set (run workers on many machines share one chain; a chain in the token
directory carries over). Reps read Russian unless the portal's locale says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.amocrm.settings import ENV_VARIABLES, settings_from_env
from connectors.spec import ROLES, CrmSpec, MissingCredentials

if TYPE_CHECKING:
    from connectors.base import CrmConnector

POSTGRES_VARIABLE = "HEATSYNC_POSTGRES_URL"
NEEDS = (
    "AMOCRM_BASE_URL (the account's root, e.g. https://example.amocrm.ru) with "
    "AMOCRM_ACCESS_TOKEN (a long-lived token) or AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET, "
    "AMOCRM_REDIRECT_URI and AMOCRM_REFRESH_TOKEN (OAuth)"
)


def _build(portal: str, env: Mapping[str, str], state_dir: Path) -> CrmConnector:
    from connectors.amocrm.connector import AmoCrmConnector

    overrides: dict[str, Any] = {}
    if not (env.get(ENV_VARIABLES["token_dir"]) or "").strip():
        overrides["token_dir"] = state_dir / "tokens"
    try:
        settings = settings_from_env(portal, env, **overrides)
    except ValueError as exc:
        problems = "; ".join(
            str(e.get("msg", e)).removeprefix("Value error, ")
            for e in getattr(exc, "errors", lambda: [])()
        )
        raise MissingCredentials(f"amoCRM settings: {problems or exc}. Set {NEEDS}.") from None
    # a setting of the deployment, not of a portal: the process environment when `env` (the
    # portal's connection) does not name it
    postgres = (env.get(POSTGRES_VARIABLE) or os.environ.get(POSTGRES_VARIABLE) or "").strip()
    if not (postgres and settings.oauth):
        return AmoCrmConnector(settings)
    from connectors.amocrm.client import AmoClient
    from connectors.amocrm.tokens import PostgresTokenStore, TokenStore

    client = AmoClient(settings)
    assert settings.client_id is not None
    seed = TokenStore(settings.token_dir, settings.root, settings.client_id)
    client.store = PostgresTokenStore(
        postgres,
        settings.root,
        settings.client_id,
        lock_timeout_s=settings.lock_timeout_s,
        seed=seed,
    )
    return AmoCrmConnector(settings, client=client)


CRM = CrmSpec(
    name="amocrm",
    build=_build,
    variables={role: ENV_VARIABLES[role] for role in ROLES},
    options=(ENV_VARIABLES["token_dir"], ENV_VARIABLES["unowned_user_ids"]),
    needs=NEEDS,
    locale="ru",
)
