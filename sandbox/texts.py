"""Word pools for the demo portal: names (Russian, Latvian, English) and activity texts.

Each name pool row is (display form, ASCII form for e-mail addresses). Text pools are keyed by
purpose and language ("en", "ru", "lv"); the generator picks by the contact's language.
"""

from __future__ import annotations

LANGS = ("ru", "lv", "en")

FIRST_NAMES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "ru": {
        "m": [
            ("Алексей", "aleksey"),
            ("Дмитрий", "dmitry"),
            ("Сергей", "sergey"),
            ("Андрей", "andrey"),
            ("Иван", "ivan"),
            ("Михаил", "mikhail"),
            ("Николай", "nikolay"),
            ("Павел", "pavel"),
            ("Игорь", "igor"),
            ("Владимир", "vladimir"),
        ],
        "f": [
            ("Анна", "anna"),
            ("Мария", "maria"),
            ("Елена", "elena"),
            ("Ольга", "olga"),
            ("Наталья", "natalya"),
            ("Татьяна", "tatyana"),
            ("Ирина", "irina"),
            ("Екатерина", "ekaterina"),
            ("Светлана", "svetlana"),
            ("Юлия", "yulia"),
        ],
    },
    "lv": {
        "m": [
            ("Jānis", "janis"),
            ("Andris", "andris"),
            ("Mārtiņš", "martins"),
            ("Kārlis", "karlis"),
            ("Edgars", "edgars"),
            ("Raivis", "raivis"),
            ("Artūrs", "arturs"),
            ("Roberts", "roberts"),
            ("Juris", "juris"),
            ("Ojārs", "ojars"),
        ],
        "f": [
            ("Līga", "liga"),
            ("Ilze", "ilze"),
            ("Anna", "anna"),
            ("Kristīne", "kristine"),
            ("Inese", "inese"),
            ("Laura", "laura"),
            ("Dace", "dace"),
            ("Zane", "zane"),
            ("Elīna", "elina"),
            ("Baiba", "baiba"),
        ],
    },
    "en": {
        "m": [
            ("James", "james"),
            ("John", "john"),
            ("Michael", "michael"),
            ("David", "david"),
            ("William", "william"),
            ("Thomas", "thomas"),
            ("Daniel", "daniel"),
            ("Oliver", "oliver"),
            ("Harry", "harry"),
            ("George", "george"),
        ],
        "f": [
            ("Emma", "emma"),
            ("Olivia", "olivia"),
            ("Sophie", "sophie"),
            ("Emily", "emily"),
            ("Charlotte", "charlotte"),
            ("Grace", "grace"),
            ("Lucy", "lucy"),
            ("Hannah", "hannah"),
            ("Jessica", "jessica"),
            ("Amelia", "amelia"),
        ],
    },
}

# (male form, female form, ASCII male, ASCII female)
LAST_NAMES: dict[str, list[tuple[str, str, str, str]]] = {
    "ru": [
        ("Смирнов", "Смирнова", "smirnov", "smirnova"),
        ("Иванов", "Иванова", "ivanov", "ivanova"),
        ("Кузнецов", "Кузнецова", "kuznetsov", "kuznetsova"),
        ("Попов", "Попова", "popov", "popova"),
        ("Соколов", "Соколова", "sokolov", "sokolova"),
        ("Лебедев", "Лебедева", "lebedev", "lebedeva"),
        ("Козлов", "Козлова", "kozlov", "kozlova"),
        ("Новиков", "Новикова", "novikov", "novikova"),
        ("Морозов", "Морозова", "morozov", "morozova"),
        ("Волков", "Волкова", "volkov", "volkova"),
        ("Павлов", "Павлова", "pavlov", "pavlova"),
        ("Семёнов", "Семёнова", "semenov", "semenova"),
    ],
    "lv": [
        ("Bērziņš", "Bērziņa", "berzins", "berzina"),
        ("Kalniņš", "Kalniņa", "kalnins", "kalnina"),
        ("Ozols", "Ozola", "ozols", "ozola"),
        ("Jansons", "Jansone", "jansons", "jansone"),
        ("Liepiņš", "Liepiņa", "liepins", "liepina"),
        ("Krūmiņš", "Krūmiņa", "krumins", "krumina"),
        ("Vītols", "Vītola", "vitols", "vitola"),
        ("Zariņš", "Zariņa", "zarins", "zarina"),
        ("Kļaviņš", "Kļaviņa", "klavins", "klavina"),
        ("Pētersons", "Pētersone", "petersons", "petersone"),
        ("Eglītis", "Eglīte", "eglitis", "eglite"),
        ("Siliņš", "Siliņa", "silins", "silina"),
    ],
    "en": [
        ("Smith", "Smith", "smith", "smith"),
        ("Jones", "Jones", "jones", "jones"),
        ("Taylor", "Taylor", "taylor", "taylor"),
        ("Brown", "Brown", "brown", "brown"),
        ("Williams", "Williams", "williams", "williams"),
        ("Wilson", "Wilson", "wilson", "wilson"),
        ("Davies", "Davies", "davies", "davies"),
        ("Evans", "Evans", "evans", "evans"),
        ("Johnson", "Johnson", "johnson", "johnson"),
        ("Walker", "Walker", "walker", "walker"),
        ("Wright", "Wright", "wright", "wright"),
        ("Hughes", "Hughes", "hughes", "hughes"),
    ],
}

