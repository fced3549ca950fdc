"""A deterministic simulated SMSC account: the messages a real account would hold, and the ground truth.

Every calendar day's messages are generated on their own from ``(seed, channel, day)``, so any day can be
produced in any process without generating the days around it, and the id scheme lets the server answer a
paging request by walking days backwards from a cursor instead of materialising six months of history.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from smsc_dagster.core.dates import add_months

__all__ = [
    "CHANNELS",
    "EMAIL_SEQ_OFFSET",
    "ID_EPOCH",
    "ROW_FIELDS",
    "STATUS_NAMES",
    "SimulatedAccount",
    "int_id_day",
]

ID_EPOCH = date(2000, 1, 1)
"""Day zero of the ``int_id`` scheme: ``int_id = 1_000_000_000 + days_since_epoch * 100_000 + seq``."""

EMAIL_SEQ_OFFSET = 50_000
"""Added to ``seq`` for e-mail so SMS and e-mail ids never collide."""

_ID_BASE = 1_000_000_000
_IDS_PER_DAY = 100_000
_MAX_PER_DAY = EMAIL_SEQ_OFFSET - 1

CHANNELS = ("sms", "email")

ROW_FIELDS = (
    "status",
    "last_date",
    "last_timestamp",
    "err",
    "send_date",
    "send_timestamp",
    "phone",
    "cost",
    "sender_id",
    "status_name",
    "message",
    "mccmnc",
    "country",
    "operator",
    "region",
    "type",
    "id",
    "int_id",
    "sms_cnt",
    "format",
    "crc",
)
"""The fields of a fmt=3 history row, in the order the server sends them."""

STATUS_NAMES: dict[int, str] = {
    -3: "Сообщение не найдено",
    -2: "Остановлено",
    -1: "Ожидает отправки",
    0: "Передано оператору",
    1: "Доставлено",
    2: "Прочитано",
    3: "Просрочено",
    4: "Нажата ссылка",
    20: "Невозможно доставить",
    22: "Неверный номер",
    23: "Запрещено",
    24: "Недостаточно средств",
    25: "Недоступный номер",
}

# (country, weight, [(mccmnc, operator, price per part, phone prefixes, phone length)], regions)
_COUNTRIES: tuple[tuple[str, float, tuple[tuple[str, str, str, tuple[str, ...], int], ...], tuple[str, ...]], ...] = (
    (
        "Казахстан",
        0.60,
        (
            ("40101", "Beeline KZ", "14.50", ("7705", "7777", "7771", "7776"), 11),
            ("40102", "Kcell", "14.50", ("7701", "7702", "7775", "7778"), 11),
            ("40177", "Tele2 KZ", "13.90", ("7707", "7747"), 11),
            ("40107", "Altel", "13.90", ("7700", "7708"), 11),
        ),
        (
            "Алматы",
            "Астана",
            "Шымкент",
            "Карагандинская область",
            "Актюбинская область",
            "Атырауская область",
            "Павлодарская область",
            "Восточно-Казахстанская область",
            "Туркестанская область",
        ),
    ),
    (
        "Россия",
        0.25,
        (
            ("25001", "МТС", "27.00", ("7916", "7915", "7985", "7910"), 11),
            ("25099", "Билайн", "27.00", ("7903", "7905", "7962", "7909"), 11),
            ("25002", "МегаФон", "28.50", ("7926", "7925", "7921", "7929"), 11),
            ("25020", "Tele2", "26.00", ("7900", "7952", "7977"), 11),
        ),
        (
            "Москва",
            "Санкт-Петербург",
            "Новосибирская область",
            "Краснодарский край",
            "Свердловская область",
            "Омская область",
            "Республика Татарстан",
        ),
    ),
    (
        "Узбекистан",
        0.08,
        (
            ("43405", "Beeline UZ", "31.00", ("99890", "99891"), 12),
            ("43404", "Ucell", "31.00", ("99893", "99894"), 12),
            ("43407", "Mobiuz", "32.50", ("99897", "99888"), 12),
        ),
        ("Ташкент", "Самарканд", "Бухара", "Андижан"),
    ),
    (
        "Кыргызстан",
        0.07,
        (
            ("43701", "Beeline KG", "33.00", ("996770", "996777"), 12),
            ("43705", "MegaCom", "33.00", ("996550", "996555"), 12),
            ("43709", "O!", "34.00", ("996700", "996705"), 12),
        ),
        ("Бишкек", "Ош", "Чуйская область"),
    ),
)

_SENDERS = ("SMSC.KZ", "INFO", "SHOP.KZ", "Delivery", "AUTH", "Clinic", "BANK-INFO")

_SMS_TEXTS = (
    "Ваш код подтверждения: {code}",
    "Сіздің кодыңыз: {code}. Ешкімге айтпаңыз!",
    "Your verification code is {code}",
    "Password reset code: {code}. Do not share it.",
    "Заказ №{order} передан в доставку 🚚",
    "Заказ №{order} доставлен. Спасибо, что выбрали нас! 🙏",
    "Скидка 20% на всё до воскресенья! 🎉 Подробнее: https://shop.kz/s/{short}",
    "Құрметті клиент, төлеміңіз қабылданды: {amount} ₸",
    "Напоминаем о записи на {day} в {hh}:{mm}. Ответьте 1 для подтверждения ✅",
    "Привет! Hello! Сәлем! 👋 Ваш баланс: {amount} тг",
    'Акция "1+1" & бесплатная доставка <только сегодня>, код {code}',
    "Код: {code}\nНикому не сообщайте его.",
    "Ұялы байланыс: сіздің өтініміңіз №{order} қабылданды. Рахмет!",
    "Delivery #{order}: courier arrives {hh}:{mm}-{hh2}:{mm}",
    "Уважаемый клиент! Сообщаем, что с {day} изменяются условия обслуживания вашего тарифного плана. "
    "Абонентская плата составит {amount} тг в месяц, в неё входят безлимитные звонки внутри сети, "
    "10 ГБ мобильного интернета и 100 SMS на номера всех операторов Казахстана. Подробнее на сайте "
    "или по номеру 8 800 080 7672. 📞",
    "Құрметті абонент! {day} бастап тарифтік жоспарыңыздың шарттары өзгереді. Ай сайынғы төлем {amount} тг "
    "болады. Толығырақ: https://smsc.kz/t/{short} 🙂",
)

_EMAIL_DOMAINS = ("mail.kz", "gmail.com", "mail.ru", "yandex.kz", "inbox.kz", "company.kz")
_EMAIL_NAMES = ("aigerim", "nurlan", "ivan.petrov", "dana", "olga", "marat.b", "info", "sales", "a.smirnova", "yerlan")
_EMAIL_TEXTS = (
    "Ваш заказ №{order} оформлен",
    "Подтверждение регистрации: код {code}",
    "Тапсырысыңыз №{order} жолда 🚚",
    "Your invoice #{order} is ready",
    "Еженедельная рассылка: новинки недели ✨",
)

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€")


def int_id_day(int_id: int) -> date:
    """The calendar day (account time zone) whose generated messages carry ``int_id``."""
    return ID_EPOCH + timedelta(days=(int_id - _ID_BASE) // _IDS_PER_DAY)


def _sms_parts(text: str) -> int:
    """SMS parts as operators count them: GSM-7 160/153 septets, else UCS-2 70/67 UTF-16 units."""
    if all(ch in _GSM7 or ch in _GSM7_EXT for ch in text):
        units = sum(2 if ch in _GSM7_EXT else 1 for ch in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _parse_int(value: Any) -> int | None:
    """An int from an int or a numeric string (the real server sends both); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _parse_ts(value: Any) -> float | None:
    """A Unix timestamp from a number or numeric string, None when absent or unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


class SimulatedAccount:
    """A seeded SMSC account whose history is generated on demand, day by day.

    Args:
        seed: Every message is a function of ``(seed, channel, day)``.
        login: The account login.
        password: The account password; ``psw`` may also be its lowercase hex MD5.
        api_key: When set, ``apikey`` authenticates too.
        currency: Reported by ``balance.php`` with ``cur=1``; costs are in this currency.
        timezone: The zone in which the server reads ``dd.mm.yyyy`` and renders ``send_date``/``last_date``.
        messages_per_day: SMS per day: an int, a callable of the day, or None for realistic seeded volumes.
        emails_per_day: Likewise for e-mail history (``format=8``); None = 0-30 a day.
        extra_rows: Raw row dicts served verbatim besides the generated ones (odd values welcome). A row whose
            ``type`` is 8 belongs to the e-mail history, every other one to the SMS history.
        balance: The decimal string ``balance.php`` reports.
        cache_days: How many generated days to keep in the LRU cache.
    """

    def __init__(
        self,
        seed: int = 0,
        login: str = "demo",
        password: str = "demo-password",
        api_key: str | None = None,
        currency: str = "KZT",
        timezone: str = "Europe/Moscow",
        messages_per_day: int | Callable[[date], int] | None = None,
        emails_per_day: int | Callable[[date], int] | None = None,
        extra_rows: Iterable[Mapping[str, Any]] = (),
        *,
        balance: str = "18716.20",
        cache_days: int = 64,
    ) -> None:
        self.seed = seed
        self.login = login
        self.password = password
        self.api_key = api_key
        self.currency = currency
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.messages_per_day = messages_per_day
        self.emails_per_day = emails_per_day
        self.balance = str(Decimal(balance).quantize(Decimal("0.01")))
        # JSON round trip: what a client would see, and a private copy the caller cannot mutate.
        self.extra_rows: list[dict[str, Any]] = [json.loads(json.dumps(dict(r), ensure_ascii=False)) for r in extra_rows]
        self._cache: OrderedDict[tuple[str, date], list[dict[str, Any]]] = OrderedDict()
        self._cache_days = max(1, cache_days)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SimulatedAccount(seed={self.seed!r}, login={self.login!r}, timezone={self.timezone!r})"

    # ----------------------------------------------------------------------------------------------- auth

    def check_password(self, psw: str) -> bool:
        """Whether ``psw`` is the password or its lowercase hex MD5, as the real server accepts both."""
        return psw == self.password or psw == hashlib.md5(self.password.encode("utf-8")).hexdigest()

    def check_api_key(self, apikey: str) -> bool:
        """Whether ``apikey`` is this account's key (never true when the account has none)."""
        return self.api_key is not None and apikey == self.api_key

    # ----------------------------------------------------------------------------------------------- time

    def day_start(self, day: date) -> float:
        """Unix time of local midnight starting ``day``: the server's day boundary."""
        return float(int(datetime.combine(day, time(), tzinfo=self.tz).timestamp()))

    def day_range(self, start: date, end: date) -> tuple[float, float]:
        """``[start 00:00, end 24:00)`` in the account zone as Unix times, the span a ``start``/``end`` asks for."""
        return self.day_start(start), self.day_start(end + timedelta(days=1))

    def local_date(self, ts: float) -> date:
        """The account-zone calendar day containing ``ts``."""
        return datetime.fromtimestamp(ts, self.tz).date()

    def format_ts(self, ts: float) -> str:
        """``DD.MM.YYYY hh:mm:ss`` in the account zone, as the server renders dates."""
        return datetime.fromtimestamp(ts, self.tz).strftime("%d.%m.%Y %H:%M:%S")

    # ------------------------------------------------------------------------------------------ generation

    def messages(self, day: date, channel: str = "sms") -> list[dict[str, Any]]:
        """The day's messages, oldest first, with their final status and settle time.

        Deterministic from ``(seed, day, channel)``: the same in every process and whatever was generated
        before. Each dict has ``int_id`` (int), ``int_id_as_string`` (how the server serialises it),
        ``send_timestamp``, ``settle_timestamp``, ``final_status``, ``final_err`` and the static row fields.
        Days before 2000-01-01 (the start of the id scheme) are empty.
        """
        return [dict(m) for m in self._day(day, channel)]

    def _day(self, day: date, channel: str) -> list[dict[str, Any]]:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
        if day < ID_EPOCH:
            return []  # the id scheme starts here: the account has no older history
        key = (channel, day)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        generated = self._generate(day, channel)
        with self._lock:
            self._cache[key] = generated
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return generated

    def _volume(self, rng: random.Random, day: date, channel: str) -> int:
        setting = self.messages_per_day if channel == "sms" else self.emails_per_day
        if setting is None:
            if channel == "email":
                n = rng.randint(0, 30)
            else:
                r = rng.random()
                if r < 1 / 12:
                    n = 0
                elif r < 1 / 12 + 1 / 15:
                    n = 1000
                elif r < 1 / 12 + 2 / 15:
                    n = rng.randint(2000, 4500)
                elif rng.random() < 0.05:
                    n = rng.randint(1, 49)
                else:
                    n = rng.randint(50, 400)
        elif callable(setting):
            n = int(setting(day))
        else:
            n = int(setting)
        if not 0 <= n <= _MAX_PER_DAY:
            raise ValueError(f"{channel} volume for {day} must be 0..{_MAX_PER_DAY}, got {n}")
        return n

    def _generate(self, day: date, channel: str) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.seed}:{channel}:{day.isoformat()}")
        n = self._volume(rng, day, channel)
        if n == 0:
            return []
        start = int(self.day_start(day))
        day_len = int(self.day_start(day + timedelta(days=1))) - start

        # Sends: 1-50 recipients sharing one second, one sender id and one text.
        groups: list[tuple[int, int, int]] = []  # (offset, order, size)
        remaining = n
        while remaining > 0:
            size = 1 if rng.random() < 0.85 else rng.randint(2, 50)
            size = min(size, remaining)
            remaining -= size
            groups.append((self._send_offset(rng, day_len), len(groups), size))
        if len(groups) >= 2 and rng.random() < 0.3:
            # Edge seconds a client must not lose at a day boundary.
            groups[0] = (0, groups[0][1], groups[0][2])
            groups[1] = (day_len - 1, groups[1][1], groups[1][2])
        groups.sort()

        day_base = _ID_BASE + (day - ID_EPOCH).days * _IDS_PER_DAY
        seq = EMAIL_SEQ_OFFSET if channel == "email" else 0
        out: list[dict[str, Any]] = []
        for offset, _, size in groups:
            send_ts = start + offset
            common = self._send_common(rng, channel)
            for _ in range(size):
                seq += 1
                msg = self._recipient(rng, channel, common, send_ts)
                msg["int_id"] = day_base + seq
                msg["int_id_as_string"] = rng.random() < 0.5
                out.append(msg)
        return out

    @staticmethod
    def _send_offset(rng: random.Random, day_len: int) -> int:
        """Seconds after local midnight: a daytime peak over a thin round-the-clock floor."""
        if rng.random() < 0.75:
            for _ in range(10):
                x = rng.gauss(14 * 3600, 3.5 * 3600)
                if 0 <= x < day_len:
                    return int(x)
        return rng.randrange(day_len)

    @staticmethod
    def _text(rng: random.Random, templates: tuple[str, ...]) -> str:
        hh = rng.randint(8, 20)
        return rng.choice(templates).format(
            code=f"{rng.randint(0, 999999):06d}",
            order=rng.randint(10000, 999999),
            short="".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(6)),
            amount=f"{rng.randint(500, 250000):,}".replace(",", " "),
            day=f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}",
            hh=f"{hh:02d}",
            hh2=f"{hh + 2:02d}",
            mm=rng.choice(("00", "15", "30", "45")),
        )

    def _send_common(self, rng: random.Random, channel: str) -> dict[str, Any]:
        r = rng.random()
        if r < 0.5:
            sender_msg_id: int | str = rng.randint(1, 999_999)
        elif r < 0.8:
            sender_msg_id = f"ord-{rng.randint(10000, 99999)}"
        else:
            sender_msg_id = "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice((32, 40))))
        if channel == "email":
            text = self._text(rng, _EMAIL_TEXTS)
            return {
                "id": sender_msg_id,
                "sender_id": rng.choice(("info@shop.kz", "noreply@smsc.kz", "news@company.kz")),
                "message": text,
                "type": 8,
                "sms_cnt": 1,
                "crc": zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF,
            }
        t = rng.random()
        msg_type = 0 if t < 0.9 else (1 if t < 0.94 else 10)
        text = self._text(rng, _SMS_TEXTS)
        return {
            "id": sender_msg_id,
            "sender_id": rng.choice(_SENDERS),
            "message": text,
            "type": msg_type,
            "sms_cnt": 1 if msg_type == 10 else _sms_parts(text),
            "crc": zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF,
        }

    def _recipient(self, rng: random.Random, channel: str, common: dict[str, Any], send_ts: int) -> dict[str, Any]:
        if channel == "email":
            return self._email_recipient(rng, common, send_ts)
        r = rng.random()
        acc = 0.0
        country = _COUNTRIES[-1]
        for entry in _COUNTRIES:
            acc += entry[1]
            if r < acc:
                country = entry
                break
        country_name, _, operators, regions = country
        mccmnc, operator, price, prefixes, length = rng.choice(operators)
        prefix = rng.choice(prefixes)
        digits = length - len(prefix)
        phone = prefix + str(rng.randrange(10**digits)).zfill(digits)
        region = rng.choice(regions)

        s = rng.random()
        if s < 0.88:
            status, err = 1, 0
        elif s < 0.91:
            status, err = 20, rng.choice((6, 11, 12, 13, 21, 219, 220, 241, 248, 255))
        elif s < 0.93:
            status, err = 22, rng.choice((1, 249))
        elif s < 0.95:
            status, err = 23, rng.choice((244, 246, 247, 250, 251, 252, 253, 254))
        elif s < 0.97:
            status, err = 25, rng.choice((1, 6, 13))
        elif s < 0.99:
            status, err = 3, rng.choice((245, 6))
        else:
            status, err = 24, 0

        msg_type = common["type"]
        sms_cnt = common["sms_cnt"]
        unit = Decimal("9.80") if msg_type == 10 else Decimal(price)
        cost = unit * sms_cnt
        if status == 24 or (status != 1 and rng.random() < 0.3):
            cost = Decimal("0.00")

        settle = send_ts + self._settle_delay(rng, status)
        return {
            "send_timestamp": send_ts,
            "settle_timestamp": settle,
            "final_status": status,
            "final_err": err,
            "phone": phone,
            "cost": f"{cost:.2f}",
            "sender_id": common["sender_id"],
            "message": common["message"],
            "mccmnc": mccmnc,
            "country": country_name,
            "operator": operator,
            "region": region,
            "type": msg_type,
            "id": common["id"],
            "sms_cnt": sms_cnt,
            "format": 0,
            "crc": common["crc"],
        }

    def _email_recipient(self, rng: random.Random, common: dict[str, Any], send_ts: int) -> dict[str, Any]:
        address = f"{rng.choice(_EMAIL_NAMES)}{rng.randint(1, 999)}@{rng.choice(_EMAIL_DOMAINS)}"
        s = rng.random()
        if s < 0.70:
            status, err = 1, 0
        elif s < 0.85:
            status, err = 2, 0
        elif s < 0.90:
            status, err = 4, 0
        elif s < 0.97:
            status, err = 20, rng.choice((2, 3, 4))
        else:
            status, err = 22, 3
        return {
            "send_timestamp": send_ts,
            "settle_timestamp": send_ts + self._settle_delay(rng, status),
            "final_status": status,
            "final_err": err,
            "phone": address,
            "cost": "0.50",
            "sender_id": common["sender_id"],
            "message": common["message"],
            "mccmnc": "",
            "country": "",
            "operator": "",
            "region": "",
            "type": 8,
            "id": common["id"],
            "sms_cnt": 1,
            "format": 8,
            "crc": common["crc"],
        }

    @staticmethod
    def _settle_delay(rng: random.Random, status: int) -> int:
        """Seconds until the final status: mostly minutes, a tail to 36 h, expiries up to 47 h."""
        if status == 3:
            return rng.randint(24 * 3600, 47 * 3600)
        if status == 24:
            return rng.randint(30, 120)
        r = rng.random()
        if r < 0.80:
            return rng.randint(30, 600)
        if r < 0.95:
            return rng.randint(600, 6 * 3600)
        if r < 0.99:
            return rng.randint(6 * 3600, 36 * 3600)
        return rng.randint(36 * 3600, 47 * 3600)

    # ------------------------------------------------------------------------------------------- rendering

    def render(self, msg: Mapping[str, Any], now: float) -> dict[str, Any]:
        """The fmt=3 row of a generated message as the server shows it at clock time ``now``."""
        send_ts = msg["send_timestamp"]
        if now >= msg["settle_timestamp"]:
            status, err, last_ts = msg["final_status"], msg["final_err"], msg["settle_timestamp"]
        else:
            status = -1 if now < send_ts + 60 else 0
            err, last_ts = 0, send_ts
        int_id = msg["int_id"]
        return {
            "status": status,
            "last_date": self.format_ts(last_ts),
            "last_timestamp": last_ts,
            "err": err,
            "send_date": self.format_ts(send_ts),
            "send_timestamp": send_ts,
            "phone": msg["phone"],
            "cost": msg["cost"],
            "sender_id": msg["sender_id"],
            "status_name": STATUS_NAMES[status],
            "message": msg["message"],
            "mccmnc": msg["mccmnc"],
            "country": msg["country"],
            "operator": msg["operator"],
            "region": msg["region"],
            "type": msg["type"],
            "id": msg["id"],
            "int_id": str(int_id) if msg["int_id_as_string"] else int_id,
            "sms_cnt": msg["sms_cnt"],
            "format": msg["format"],
            "crc": msg["crc"],
        }

    # ------------------------------------------------------------------------------------------- querying

    def history(
        self,
        start_ts: float,
        end_ts: float,
        *,
        now: float,
        channel: str = "sms",
        cnt: int | None = None,
        prev_id: int | None = None,
        phones: Iterable[str] | None = None,
        emails: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One history page as the server builds it: newest first (by ``int_id``), at most ``cnt`` rows.

        Generated messages count when ``start_ts <= send_timestamp < end_ts`` and they were already sent at
        ``now``; only the days that can hold the page are generated.

        Extra rows lacking a usable ``int_id`` come first and only on a page without ``prev_id``; extra rows
        lacking ``send_timestamp`` are served when the range overlaps the day of ``now``.
        """
        limit = math.inf if cnt is None else cnt
        phone_set = {"".join(c for c in p if c.isdigit()) for p in phones} if phones is not None else None
        phone_set = {p for p in phone_set if p} if phone_set is not None else None
        email_set = {e.strip().lower() for e in emails if e.strip()} if emails is not None else None

        def wanted(row: Mapping[str, Any]) -> bool:
            if channel == "sms" and phone_set is not None:
                return "".join(c for c in str(row.get("phone", "")) if c.isdigit()) in phone_set
            if channel == "email" and email_set is not None:
                return str(row.get("phone", "")).strip().lower() in email_set
            return True

        # Extra rows: few, so filter them all.
        extra_keyed: list[tuple[int, dict[str, Any]]] = []
        extra_unkeyed: list[dict[str, Any]] = []
        now_day_start = self.day_start(self.local_date(now))
        now_day_end = self.day_start(self.local_date(now) + timedelta(days=1))
        for row in self.extra_rows:
            row_channel = "email" if _parse_int(row.get("type")) == 8 else "sms"
            if row_channel != channel or not wanted(row):
                continue
            ts = _parse_ts(row.get("send_timestamp"))
            if ts is None:
                if not (start_ts < now_day_end and now_day_start < end_ts):
                    continue
            elif not start_ts <= ts < end_ts:
                continue
            key = _parse_int(row.get("int_id"))
            if key is None:
                if prev_id is None:
                    extra_unkeyed.append(json.loads(json.dumps(row, ensure_ascii=False)))
            elif prev_id is None or key < prev_id:
                extra_keyed.append((key, json.loads(json.dumps(row, ensure_ascii=False))))

        # Generated rows: walk days backwards from the newest day that can hold a wanted row.
        generated: list[tuple[int, dict[str, Any]]] = []
        upper = min(end_ts, math.floor(now) + 1)  # send_timestamp <= now
        if upper > start_ts:
            day = self.local_date(math.ceil(upper) - 1)
            if prev_id is not None:
                day = min(day, int_id_day(prev_id - 1))
            first_day = max(self.local_date(max(start_ts, 0.0)), ID_EPOCH)
            while day >= first_day and len(generated) < limit:
                for msg in reversed(self._day(day, channel)):
                    ts = msg["send_timestamp"]
                    if not start_ts <= ts < upper:
                        continue
                    if prev_id is not None and msg["int_id"] >= prev_id:
                        continue
                    row = self.render(msg, now)
                    if not wanted(row):
                        continue
                    generated.append((msg["int_id"], row))
                    if len(generated) >= limit:
                        break
                day -= timedelta(days=1)

        keyed = sorted(extra_keyed + generated, key=lambda kr: kr[0], reverse=True)
        rows = extra_unkeyed + [row for _, row in keyed]
        return rows if cnt is None else rows[:cnt]

    def rows_between(self, start_ts: float, end_ts: float, *, now: float, channel: str = "sms") -> list[dict[str, Any]]:
        """Ground truth: every row with ``start_ts <= send_timestamp < end_ts`` as fmt=3 shows it at ``now``.

        Exactly what paging the server with ``prev_id`` over that range returns, newest first, extra rows
        included; tests compare a client's result against this. A message not yet sent at ``now`` does not
        exist yet, so a day still in progress keeps growing as the clock moves.
        """
        return self.history(start_ts, end_ts, now=now, channel=channel)
