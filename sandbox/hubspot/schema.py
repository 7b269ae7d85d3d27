"""HubSpot's static vocabulary as the sandbox emulates it: object types, association type ids,
default property definitions, the default deal pipeline and call dispositions.

Facts follow HubSpot's public API documentation (properties, tasks, associations, engagements,
deals); property lists are the subset of HubSpot's defaults that heatsync reads or writes, plus the
custom contact property `heatsync_vip` (the team's VIP flag, which heatsync only reads).

Over the house limit of about 500 lines on purpose: nearly all of it is one data table (`_PROPS`,
the default property definitions, some 340 lines) and the vocabulary around it, best checked
against HubSpot's documentation in one place; the logic is a few small helpers.
"""

from __future__ import annotations

from typing import Any

OBJECT_TYPES = ("contacts", "companies", "deals", "calls", "emails", "meetings", "notes", "tasks")
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")
OBJECT_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
}
SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": "task",
}
_ALIASES: dict[str, str] = {}
for _plural, _tid in OBJECT_TYPE_IDS.items():
    _ALIASES[_plural] = _plural
    _ALIASES[_tid] = _plural
    _ALIASES[SINGULAR[_plural]] = _plural


def resolve_type(name: str) -> str | None:
    """Canonical plural object type for a path segment ("contacts", "contact", "0-1"), or None."""
    return _ALIASES.get(name.lower())


# HUBSPOT_DEFINED association type ids: id -> (from type, to type)
ASSOCIATION_TYPES: dict[int, tuple[str, str]] = {
    1: ("contacts", "companies"),
    2: ("companies", "contacts"),
    279: ("contacts", "companies"),
    280: ("companies", "contacts"),
    3: ("deals", "contacts"),
    4: ("contacts", "deals"),
    5: ("deals", "companies"),
    6: ("companies", "deals"),
    341: ("deals", "companies"),
    342: ("companies", "deals"),
    193: ("contacts", "calls"),
    194: ("calls", "contacts"),
    197: ("contacts", "emails"),
    198: ("emails", "contacts"),
    199: ("contacts", "meetings"),
    200: ("meetings", "contacts"),
    201: ("contacts", "notes"),
    202: ("notes", "contacts"),
    203: ("contacts", "tasks"),
    204: ("tasks", "contacts"),
    181: ("companies", "calls"),
    182: ("calls", "companies"),
    185: ("companies", "emails"),
    186: ("emails", "companies"),
    187: ("companies", "meetings"),
    188: ("meetings", "companies"),
    189: ("companies", "notes"),
    190: ("notes", "companies"),
    191: ("companies", "tasks"),
    192: ("tasks", "companies"),
    205: ("deals", "calls"),
    206: ("calls", "deals"),
    209: ("deals", "emails"),
    210: ("emails", "deals"),
    211: ("deals", "meetings"),
    212: ("meetings", "deals"),
    213: ("deals", "notes"),
    214: ("notes", "deals"),
    215: ("deals", "tasks"),
    216: ("tasks", "deals"),
}
_PAIRS = [(1, 2), (279, 280), (3, 4), (5, 6), (341, 342)]
_PAIRS += [(a, a + 1) for a in (193, 197, 199, 201, 203, 181, 185, 187, 189, 191)]
_PAIRS += [(a, a + 1) for a in (205, 209, 211, 213, 215)]
INVERSE_TYPE: dict[int, int] = {}
for _a, _b in _PAIRS:
    INVERSE_TYPE[_a] = _b
    INVERSE_TYPE[_b] = _a
# The unlabeled (default) type for each (from, to) pair.
DEFAULT_TYPE: dict[tuple[str, str], int] = {}
for _type_id, _from_to in ASSOCIATION_TYPES.items():
    if _type_id not in (1, 2, 5, 6):  # "primary" labels are not the default
        DEFAULT_TYPE[_from_to] = _type_id


def association_label(type_id: int) -> str:
    """v3-style association type name, e.g. 204 -> "task_to_contact"."""
    a, b = ASSOCIATION_TYPES[type_id]
    return f"{SINGULAR[a]}_to_{SINGULAR[b]}"


LABEL_TO_TYPE = {association_label(t): t for t in DEFAULT_TYPE.values()}

CALL_DISPOSITIONS = {
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "left_live_message": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",
    "voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "wrong_number": "17b47fee-58de-441e-a44c-c6300d46f273",
}

DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
)

LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
ANALYTICS_SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
    "AI_REFERRALS",
)

