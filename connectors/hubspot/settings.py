"""HubSpot connection settings and the constants of heatsync's HubSpot mapping.

Auth: a bearer token (legacy private app or service key) or OAuth (client id/secret + refresh
token, refreshed via `POST /oauth/v1/token`), given as flat fields: `access_token`, or all three
of `client_id`, `client_secret` and `refresh_token` (`oauth` groups them). Paths default to
HubSpot's date-versioned API (`/crm/objects/2026-03/{type}`); `api_version="v3"` switches to
the numbered `/crm/v3/...` paths. Secrets are `SecretStr`: they never appear in a repr, str or dump.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.http import register_secret

# Object types (HubSpot's names) and the canonical activity mapping.
CONTACTS = "contacts"
DEALS = "deals"
TASKS = "tasks"
ACTIVITY_OBJECTS = ("calls", "emails", "meetings", "notes", "tasks")
CURSOR_OBJECTS = (CONTACTS, DEALS, *ACTIVITY_OBJECTS)

# HUBSPOT_DEFINED association type ids (reference §10).
ASSOC_DEAL_TO_CONTACT = 3
ASSOC_CONTACT_TO_DEAL = 4
ASSOC_TASK_TO_CONTACT = 204
ASSOC_CONTACT_TO_TASK = 203

# Modified-date property used for incremental search windows.
MODIFIED_PROPERTY = {CONTACTS: "lastmodifieddate"}
DEFAULT_MODIFIED_PROPERTY = "hs_lastmodifieddate"

# The scopes heatsync needs (private app, service key or OAuth app) and what each is for.
REQUIRED_SCOPES: dict[str, str] = {
    "crm.objects.contacts.read": "contacts and their calls, e-mails, meetings, notes and tasks",
    "crm.objects.contacts.write": "heatsync's contact fields and follow-up tasks",
    "crm.objects.deals.read": "deals and deal pipelines",
    "crm.objects.owners.read": "owners (who a task is for)",
    "crm.schemas.contacts.read": "heatsync's property definitions",
    "crm.schemas.contacts.write": "creating and updating heatsync's properties",
}
OPTIONAL_SCOPES: dict[str, str] = {
    "sales-email-read": "e-mail subjects and bodies (HubSpot redacts them without it)",
}

# HubSpot's public API and the requests per burst window a private app may use: the defaults of
# HubSpotSettings, written here only.
DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_BURST_LIMIT = 190

SEARCH_PAGE_SIZE = 200
SEARCH_RESULT_CAP = 10_000
LIST_PAGE_SIZE = 100
BATCH_SIZE = 100
HISTORY_BATCH_SIZE = 50  # batch read inputs when propertiesWithHistory is asked
ASSOC_BATCH_SIZE = 100
HISTORY_BATCH_SIZE = 50  # batch read inputs when propertiesWithHistory is asked

# heatsync's own properties on contacts (canonical field -> HubSpot property name).
GROUP_NAME = "heatsync"
FIELD_PROPERTIES = {
    "temperature": "heatsync_temperature",
    "score": "heatsync_score",
    "segment": "heatsync_segment",
    "reasons": "heatsync_reasons",
    "trend": "heatsync_trend",
    "next_touch_due": "heatsync_next_touch_due",
    "touches_30d": "heatsync_touches_30d",
}
UPDATED_AT_PROPERTY = "heatsync_updated_at"
TASK_KEY_PROPERTY = "heatsync_task_key"
DEFAULT_VIP_PROPERTY = "heatsync_vip"
REASONS_MAX_CHARS = 65_536

CONTACT_PROPERTIES = (
    "firstname",
    "lastname",
    "email",
    "phone",
    "createdate",
    "lastmodifieddate",
    "hubspot_owner_id",
    "hs_analytics_source",
    "hs_analytics_source_data_1",
    "lifecyclestage",
    "date_of_birth",
    "hs_email_optout",
    "hs_merged_object_ids",
    "num_conversion_events",
    "recent_conversion_date",
    "recent_conversion_event_name",
    "message",
    "hs_analytics_num_page_views",
    "hs_analytics_last_timestamp",
    "hs_analytics_num_visits",
    "hs_analytics_last_visit_timestamp",
    "hs_email_open",
    "hs_email_last_open_date",
    "hs_email_click",
    "hs_email_last_click_date",
    "hs_email_optout_date",
    *FIELD_PROPERTIES.values(),
    UPDATED_AT_PROPERTY,
)
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "pipeline",
    "dealstage",
    "createdate",
    "closedate",
    "hs_lastmodifieddate",
)
ACTIVITY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "calls": (
        "hs_timestamp",
        "hs_call_direction",
        "hs_call_disposition",
        "hs_call_status",
        "hs_call_duration",
        "hs_call_body",
        "hs_call_title",
        "hs_lastmodifieddate",
    ),
    "emails": (
        "hs_timestamp",
        "hs_email_direction",
        "hs_email_status",
        "hs_email_subject",
        "hs_email_text",
        "hs_lastmodifieddate",
    ),
    "meetings": (
        "hs_timestamp",
        "hs_meeting_start_time",
        "hs_meeting_end_time",
        "hs_meeting_outcome",
        "hs_meeting_title",
        "hs_meeting_body",
        "hs_lastmodifieddate",
    ),
    "notes": ("hs_timestamp", "hs_note_body", "hs_lastmodifieddate"),
    "tasks": (
        "hs_timestamp",
        "hs_task_status",
        "hs_task_subject",
        "hs_task_body",
        "hs_task_type",
        "hs_task_completion_date",
        "hs_lastmodifieddate",
        TASK_KEY_PROPERTY,
    ),
}

# hs_analytics_source -> canonical source.
SOURCE_MAP = {
    "ORGANIC_SEARCH": "organic_search",
    "PAID_SEARCH": "paid_search",
    "SOCIAL_MEDIA": "social",
    "PAID_SOCIAL": "social",
    "REFERRALS": "referral",
    "DIRECT_TRAFFIC": "direct",
    "EMAIL_MARKETING": "email",
    "OFFLINE": "offline",
    "OTHER_CAMPAIGNS": "other",
    "AI_REFERRALS": "referral",
}

# OFFLINE sources refined by their drill-down (hs_analytics_source_data_1).
OFFLINE_DRILLDOWN = {
    "IMPORT": "import",
    "API": "api",
    "INTEGRATION": "api",
    "CONVERSATIONS": "chat",
    "CRM_UI": "offline",
}

# Default call dispositions (reference §11) -> canonical call outcome.
CALL_DISPOSITIONS = {
    "f240bbac-87c9-4f6e-bf70-924b57d47db7": "connected",
    "73a0d17f-1163-4015-bdd5-ec830791da20": "no_answer",
    "9d9162e7-6cf3-4944-bf63-4dff82258764": "busy",
    "b2cf5968-551e-4856-9783-52b3da59a7d0": "voicemail",
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "voicemail",
    "17b47fee-58de-441e-a44c-c6300d46f273": "wrong_number",
}
CALL_STATUS_OUTCOMES = {"NO_ANSWER": "no_answer", "BUSY": "busy", "COMPLETED": "connected"}
MEETING_OUTCOMES = {
    "SCHEDULED": "scheduled",
    "COMPLETED": "completed",
    "NO_SHOW": "no_show",
    "CANCELED": "cancelled",
    "CANCELLED": "cancelled",
    "RESCHEDULED": "rescheduled",
}
# Note bodies starting with "[tag] ..." (or "[tag inbound] ...") map to these canonical types.
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


class OAuthSettings(BaseModel):
    """OAuth app credentials plus a long-lived refresh token."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_path: str = "/oauth/v1/token"
    refresh_ahead_s: float = 300.0  # refresh this long before expires_in runs out


