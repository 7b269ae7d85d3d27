"""The amoCRM sandbox account's scaffolding: account, users, task types, pipelines with their
statuses (incl. 142 won and 143 lost) and the contact custom fields (PHONE/EMAIL multitext, a
birthday field, a select and two checkboxes)."""

from __future__ import annotations

from typing import Any

from sandbox.amocrm.state import LOST_STATUS_ID, WON_STATUS_ID, AmoState

ACCOUNT_ID = 30_551_234
ADMIN_USER_ID = 7_000_001
MAIN_PIPELINE_ID = 8_000_001
SERVICE_PIPELINE_ID = 8_000_002
UNSORTED_STATUS_ID = 80_000_010
NOTE_ID_BASE = 30_000_001
TASK_ID_BASE = 40_000_001
FIELD_ID_BASE = 100_001
ENUM_ID_BASE = 200_001
CUSTOM_TASK_TYPE_ID = 2_800_001
TIMEZONE = "Europe/Riga"

# The truth's deal stages (HubSpot's default pipeline) -> status ids of the main pipeline.
STAGE_STATUS = {
    "appointmentscheduled": 80_000_011,
    "qualifiedtobuy": 80_000_012,
    "presentationscheduled": 80_000_013,
    "decisionmakerboughtin": 80_000_014,
    "contractsent": 80_000_015,
    "closedwon": WON_STATUS_ID,
    "closedlost": LOST_STATUS_ID,
}
_MAIN_STATUSES = (
    (UNSORTED_STATUS_ID, "Неразобранное", 10, "#c1c1c1", 1),
    (80_000_011, "Первичный контакт", 20, "#99ccff", 0),
    (80_000_012, "Квалификация", 30, "#ffff99", 0),
    (80_000_013, "Презентация", 40, "#ffcc66", 0),
    (80_000_014, "Принимают решение", 50, "#ff9900", 0),
    (80_000_015, "Договор отправлен", 60, "#ccff66", 0),
    (WON_STATUS_ID, "Успешно реализовано", 10000, "#CCFF66", 0),
    (LOST_STATUS_ID, "Закрыто и не реализовано", 11000, "#D5D8DB", 0),
)
_SERVICE_STATUSES = (
    (80_000_020, "Неразобранное", 10, "#c1c1c1", 1),
    (80_000_021, "Заявка на сервис", 20, "#99ccff", 0),
    (80_000_022, "Выезд мастера", 30, "#ffcc66", 0),
    (WON_STATUS_ID, "Успешно реализовано", 10000, "#CCFF66", 0),
    (LOST_STATUS_ID, "Закрыто и не реализовано", 11000, "#D5D8DB", 0),
)
SOURCE_LABELS = {
    "organic_search": "Органический поиск",
    "paid_search": "Контекстная реклама",
    "social": "Соцсети",
    "referral": "Рекомендация",
    "direct": "Прямой заход",
    "email": "E-mail рассылка",
    "chat": "Чат",
    "offline": "Офлайн",
    "import": "Импорт",
    "api": "API",
    "other": "Другое",
}


def _enums(values: list[tuple[str, str | None]], next_enum: list[int]) -> list[dict[str, Any]]:
    out = []
    for sort, (value, code) in enumerate(values, start=1):
        item: dict[str, Any] = {"id": next_enum[0], "value": value, "sort": sort * 10}
        if code is not None:
            item["code"] = code
        out.append(item)
        next_enum[0] += 1
    return out


def _field(
    state: AmoState,
    entity: str,
    field_id: int,
    name: str,
    type_: str,
    sort: int,
    *,
    code: str | None = None,
    enums: list[dict[str, Any]] | None = None,
    predefined: bool = False,
    remind: str | None = None,
) -> dict[str, Any]:
    definition = {
        "id": field_id,
        "name": name,
        "type": type_,
        "account_id": state.account_id,
        "code": code,
        "sort": sort,
        "is_api_only": False,
        "enums": enums,
        "group_id": None,
        "required_statuses": [],
        "is_deletable": not predefined,
        "is_predefined": predefined,
        "entity_type": entity,
        "remind": remind,
    }
    state.custom_fields[entity].append(definition)
    state.bump_id("field", field_id)
    return definition