EMAIL_DOMAINS: dict[str, list[str]] = {
    "ru": ["mail.ru", "yandex.ru", "gmail.com", "bk.ru"],
    "lv": ["inbox.lv", "gmail.com", "outlook.com", "apollo.lv"],
    "en": ["gmail.com", "outlook.com", "yahoo.co.uk", "hotmail.com"],
}

# The sales reps (HubSpot owners). Ids look like HubSpot owner ids.
OWNERS: list[dict[str, str]] = [
    {
        "id": "61230001",
        "first_name": "Līga",
        "last_name": "Ozola",
        "email": "liga.ozola@demo-shop.example",
    },
    {
        "id": "61230002",
        "first_name": "Jānis",
        "last_name": "Kalniņš",
        "email": "janis.kalnins@demo-shop.example",
    },
    {
        "id": "61230003",
        "first_name": "Анна",
        "last_name": "Смирнова",
        "email": "anna.smirnova@demo-shop.example",
    },
    {
        "id": "61230004",
        "first_name": "Дмитрий",
        "last_name": "Волков",
        "email": "dmitry.volkov@demo-shop.example",
    },
    {
        "id": "61230005",
        "first_name": "Emma",
        "last_name": "Wilson",
        "email": "emma.wilson@demo-shop.example",
    },
    {
        "id": "61230006",
        "first_name": "Edgars",
        "last_name": "Vītols",
        "email": "edgars.vitols@demo-shop.example",
    },
    {
        "id": "61230007",
        "first_name": "Ирина",
        "last_name": "Попова",
        "email": "irina.popova@demo-shop.example",
    },
    {
        "id": "61230008",
        "first_name": "Daniel",
        "last_name": "Hughes",
        "email": "daniel.hughes@demo-shop.example",
    },
]