class HubSpotSettings(BaseModel):
    """Everything needed to talk to one HubSpot portal."""

    model_config = ConfigDict(frozen=True)

    portal: str = "hubspot"
    access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    api_version: str = "2026-03"  # or "v3"
    burst_limit: int = Field(DEFAULT_BURST_LIMIT, ge=1)
    burst_window_s: float = Field(10.0, gt=0)
    burst_margin: int = Field(5, ge=0)
    search_per_second: int = Field(5, ge=1)
    search_window_s: float = Field(1.0, gt=0)  # the search budget's window (HubSpot: a second)
    # threads one extract reads with: one walks the contacts list, the others must keep about
    # budget × answer time in flight (18.5/s × 0.37 s ≈ 7), with headroom for slower answers
    read_workers: int = Field(12, ge=1, le=32)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_attempts: int = Field(6, ge=1)
    max_total_wait_s: float = 120.0
    vip_property: str = DEFAULT_VIP_PROPERTY
    # how far the window stays behind `until`: 0, since the next window starts overlap_s before
    # the cursor and so re-reads what the search index had not caught yet (seconds, not minutes)
    search_lag_s: float = 0.0
    overlap_s: float = 300.0
    note_tags: tuple[str, ...] = DEFAULT_NOTE_TAGS
    write_retry_rounds: int = Field(3, ge=0)
    create_attempts: int = Field(3, ge=1)
    reconcile_wait_s: float = Field(2.0, ge=0)  # pause before looking up an ambiguous create
    # history source ids (app ids) that are heatsync's own besides the one token introspection
    # reports, e.g. an earlier app heatsync wrote through (connectors.hubspot.edits)
    own_source_ids: tuple[str, ...] = ()
    owners_path: str = "/crm/v3/owners"
    pipelines_path: str = "/crm/v3/pipelines/deals"
    account_path: str = "/account-info/v3/details"

    @model_validator(mode="after")
    def _one_auth(self) -> HubSpotSettings:
        oauth = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        given = [name for name, value in oauth.items() if value is not None]
        if given and len(given) < len(oauth):
            missing = ", ".join(name for name in oauth if name not in given)
            raise ValueError(
                f"OAuth needs client_id, client_secret and refresh_token: no {missing}"
            )
        if (self.access_token is None) == (not given):
            raise ValueError("give exactly one of access_token or oauth")
        for secret in (self.access_token, self.client_secret, self.refresh_token):
            if secret is not None:
                register_secret(secret.get_secret_value())
        return self

    @property
    def oauth(self) -> OAuthSettings | None:
        """The OAuth app credentials, when the portal is reached through OAuth."""
        if self.client_id is None or self.client_secret is None or self.refresh_token is None:
            return None
        return OAuthSettings(
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=self.refresh_token,
        )

    # -- paths ---------------------------------------------------------------------------
    def _numbered(self) -> bool:
        return self.api_version.startswith("v")

    def objects_path(self, object_type: str) -> str:
        if self._numbered():
            return f"/crm/{self.api_version}/objects/{object_type}"
        return f"/crm/objects/{self.api_version}/{object_type}"

    def properties_path(self, object_type: str) -> str:
        if self._numbered():
            return f"/crm/{self.api_version}/properties/{object_type}"
        return f"/crm/properties/{self.api_version}/{object_type}"

    def associations_path(self, from_type: str, to_type: str) -> str:
        return f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
