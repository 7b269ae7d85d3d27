"""amoCRM / Kommo connection settings and the constants of heatsync's amoCRM mapping.

Auth: a long-lived `access_token` (an integration's "Keys" tab; no refresh), or OAuth:
`client_id`, `client_secret`, `redirect_uri` and a `refresh_token` (or a one-time `auth_code`) that
start a chain of single-use refresh tokens kept in the token store (`connectors.amocrm.tokens`).
`base_url` is the account's root (`https://example.amocrm.ru`, `https://example.kommo.com`); the
connector appends `/api/v4/...` and `/oauth2/access_token`. Secrets are `SecretStr`.

Which contact fields hold the birthday, the source, the VIP and do-not-contact flags differs per
account: each is found by `id`, `code` or name (case-insensitive) from the candidates below, the
birthday also by its field type.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.http import register_secret

API = "/api/v4"
TOKEN_PATH = "/oauth2/access_token"

WON_STATUS_ID = 142
LOST_STATUS_ID = 143

PAGE_SIZE = 250  # contacts, leads, notes, tasks, custom fields (amoCRM's maximum)
EVENTS_PAGE_SIZE = 100  # events' maximum
BATCH_SIZE = 50  # PATCH contacts, POST tasks, POST custom fields (the safe size)

# heatsync's own contact fields (canonical name -> field `code`), created with is_api_only.
FIELD_CODES = {
    "temperature": "HEATSYNC_TEMPERATURE",
    "score": "HEATSYNC_SCORE",
    "segment": "HEATSYNC_SEGMENT",
    "reasons": "HEATSYNC_REASONS",
    "trend": "HEATSYNC_TREND",
    "next_touch_due": "HEATSYNC_NEXT_TOUCH_DUE",
    "touches_30d": "HEATSYNC_TOUCHES_30D",
}
UPDATED_AT_CODE = "HEATSYNC_UPDATED_AT"
REASONS_MAX_CHARS = 10_000  # a textarea; amoCRM documents no limit (UNCONFIRMED)

# The marker heatsync puts in the text of its tasks: "[hs:<rule>:<period>:<hash>]".
TASK_MARKER_PREFIX = "[hs:"

# Contact fields heatsync reads, found by id, code or name (first match wins).
DEFAULT_BIRTHDAY_FIELDS = ("BIRTHDAY", "День рождения", "Birthday", "Dzimšanas diena")
DEFAULT_SOURCE_FIELDS = ("SOURCE", "Источник", "Source", "Avots")
DEFAULT_VIP_FIELDS = ("VIP", "HEATSYNC_VIP")
DEFAULT_DO_NOT_CONTACT_FIELDS = (
    "DO_NOT_CONTACT",
    "Не беспокоить",
    "Do not contact",
    "Netraucēt",
)

# Select texts (or enum codes) of a source field -> canonical source (case-insensitive).
DEFAULT_SOURCE_MAP = {
    "органический поиск": "organic_search",
    "organic search": "organic_search",
    "контекстная реклама": "paid_search",
    "paid search": "paid_search",
    "соцсети": "social",
    "social": "social",
    "social media": "social",
    "рекомендация": "referral",
    "referral": "referral",
    "прямой заход": "direct",
    "direct": "direct",
    "e-mail рассылка": "email",
    "email": "email",
    "e-mail": "email",
    "чат": "chat",
    "chat": "chat",
    "офлайн": "offline",
    "offline": "offline",
    "импорт": "import",
    "import": "import",
    "api": "api",
    "другое": "other",
    "other": "other",
}

# amoCRM call_status (calls API): 1 left a message, 2 call back later, 3 not available, 4 talked,
# 5 wrong number, 6 did not get through, 7 busy.
CALL_STATUS_OUTCOMES = {
    1: "voicemail",
    2: "connected",
    3: "no_answer",
    4: "connected",
    5: "wrong_number",
    6: "no_answer",
    7: "busy",
}

# Note texts starting with "[tag] ..." (or "[tag inbound] ...") map to these canonical types.
DEFAULT_NOTE_TAGS = (
    "complaint",
    "sms",
    "chat_message",
    "event_attended",
    "social_engagement",
    "referral",
    "payment_late",
    "refund",
    "web_session",
    "page_view",
    "form_submission",
    "email_open",
    "email_click",
    "email_reply",
    "email_sent",
    "email_bounce",
    "unsubscribe",
    "call",
    "meeting",
)

# heatsync's task types -> amoCRM task type, by code or name of the account's task types
# (`GET /api/v4/account?with=task_types`); the first that exists wins, else FOLLOW_UP (id 1).
DEFAULT_TASK_TYPES: dict[str, tuple[str, ...]] = {
    "CALL": ("FOLLOW_UP", "Связаться"),
    "TODO": ("FOLLOW_UP", "Связаться"),
    "MEETING": ("MEETING", "Встреча"),
    "EMAIL": ("EMAIL", "Письмо", "E-mail", "Email", "Letter", "Vēstule"),
}
FOLLOW_UP_TASK_TYPE_ID = 1

NOTE_TYPES = ("call_in", "call_out", "sms_in", "sms_out", "common", "service_message")
CHAT_EVENT_TYPES = ("incoming_chat_message", "outgoing_chat_message")
REMOVAL_EVENT_TYPES = ("contact_deleted",)
MEETING_TASK_TYPE_ID = 2
CURSOR_OBJECTS = ("contacts", "leads", "notes", "tasks", "events")


class AmoCrmSettings(BaseModel):
    """Everything needed to talk to one amoCRM / Kommo account."""

    model_config = ConfigDict(frozen=True)

    portal: str = "amocrm"
    base_url: str
    access_token: SecretStr | None = None  # a long-lived token
    client_id: str | None = None
    client_secret: SecretStr | None = None
    redirect_uri: str | None = None
    refresh_token: SecretStr | None = None
    auth_code: SecretStr | None = None  # exchanged once (20 minutes), then the chain is stored
    # where the rotating tokens (one file per account and client id, mode 0600) and the shared
    # request budget of the account (one pace file per account) live
    token_dir: Path = Path(".heatsync") / "tokens"
    shared_pace: bool = True  # share the request budget with other processes through a file
    refresh_ahead_s: float = 600.0  # refresh this long before the access token expires
    lock_timeout_s: float = Field(120.0, gt=0)  # waiting for another process's refresh
    locale: str = "ru"
    # heatsync's fields reps may correct in amoCRM's interface (the others are API-only): the
    # ones whose write policy respects a person's edit (pipelines.human_edits' default)
    editable_fields: tuple[str, ...] = ("temperature", "segment")
    rate_per_second: int = Field(7, ge=1, le=7)
    # the server's window (its clock's second); the pace's margin covers the jitter of latency
    rate_window_s: float = Field(1.0, gt=0)
    # threads one extract reads with (and pages of one list read at once): budget × latency
    # (7/s × 0.3 s) plus headroom; the pace, not the threads, bounds the requests per second
    read_workers: int = Field(4, ge=1, le=16)
    page_size: int = Field(PAGE_SIZE, ge=1, le=PAGE_SIZE)
    events_page_size: int = Field(EVENTS_PAGE_SIZE, ge=1, le=EVENTS_PAGE_SIZE)
    batch_size: int = Field(BATCH_SIZE, ge=1, le=BATCH_SIZE)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_attempts: int = Field(6, ge=1)
    max_total_wait_s: float = 120.0
    overlap_s: float = 300.0  # an incremental window starts this long before the cursor
    # whether filter[updated_at] works on contacts and leads (amocrm.ru's paid "API filtering");
    # None: as the account says (is_api_filter_enabled). Without it: newest first, read until
    # older than the window.
    api_filter: bool | None = None
    birthday_fields: tuple[str, ...] = DEFAULT_BIRTHDAY_FIELDS
    source_fields: tuple[str, ...] = DEFAULT_SOURCE_FIELDS
    vip_fields: tuple[str, ...] = DEFAULT_VIP_FIELDS
    do_not_contact_fields: tuple[str, ...] = DEFAULT_DO_NOT_CONTACT_FIELDS
    source_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SOURCE_MAP))
    # responsible users that stand for "nobody" (e.g. the admin amoCRM gives unassigned contacts)
    unowned_user_ids: tuple[int, ...] = ()
    note_tags: tuple[str, ...] = DEFAULT_NOTE_TAGS
    # field_edits (connectors.amocrm.edits): users whose changes are heatsync's own besides the one
    # the token acts as; users other integrations act as; and whether the token's user (e.g. the
    # admin behind a long-lived token) also edits heatsync's fields by hand, so that its changes
    # are returned as "unknown" instead of skipped as heatsync's
    own_user_ids: tuple[int, ...] = ()
    integration_user_ids: tuple[int, ...] = ()
    token_user_edits_by_hand: bool = False
    task_types: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_TASK_TYPES))
    task_lookback_days: int = Field(400, ge=1)  # how far back a task key is looked for
    create_attempts: int = Field(3, ge=1)
    reconcile_wait_s: float = Field(1.0, ge=0)  # pause before looking up an ambiguous create

    @model_validator(mode="after")
    def _one_auth(self) -> AmoCrmSettings:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be the account's root, e.g. https://example.amocrm.ru")
        grant = self.refresh_token is not None or self.auth_code is not None
        app = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
        }
        if grant:
            missing = [name for name, value in app.items() if not value]
            if missing:
                raise ValueError(
                    "OAuth needs client_id, client_secret and redirect_uri: no "
                    + ", ".join(missing)
                )
        if self.access_token is None and not grant:
            raise ValueError("give access_token (long-lived) or refresh_token/auth_code (OAuth)")
        if self.access_token is not None and grant:
            raise ValueError("give either access_token or refresh_token/auth_code, not both")
        for secret in (self.access_token, self.client_secret, self.refresh_token, self.auth_code):
            if secret is not None:
                register_secret(secret.get_secret_value())
        return self

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def oauth(self) -> bool:
        return self.access_token is None


# Settings field -> the environment variable that gives it (a portals file may name others).
ENV_VARIABLES = {
    "base_url": "AMOCRM_BASE_URL",
    "access_token": "AMOCRM_ACCESS_TOKEN",
    "client_id": "AMOCRM_CLIENT_ID",
    "client_secret": "AMOCRM_CLIENT_SECRET",
    "redirect_uri": "AMOCRM_REDIRECT_URI",
    "refresh_token": "AMOCRM_REFRESH_TOKEN",
    "auth_code": "AMOCRM_AUTH_CODE",
    "token_dir": "AMOCRM_TOKEN_DIR",
    "unowned_user_ids": "AMOCRM_UNOWNED_USER_IDS",
}


def settings_from_env(
    portal: str,
    env: Mapping[str, str],
    *,
    names: Mapping[str, str] | None = None,
    **overrides: Any,
) -> AmoCrmSettings:
    """The settings of `portal` from environment variables (`ENV_VARIABLES`, or the variable
    names a portals file gives in `names`); `overrides` (e.g. token_dir, locale) win.

    A long-lived AMOCRM_ACCESS_TOKEN wins over OAuth variables when both are set. Raises
    pydantic's ValidationError (a ValueError) naming what is missing."""
    variables = {**ENV_VARIABLES, **(names or {})}
    given = {
        field: str(env[name]).strip()
        for field, name in variables.items()
        if name in env and str(env[name]).strip()
    }
    if "access_token" in given:
        for grant in ("refresh_token", "auth_code"):
            given.pop(grant, None)
    values: dict[str, Any] = {"portal": portal}
    for field, value in given.items():
        if field == "unowned_user_ids":
            values[field] = tuple(int(v) for v in value.replace(";", ",").split(",") if v.strip())
        elif field == "token_dir":
            values[field] = Path(value).expanduser()
        elif field in ("access_token", "client_secret", "refresh_token", "auth_code"):
            values[field] = SecretStr(value)
        else:
            values[field] = value
    values.update(overrides)
    return AmoCrmSettings(**values)