# Properties every list/get/search returns for the type when no `properties` are asked for.
DEFAULT_PROPERTIES = {
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
for _t in ENGAGEMENT_TYPES:
    DEFAULT_PROPERTIES[_t] = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
# ... and those returned even when `properties` are given.
ALWAYS_PROPERTIES = {
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
}
for _t in ENGAGEMENT_TYPES:
    ALWAYS_PROPERTIES[_t] = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

CREATE_DATE_PROPERTY = {t: "hs_createdate" for t in ENGAGEMENT_TYPES} | {
    "contacts": "createdate",
    "companies": "createdate",
    "deals": "createdate",
}
REQUIRED_ON_CREATE = {t: ("hs_timestamp",) for t in ENGAGEMENT_TYPES}

# (name, label, type, fieldType, group, options, read-only value)
_Prop = tuple[str, str, str, str, str, tuple[str, ...], bool]


def _enum(values: tuple[str, ...]) -> tuple[str, ...]:
    return values


_COMMON: list[_Prop] = [
    ("hs_object_id", "Record ID", "number", "number", "", (), True),
    ("hs_lastmodifieddate", "Object last modified date/time", "datetime", "date", "", (), True),
    ("hubspot_owner_id", "Owner", "enumeration", "select", "", (), False),
]
_ENGAGEMENT_COMMON: list[_Prop] = [
    ("hs_timestamp", "Activity date", "datetime", "date", "", (), False),
    ("hs_createdate", "Create date", "datetime", "date", "", (), True),
]

_PROPS: dict[str, list[_Prop]] = {
    "contacts": [
        ("firstname", "First Name", "string", "text", "contactinformation", (), False),
        ("lastname", "Last Name", "string", "text", "contactinformation", (), False),
        ("email", "Email", "string", "text", "contactinformation", (), False),
        ("phone", "Phone Number", "string", "phonenumber", "contactinformation", (), False),
        ("createdate", "Create Date", "datetime", "date", "contactinformation", (), False),
        (
            "lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
            "contactinformation",
            (),
            True,
        ),
        (
            "lifecyclestage",
            "Lifecycle Stage",
            "enumeration",
            "radio",
            "contactinformation",
            LIFECYCLE_STAGES,
            False,
        ),
        ("date_of_birth", "Date of birth", "string", "text", "contactinformation", (), False),
        ("message", "Message", "string", "textarea", "contactinformation", (), False),
        ("heatsync_vip", "VIP", "bool", "booleancheckbox", "heatsync", ("true", "false"), False),
        (
            "hs_merged_object_ids",
            "Merged Record IDs",
            "enumeration",
            "checkbox",
            "contactinformation",
            (),
            True,
        ),
        (
            "hs_email_optout",
            "Unsubscribed from all email",
            "bool",
            "booleancheckbox",
            "emailinformation",
            ("true", "false"),
            True,
        ),
        (
            "hs_email_open",
            "Marketing emails opened",
            "number",
            "number",
            "emailinformation",
            (),
            True,
        ),
        (
            "hs_email_last_open_date",
            "Last marketing email open date",
            "datetime",
            "date",
            "emailinformation",
            (),
            True,
        ),
        (
            "hs_email_click",
            "Marketing emails clicked",
            "number",
            "number",
            "emailinformation",
            (),
            True,
        ),
        (
            "hs_email_last_click_date",
            "Last marketing email click date",
            "datetime",
            "date",
            "emailinformation",
            (),
            True,
        ),
        (
            "hs_analytics_source",
            "Original Source",
            "enumeration",
            "select",
            "analyticsinformation",
            ANALYTICS_SOURCES,
            True,
        ),
        (
            "hs_analytics_source_data_1",
            "Original Source Drill-Down 1",
            "string",
            "text",
            "analyticsinformation",
            (),
            True,
        ),
        (
            "hs_analytics_num_page_views",
            "Number of Pageviews",
            "number",
            "number",
            "analyticsinformation",
            (),
            True,
        ),
        (
            "hs_analytics_num_visits",
            "Number of Sessions",
            "number",
            "number",
            "analyticsinformation",
            (),
            True,
        ),
        # Roll-ups HubSpot keeps when activity is logged on the contact (sandbox: kept when an
        # engagement is associated with it; the fast lane searches on them).
        (
            "notes_last_updated",
            "Last Activity Date",
            "datetime",
            "date",
            "salesinformation",
            (),
            True,
        ),
        (
            "engagements_last_meeting_booked",
            "Date of last meeting booked in meetings tool",
            "datetime",
            "date",
            "salesinformation",
            (),
            True,
        ),
        (
            "hs_sales_email_last_replied",
            "Recent Sales Email Replied Date",
            "datetime",
            "date",
            "emailinformation",
            (),
            True,
        ),
        (
            "hs_analytics_last_timestamp",
            "Time Last Seen",
            "datetime",
            "date",
            "analyticsinformation",
            (),
            True,
        ),
        (
            "hs_analytics_last_visit_timestamp",
            "Time of Last Session",
            "datetime",
            "date",
            "analyticsinformation",
            (),
            True,
        ),
        (
            "recent_conversion_date",
            "Recent Conversion Date",
            "datetime",
            "date",
            "conversioninformation",
            (),
            True,
        ),
        (
            "recent_conversion_event_name",
            "Recent Conversion",
            "string",
            "text",
            "conversioninformation",
            (),
            True,
        ),
        (
            "first_conversion_date",
            "First Conversion Date",
            "datetime",
            "date",
            "conversioninformation",
            (),
            True,
        ),
        (
            "num_conversion_events",
            "Number of Form Submissions",
            "number",
            "number",
            "conversioninformation",
            (),
            True,
        ),
    ],
    "companies": [
        ("name", "Company name", "string", "text", "companyinformation", (), False),
        ("domain", "Company Domain Name", "string", "text", "companyinformation", (), False),
        ("createdate", "Create Date", "datetime", "date", "companyinformation", (), False),
    ],
    "deals": [
        ("dealname", "Deal Name", "string", "text", "dealinformation", (), False),
        ("amount", "Amount", "number", "number", "dealinformation", (), False),
        ("closedate", "Close Date", "datetime", "date", "dealinformation", (), False),
        ("createdate", "Create Date", "datetime", "date", "dealinformation", (), False),
        (
            "dealstage",
            "Deal Stage",
            "enumeration",
            "radio",
            "dealinformation",
            tuple(s[0] for s in DEAL_STAGES),
            False,
        ),
        ("pipeline", "Pipeline", "enumeration", "select", "dealinformation", ("default",), False),
        (
            "deal_currency_code",
            "Currency",
            "enumeration",
            "select",
            "dealinformation",
            ("EUR", "USD", "GBP"),
            False,
        ),
        (
            "hs_is_closed_won",
            "Is Closed Won",
            "bool",
            "booleancheckbox",
            "dealinformation",
            ("true", "false"),
            True,
        ),
        (
            "hs_is_closed",
            "Is Deal Closed?",
            "bool",
            "booleancheckbox",
            "dealinformation",
            ("true", "false"),
            True,
        ),
    ],
    "calls": [
        ("hs_call_title", "Call Title", "string", "text", "call", (), False),
        ("hs_call_body", "Call notes", "string", "html", "call", (), False),
        (
            "hs_call_direction",
            "Call direction",
            "enumeration",
            "select",
            "call",
            ("INBOUND", "OUTBOUND"),
            False,
        ),
        (
            "hs_call_status",
            "Call status",
            "enumeration",
            "select",
            "call",
            (
                "BUSY",
                "CALLING_CRM_USER",
                "CANCELED",
                "COMPLETED",
                "CONNECTING",
                "FAILED",
                "IN_PROGRESS",
                "MISSED",
                "NO_ANSWER",
                "QUEUED",
                "RINGING",
            ),
            False,
        ),
        ("hs_call_disposition", "Call outcome", "string", "text", "call", (), False),
        ("hs_call_duration", "Call duration", "number", "number", "call", (), False),
        (
            "hs_call_has_voicemail",
            "Has voicemail",
            "bool",
            "booleancheckbox",
            "call",
            ("true", "false"),
            False,
        ),
    ],
    "emails": [
        (
            "hs_email_direction",
            "Email direction",
            "enumeration",
            "select",
            "email",
            ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
            False,
        ),
        (
            "hs_email_status",
            "Email send status",
            "enumeration",
            "select",
            "email",
            ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
            False,
        ),
        ("hs_email_subject", "Email subject", "string", "text", "email", (), False),
        ("hs_email_text", "Email body", "string", "textarea", "email", (), False),
    ],
    "meetings": [
        ("hs_meeting_title", "Meeting name", "string", "text", "meeting", (), False),
        ("hs_meeting_body", "Meeting description", "string", "html", "meeting", (), False),
        ("hs_meeting_start_time", "Start time", "datetime", "date", "meeting", (), False),
        ("hs_meeting_end_time", "End time", "datetime", "date", "meeting", (), False),
        (
            "hs_meeting_outcome",
            "Meeting outcome",
            "enumeration",
            "select",
            "meeting",
            ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
            False,
        ),
    ],
    "notes": [
        ("hs_note_body", "Note body", "string", "html", "note", (), False),
    ],
    "tasks": [
        ("hs_task_subject", "Task title", "string", "text", "task", (), False),
        ("hs_task_body", "Task notes", "string", "html", "task", (), False),
        (
            "hs_task_status",
            "Task status",
            "enumeration",
            "select",
            "task",
            ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
            False,
        ),
        (
            "hs_task_priority",
            "Priority",
            "enumeration",
            "select",
            "task",
            ("NONE", "LOW", "MEDIUM", "HIGH"),
            False,
        ),
        (
            "hs_task_type",
            "Task type",
            "enumeration",
            "select",
            "task",
            ("EMAIL", "CALL", "TODO", "LINKED_IN"),
            False,
        ),
        ("hs_task_completion_date", "Completed at", "datetime", "date", "task", (), True),
        ("hs_task_reminders", "Reminder", "string", "text", "task", (), False),
    ],
}

_GROUPS = {
    "contacts": (
        ("contactinformation", "Contact information"),
        ("heatsync", "heatsync"),
        ("emailinformation", "Email information"),
        ("analyticsinformation", "Web analytics history"),
        ("conversioninformation", "Conversion information"),
    ),
    "companies": (("companyinformation", "Company information"),),
    "deals": (("dealinformation", "Deal information"),),
    "calls": (("call", "Call information"),),
    "emails": (("email", "Email information"),),
    "meetings": (("meeting", "Meeting information"),),
    "notes": (("note", "Note information"),),
    "tasks": (("task", "Task information"),),
}

# Seeded but not HubSpot-defined: the team flags VIPs in heatsync_vip (the connector's default).
HUBSPOT_DEFINED_CUSTOM = {"heatsync_vip"}


def property_definition(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    group: str,
    options: list[dict[str, Any]],
    *,
    read_only: bool = False,
    hubspot_defined: bool = True,
    stamp: str = "2020-01-01T00:00:00.000Z",
    description: str = "",
) -> dict[str, Any]:
    """A property definition in the shape HubSpot's properties API returns."""
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": options,
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": name == "hubspot_owner_id",
        "hasUniqueValue": name == "email",
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "formField": not read_only,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }


def option(value: str, label: str | None = None, order: int = 0) -> dict[str, Any]:
    return {"label": label or value, "value": value, "displayOrder": order, "hidden": False}


def default_properties(owners: list[dict[str, str]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Property definitions per object type, keyed by name."""
    owner_opts = [
        option(o["id"], f"{o['first_name']} {o['last_name']}", i) for i, o in enumerate(owners)
    ]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for obj_type in OBJECT_TYPES:
        group0 = _GROUPS[obj_type][0][0]
        rows = list(_PROPS[obj_type]) + list(_COMMON)
        if obj_type in ENGAGEMENT_TYPES:
            rows += _ENGAGEMENT_COMMON
        defs: dict[str, dict[str, Any]] = {}
        for name, label, type_, field_type, group, options, read_only in rows:
            if name == "hubspot_owner_id":
                opts = owner_opts
            else:
                opts = [option(v, v.replace("_", " ").title(), i) for i, v in enumerate(options)]
            if type_ == "bool":
                opts = [option("true", "Yes", 0), option("false", "No", 1)]
            defs[name] = property_definition(
                name,
                label,
                type_,
                field_type,
                group or group0,
                opts,
                read_only=read_only,
                hubspot_defined=name not in HUBSPOT_DEFINED_CUSTOM,
            )
        out[obj_type] = defs
    return out


def default_groups() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        t: {
            name: {"name": name, "label": label, "displayOrder": i, "archived": False}
            for i, (name, label) in enumerate(groups)
        }
        for t, groups in _GROUPS.items()
    }


def default_pipelines(stamp: str) -> dict[str, list[dict[str, Any]]]:
    stages = [
        {
            "id": sid,
            "label": label,
            "displayOrder": i,
            "metadata": {"isClosed": closed, "probability": prob},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for i, (sid, label, prob, closed) in enumerate(DEAL_STAGES)
    ]
    deals = {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": stages,
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }
    return {"deals": [deals]}
