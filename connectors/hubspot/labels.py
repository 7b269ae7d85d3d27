"""Localized labels of heatsync's HubSpot property group, properties and options (en, ru, lv).

Values (option codes) never change with the locale; only what reps see does.
"""

from __future__ import annotations

DEFAULT_LOCALE = "en"

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "group": "heatsync",
        "heatsync_temperature": "Temperature (heatsync)",
        "heatsync_score": "Temperature score (heatsync)",
        "heatsync_segment": "Segment (heatsync)",
        "heatsync_reasons": "Why this temperature (heatsync)",
        "heatsync_trend": "Temperature trend (heatsync)",
        "heatsync_updated_at": "Scored on (heatsync)",
        "heatsync_next_touch_due": "Next touch due (heatsync)",
        "heatsync_touches_30d": "Touches in the last 30 days (heatsync)",
        "heatsync_vip": "VIP (set by your team)",
        "heatsync_task_key": "heatsync task key",
        "temperature.cold": "Cold",
        "temperature.warm": "Warm",
        "temperature.hot": "Hot",
        "segment.key": "Key customer",
        "segment.fan": "Fan",
        "segment.loyal": "Loyal",
        "segment.difficult": "Difficult",
        "segment.burning": "Burning",
        "segment.at_risk": "At risk",
        "segment.new": "New",
        "trend.warming": "Warming",
        "trend.cooling": "Cooling",
        "trend.steady": "Steady",
    },
    "ru": {
        "group": "heatsync",
        "heatsync_temperature": "Температура (heatsync)",
        "heatsync_score": "Балл температуры (heatsync)",
        "heatsync_segment": "Сегмент (heatsync)",
        "heatsync_reasons": "Почему такая температура (heatsync)",
        "heatsync_trend": "Тренд температуры (heatsync)",
        "heatsync_updated_at": "Дата оценки (heatsync)",
        "heatsync_next_touch_due": "Следующее касание (heatsync)",
        "heatsync_touches_30d": "Касаний за 30 дней (heatsync)",
        "heatsync_vip": "VIP (отмечает ваша команда)",
        "heatsync_task_key": "Ключ задачи heatsync",
        "temperature.cold": "Холодный",
        "temperature.warm": "Тёплый",
        "temperature.hot": "Горячий",
        "segment.key": "Ключевой клиент",
        "segment.fan": "Фанат",
        "segment.loyal": "Лояльный",
        "segment.difficult": "Сложный",
        "segment.burning": "Горящий",
        "segment.at_risk": "Под угрозой ухода",
        "segment.new": "Новый",
        "trend.warming": "Теплеет",
        "trend.cooling": "Остывает",
        "trend.steady": "Без изменений",
    },
    "lv": {
        "group": "heatsync",
        "heatsync_temperature": "Temperatūra (heatsync)",
        "heatsync_score": "Temperatūras punkti (heatsync)",
        "heatsync_segment": "Segments (heatsync)",
        "heatsync_reasons": "Kāpēc šāda temperatūra (heatsync)",
        "heatsync_trend": "Temperatūras tendence (heatsync)",
        "heatsync_updated_at": "Novērtēts (heatsync)",
        "heatsync_next_touch_due": "Nākamais kontakts (heatsync)",
        "heatsync_touches_30d": "Kontakti pēdējās 30 dienās (heatsync)",
        "heatsync_vip": "VIP (atzīmē jūsu komanda)",
        "heatsync_task_key": "heatsync uzdevuma atslēga",
        "temperature.cold": "Auksts",
        "temperature.warm": "Silts",
        "temperature.hot": "Karsts",
        "segment.key": "Galvenais klients",
        "segment.fan": "Fans",
        "segment.loyal": "Lojāls",
        "segment.difficult": "Sarežģīts",
        "segment.burning": "Steidzams",
        "segment.at_risk": "Aiziešanas risks",
        "segment.new": "Jauns",
        "trend.warming": "Sasilst",
        "trend.cooling": "Atdziest",
        "trend.steady": "Stabils",
    },
}


def label(locale: str, key: str) -> str:
    """The label for `key` in `locale` (falls back to English, then to the key itself)."""
    table = LABELS.get((locale or DEFAULT_LOCALE).split("-")[0].lower(), LABELS[DEFAULT_LOCALE])
    return table.get(key) or LABELS[DEFAULT_LOCALE].get(key, key)