def build_account(state: AmoState, owners: list[dict[str, str]], anchor_s: int) -> None:
    """Fill the account, its users (an admin plus one per owner), task types, pipelines, fields."""
    state.account = {
        "id": ACCOUNT_ID,
        "name": "heatsync demo",
        "subdomain": "heatsync-demo",
        "created_at": anchor_s - 4 * 365 * 86_400,
        "created_by": ADMIN_USER_ID,
        "updated_at": anchor_s - 30 * 86_400,
        "updated_by": ADMIN_USER_ID,
        "current_user_id": ADMIN_USER_ID,
        "country": "LV",
        "currency": "EUR",
        "currency_symbol": "€",
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "mobile_feature_version": 0,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "timezone": TIMEZONE,
        "language": "ru",
    }
    admin = {"id": ADMIN_USER_ID, "first_name": "Администратор", "last_name": "", "lang": "ru"}
    people = [admin] + [
        {
            "id": int(o["id"]),
            "first_name": o["first_name"],
            "last_name": o["last_name"],
            "email": o["email"],
            "lang": "ru" if any("а" <= ch <= "я" for ch in o["first_name"].lower()) else "en",
        }
        for o in owners
    ]
    for person in people:
        is_admin = person["id"] == ADMIN_USER_ID
        state.users.append(
            {
                "id": person["id"],
                "name": f"{person['first_name']} {person['last_name']}".strip(),
                "email": person.get("email", "admin@demo-shop.example"),
                "lang": person["lang"],
                "rights": {
                    "leads": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
                    "contacts": {"view": "A", "edit": "A", "add": "A", "delete": "A"},
                    "companies": {"view": "A", "edit": "A", "add": "A", "delete": "A"},
                    "tasks": {"edit": "A", "delete": "A"},
                    "mail_access": True,
                    "catalog_access": True,
                    "status_rights": [],
                    "is_admin": is_admin,
                    "is_free": False,
                    "is_active": True,
                    "group_id": None,
                    "role_id": None,
                },
            }
        )
    state.task_types = [
        {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
        {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
        {"id": CUSTOM_TASK_TYPE_ID, "name": "Письмо", "color": "#ffcc66", "icon_id": 5},
    ]
    for pid, name, sort, is_main, statuses in (
        (MAIN_PIPELINE_ID, "Продажи", 1, True, _MAIN_STATUSES),
        (SERVICE_PIPELINE_ID, "Сервис", 2, False, _SERVICE_STATUSES),
    ):
        state.pipelines.append(
            {
                "id": pid,
                "name": name,
                "sort": sort,
                "is_main": is_main,
                "is_unsorted_on": True,
                "is_archive": False,
                "account_id": ACCOUNT_ID,
                "statuses": [
                    {
                        "id": sid,
                        "name": sname,
                        "sort": ssort,
                        "is_editable": sid not in (WON_STATUS_ID, LOST_STATUS_ID),
                        "pipeline_id": pid,
                        "color": color,
                        "type": stype,
                        "account_id": ACCOUNT_ID,
                    }
                    for sid, sname, ssort, color, stype in statuses
                ],
            }
        )
    nxt = [ENUM_ID_BASE]
    phone_codes = ["WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"]
    email_codes = ["WORK", "PRIV", "OTHER"]
    _field(
        state,
        "contacts",
        FIELD_ID_BASE,
        "Телефон",
        "multitext",
        4,
        code="PHONE",
        enums=_enums([(c, c) for c in phone_codes], nxt),
        predefined=True,
    )
    _field(
        state,
        "contacts",
        FIELD_ID_BASE + 1,
        "Email",
        "multitext",
        6,
        code="EMAIL",
        enums=_enums([(c, c) for c in email_codes], nxt),
        predefined=True,
    )
    _field(
        state,
        "contacts",
        FIELD_ID_BASE + 2,
        "Должность",
        "text",
        2,
        code="POSITION",
        predefined=True,
    )
    _field(state, "contacts", FIELD_ID_BASE + 3, "День рождения", "birthday", 510, remind="never")
    _field(
        state,
        "contacts",
        FIELD_ID_BASE + 4,
        "Источник",
        "select",
        520,
        enums=_enums([(label, None) for label in SOURCE_LABELS.values()], nxt),
    )
    _field(state, "contacts", FIELD_ID_BASE + 5, "Не беспокоить", "checkbox", 530)
    _field(state, "contacts", FIELD_ID_BASE + 6, "VIP", "checkbox", 540)
    state.bump_id("enum", nxt[0] - 1)