TEXTS: dict[str, dict[str, list[str]]] = {
    "urgent_request": {
        "en": [
            "Need a quote today, please call me asap",
            "Urgent: can you deliver the air conditioner today?",
            "I need a quote for 3 units, urgent, ready to pay",
            "Please call today, we want to order asap",
            "Need it by tomorrow - is it in stock? Urgent",
        ],
        "ru": [
            "Срочно нужен кондиционер, можете привезти сегодня?",
            "Нужно коммерческое предложение сегодня, готов оплатить",
            "Позвоните мне сегодня, пожалуйста, срочно",
            "Срочно: есть ли в наличии? Заберу сегодня",
        ],
        "lv": [
            "Steidzami vajag piedāvājumu, lūdzu zvaniet šodien",
            "Vai varat piegādāt šodien? Steidzami",
            "Lūdzu piezvaniet šodien, gribam pasūtīt",
            "Steidzami vajadzīgs cenu piedāvājums, esmu gatavs maksāt",
        ],
    },
    "question": {
        "en": [
            "What is the difference between the two models?",
            "Do you offer installation, and how long does delivery take?",
            "Is there a warranty on this product?",
            "Could you send me more details about the pricing plans?",
        ],
        "ru": [
            "Чем отличаются эти две модели?",
            "Есть ли у вас установка и сколько идёт доставка?",
            "Какая гарантия на этот товар?",
            "Пришлите, пожалуйста, подробнее о ценах",
        ],
        "lv": [
            "Kāda ir atšķirība starp abiem modeļiem?",
            "Vai piedāvājat uzstādīšanu un cik ilgi jāgaida piegāde?",
            "Vai precei ir garantija?",
            "Lūdzu atsūtiet vairāk informācijas par cenām",
        ],
    },
    "newsletter": {
        "en": ["Subscribe me to the newsletter", "Sign me up for news and offers"],
        "ru": ["Подпишите меня на рассылку", "Хочу получать новости и акции"],
        "lv": ["Pierakstiet mani jaunumiem", "Vēlos saņemt jaunumus un piedāvājumus"],
    },
    "outreach": {
        "en": [
            "Following up on your enquiry",
            "New collection has arrived",
            "Checking in - any questions about our offer?",
            "Season sale starts next week",
        ],
        "ru": [
            "Продолжение по вашему запросу",
            "Поступила новая коллекция",
            "Остались ли вопросы по нашему предложению?",
            "Сезонная распродажа начинается на следующей неделе",
        ],
        "lv": [
            "Atgādinājums par jūsu pieprasījumu",
            "Ieradusies jaunā kolekcija",
            "Vai jums ir jautājumi par mūsu piedāvājumu?",
            "Sezonas izpārdošana sākas nākamnedēļ",
        ],
    },
    "welcome": {
        "en": ["Welcome! Here is what we offer"],
        "ru": ["Добро пожаловать! Вот что мы предлагаем"],
        "lv": ["Laipni lūgti! Lūk, ko mēs piedāvājam"],
    },
    "call_note": {
        "en": ["Discussed options and pricing", "Client asked about delivery terms"],
        "ru": ["Обсудили варианты и цены", "Клиент спрашивал об условиях доставки"],
        "lv": ["Pārrunājām iespējas un cenas", "Klients jautāja par piegādes noteikumiem"],
    },
    "no_answer": {
        "en": ["No answer", "Line busy, try later"],
        "ru": ["Не отвечает", "Занято, перезвонить позже"],
        "lv": ["Neatbild", "Aizņemts, zvanīt vēlāk"],
    },
    "meeting": {
        "en": ["Product demo", "Showroom visit", "Consultation"],
        "ru": ["Демонстрация товара", "Визит в шоурум", "Консультация"],
        "lv": ["Produkta demonstrācija", "Salona apmeklējums", "Konsultācija"],
    },
    "note": {
        "en": [
            "Prefers contact by email",
            "Not interested right now",
            "Asked to call back in autumn",
        ],
        "ru": ["Предпочитает связь по почте", "Сейчас не интересно", "Просил перезвонить осенью"],
        "lv": ["Dod priekšroku e-pastam", "Pašlaik nav interesē", "Lūdza piezvanīt rudenī"],
    },
    "sms": {
        "en": ["Reminder: your order is ready", "Is the offer still valid?"],
        "ru": ["Напоминание: ваш заказ готов", "Предложение ещё действует?"],
        "lv": ["Atgādinājums: pasūtījums ir gatavs", "Vai piedāvājums vēl ir spēkā?"],
    },
    "chat_urgent": {
        "en": ["Hi, I need this today, can you help asap?"],
        "ru": ["Здравствуйте, нужно сегодня, поможете срочно?"],
        "lv": ["Sveiki, vajag šodien, varat steidzami palīdzēt?"],
    },
    "chat": {
        "en": ["Hi, do you ship to Tartu?", "Which size would you recommend?"],
        "ru": ["Здравствуйте, доставляете в Даугавпилс?", "Какой размер посоветуете?"],
        "lv": ["Sveiki, vai piegādājat uz Liepāju?", "Kādu izmēru ieteiktu?"],
    },
    "event": {
        "en": ["Attended webinar: choosing a home climate system", "Came to the spring open day"],
        "ru": ["Посетил вебинар: как выбрать климатическую систему", "Был на дне открытых дверей"],
        "lv": ["Apmeklēja vebināru par klimata iekārtām", "Bija atvērto durvju dienā"],
    },
    "social": {
        "en": [
            "Shared our post on Facebook",
            "Commented on our Instagram photo",
            "Liked our new video",
        ],
        "ru": ["Поделился нашим постом", "Оставил комментарий в Instagram", "Лайкнул наше видео"],
        "lv": ["Dalījās ar mūsu ierakstu", "Komentēja mūsu Instagram foto", "Novērtēja mūsu video"],
    },
    "referral": {
        "en": ["Referred a friend who placed an order", "Recommended us to a colleague"],
        "ru": ["Привёл друга, который сделал заказ", "Порекомендовал нас коллеге"],
        "lv": ["Ieteica draugu, kurš pasūtīja", "Ieteica mūs kolēģim"],
    },
    "complaint": {
        "en": ["Customer unhappy with delivery delay", "Complained about rude installer"],
        "ru": ["Клиент недоволен задержкой доставки", "Жалоба на грубого монтажника"],
        "lv": ["Klients neapmierināts ar piegādes kavēšanos", "Sūdzība par rupju montētāju"],
    },
    "payment_late": {
        "en": ["Invoice paid 21 days late", "Payment overdue, reminder sent"],
        "ru": ["Счёт оплачен с опозданием на 21 день", "Просрочка оплаты, отправлено напоминание"],
        "lv": [
            "Rēķins apmaksāts ar 21 dienas kavējumu",
            "Maksājums kavējas, nosūtīts atgādinājums",
        ],
    },
    "refund": {
        "en": ["Refund requested for returned item", "Partial refund issued after dispute"],
        "ru": ["Запрошен возврат за товар", "Частичный возврат после спора"],
        "lv": ["Pieprasīta naudas atmaksa par preci", "Daļēja atmaksa pēc strīda"],
    },
    "task": {
        "en": ["Follow-up call", "Send catalogue", "Confirm delivery date"],
        "ru": ["Контрольный звонок", "Отправить каталог", "Подтвердить дату доставки"],
        "lv": ["Kontrolzvans", "Nosūtīt katalogu", "Apstiprināt piegādes datumu"],
    },
}

# Form names (HubSpot `recent_conversion_event_name`) by text pool.
FORM_NAMES: dict[str, str] = {
    "urgent_request": "Request a quote",
    "question": "Contact us",
    "newsletter": "Newsletter sign-up",
}

PRODUCTS = ["Air conditioner", "Heat pump", "Ventilation unit", "Service plan", "Installation"]
