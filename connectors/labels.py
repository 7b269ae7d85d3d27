"""Localized names and descriptions of heatsync's CRM fields, group and select options.

One table for every CRM: a field means the same in HubSpot and amoCRM. Keys are heatsync's field
names (`heatsync_temperature`; amoCRM's field codes are these in upper case) and
`<kind>.<value>` for select options. Locales: en, ru, lv. Option values never change with the
locale; only what reps see does. Descriptions tell a rep what a value means and who writes it;
the numbers they quote are heatsync's defaults (scoring/defaults.yaml).
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


# What each field's value means, shown beside it in the CRM (keys: field names in lower case).
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "en": {
        "heatsync_temperature": (
            "How ready the contact is to buy right now: Cold, Warm or Hot, from the temperature "
            "score. heatsync writes it on every run; edits made by hand are overwritten."
        ),
        "heatsync_score": (
            "Readiness to buy as a number from 0 to 100, from the contact's recent activity and "
            "deals; fresh signals count more than old ones. Hot from 70, warm from 35 (default "
            "thresholds). Written by heatsync."
        ),
        "heatsync_segment": (
            "The group the contact belongs to: Key customer, Fan, Loyal, Difficult (complaints, "
            "late payments or refunds), Burning (new and asking to buy now), At risk (a regular "
            "buyer who is overdue) or New. Empty when no group fits. Written by heatsync."
        ),
        "heatsync_reasons": (
            "The main reasons for the current temperature in plain words, strongest first. "
            "Written by heatsync."
        ),
        "heatsync_trend": (
            "How the score moved since heatsync's previous scoring: Warming (up by more than 5 "
            "points by default), Cooling (down by more than 5) or Steady. Empty until the contact "
            "has been scored twice. Written by heatsync."
        ),
        "heatsync_updated_at": (
            "The day heatsync last wrote new values to this contact's heatsync fields (it writes "
            "only when something changed)."
        ),
        "heatsync_next_touch_due": (
            "When to get in touch with the contact next: the last touch plus 2 days for hot, 14 "
            "for warm and 30 for cold contacts (default cadence), or today if there was never a "
            "touch or a burning contact still waits for an answer. Written by heatsync."
        ),
        "heatsync_touches_30d": (
            "How many times your team and the contact were in touch in the last 30 days: calls, "
            "e-mails, texts, chats and completed meetings. Written by heatsync."
        ),
        "heatsync_vip": (
            "Tick it for contacts your team treats as VIPs. heatsync reads it to choose how to "
            "keep in touch and never changes it."
        ),
        "heatsync_task_key": (
            "heatsync's own key for the tasks it creates, so that no task is created twice. Set "
            "by heatsync; leave it as it is."
        ),
    },
    "ru": {
        "heatsync_temperature": (
            "Насколько контакт готов купить прямо сейчас: холодный, тёплый или горячий — по баллу "
            "температуры. heatsync заполняет поле при каждом запуске; ручные правки "
            "перезаписываются."
        ),
        "heatsync_score": (
            "Готовность купить в баллах от 0 до 100 по недавней активности контакта и его "
            "сделкам; свежие сигналы весят больше старых. Горячий — от 70, тёплый — от 35 "
            "(пороги по умолчанию). Заполняет heatsync."
        ),
        "heatsync_segment": (
            "Группа, к которой относится контакт: ключевой клиент, фанат, лояльный, сложный "
            "(жалобы, просрочки оплаты или возвраты), горящий (новый и хочет купить сейчас), под "
            "угрозой ухода (постоянный покупатель, который давно не покупал) или новый. Пусто, "
            "если ни одна группа не подходит. Заполняет heatsync."
        ),
        "heatsync_reasons": (
            "Главные причины текущей температуры простыми словами, самые весомые — первыми. "
            "Заполняет heatsync."
        ),
        "heatsync_trend": (
            "Как изменился балл с прошлой оценки heatsync: теплеет (вырос больше чем на 5 баллов "
            "по умолчанию), остывает (упал больше чем на 5) или без изменений. Пусто, пока "
            "контакт не оценён дважды. Заполняет heatsync."
        ),
        "heatsync_updated_at": (
            "День, когда heatsync в последний раз записал новые значения в поля heatsync этого "
            "контакта (он пишет, только когда что-то изменилось)."
        ),
        "heatsync_next_touch_due": (
            "Когда снова связаться с контактом: последнее касание плюс 2 дня для горячих, 14 — "
            "для тёплых и 30 — для холодных (по умолчанию) или сегодня, если касаний ещё не было "
            "или горящий контакт всё ещё ждёт ответа. Заполняет heatsync."
        ),
        "heatsync_touches_30d": (
            "Сколько раз за последние 30 дней ваша команда и контакт были на связи: звонки, "
            "письма, SMS, чаты и состоявшиеся встречи. Заполняет heatsync."
        ),
        "heatsync_vip": (
            "Отметьте контакты, которых ваша команда считает VIP. heatsync читает это поле, чтобы "
            "выбрать, как поддерживать связь, и никогда его не меняет."
        ),
        "heatsync_task_key": (
            "Служебный ключ задач, которые создаёт heatsync: по нему ни одна задача не создаётся "
            "дважды. Заполняет heatsync; не меняйте его."
        ),
    },
    "lv": {
        "heatsync_temperature": (
            "Cik gatavs kontakts ir pirkt tieši tagad: auksts, silts vai karsts — pēc "
            "temperatūras punktiem. heatsync to aizpilda katrā palaišanā; ar roku veiktas "
            "izmaiņas tiek pārrakstītas."
        ),
        "heatsync_score": (
            "Gatavība pirkt punktos no 0 līdz 100 pēc kontakta nesenajām aktivitātēm un "
            "darījumiem; svaigiem signāliem ir lielāks svars nekā veciem. Karsts — no 70, silts — "
            "no 35 (noklusējuma sliekšņi). Aizpilda heatsync."
        ),
        "heatsync_segment": (
            "Grupa, kurai kontakts pieder: galvenais klients, fans, lojāls, sarežģīts (sūdzības, "
            "kavēti maksājumi vai atmaksas), steidzams (jauns un grib pirkt tūlīt), aiziešanas "
            "risks (pastāvīgs pircējs, kurš sen nav pircis) vai jauns. Tukšs, ja neviena grupa "
            "neatbilst. Aizpilda heatsync."
        ),
        "heatsync_reasons": (
            "Galvenie pašreizējās temperatūras iemesli vienkāršiem vārdiem, svarīgākie — pirmie. "
            "Aizpilda heatsync."
        ),
        "heatsync_trend": (
            "Kā punkti mainījušies kopš iepriekšējā heatsync novērtējuma: sasilst (pieauguši par "
            "vairāk nekā 5 punktiem pēc noklusējuma), atdziest (samazinājušies par vairāk nekā 5) "
            "vai stabils. Tukšs, kamēr kontakts nav novērtēts divreiz. Aizpilda heatsync."
        ),
        "heatsync_updated_at": (
            "Diena, kad heatsync pēdējo reizi ierakstīja jaunas vērtības šī kontakta heatsync "
            "laukos (tas raksta tikai tad, ja kaut kas ir mainījies)."
        ),
        "heatsync_next_touch_due": (
            "Kad atkal sazināties ar kontaktu: pēdējā saziņa plus 2 dienas karstiem, 14 siltiem "
            "un 30 aukstiem kontaktiem (pēc noklusējuma) vai šodien, ja saziņas vēl nav bijis vai "
            "steidzams kontakts joprojām gaida atbildi. Aizpilda heatsync."
        ),
        "heatsync_touches_30d": (
            "Cik reižu pēdējās 30 dienās jūsu komanda un kontakts ir sazinājušies: zvani, "
            "e-pasti, īsziņas, tērzēšanas ziņas un notikušās tikšanās. Aizpilda heatsync."
        ),
        "heatsync_vip": (
            "Atzīmējiet kontaktus, kurus jūsu komanda uzskata par VIP. heatsync šo lauku lasa, lai "
            "izvēlētos, kā uzturēt saziņu, un nekad to nemaina."
        ),
        "heatsync_task_key": (
            "heatsync izveidoto uzdevumu tehniskā atslēga, lai neviens uzdevums netiktu izveidots "
            "divreiz. Aizpilda heatsync; nemainiet to."
        ),
    },
}


def _table(tables: dict[str, dict[str, str]], locale: str) -> dict[str, str]:
    return tables.get((locale or DEFAULT_LOCALE).split("-")[0].lower(), tables[DEFAULT_LOCALE])


def label(locale: str, key: str) -> str:
    """The label for `key` in `locale` (falls back to English, then to the key itself)."""
    return _table(LABELS, locale).get(key) or LABELS[DEFAULT_LOCALE].get(key, key)


def description(locale: str, name: str) -> str:
    """The description of property `name` in `locale` (falls back to English, then to "")."""
    return _table(DESCRIPTIONS, locale).get(name) or DESCRIPTIONS[DEFAULT_LOCALE].get(name, "")
