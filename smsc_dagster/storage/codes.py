"""SMSC's documented status and delivery-error (``err``) codes, as reference data the marts and users join.

Every status and every ``err`` code of the reference (``smsc-api.md``, "Status codes" and "Delivery error
codes") is here, with an English and a Russian name. The Russian page of the history method
(``smsc-get-messages.ru.txt``) names neither table, so the Russian names are SMSC's own wording as its status
page gives it (the same wording third-party SMSC clients repeat, and the ``status_name`` the API sends);
the e-mail codes 2, 3 and 4 are translations of the English reference. A code that is not listed here is
kept by the marts and shown as :data:`UNKNOWN`, never dropped: SMSC adds codes over time.

The statuses' ``status_class`` is the contract's (:func:`smsc_dagster.storage.contract.status_class`): a test
keeps the two in step.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa

from .contract import Column

CODES_TABLE = "smsc_codes"
UNKNOWN = "unknown"
UNKNOWN_RU = "неизвестно"


class Code(NamedTuple):
    kind: str  # 'status' or 'err'
    code: int
    name_en: str
    name_ru: str
    status_class: str | None = None  # statuses only: delivered / failed / pending / other
    final: bool | None = None  # statuses only: does the status settle the message (NULL for -3)


STATUSES: tuple[Code, ...] = (
    Code("status", -3, "message not found (a status-lookup artefact)", "Сообщение не найдено", "other"),
    Code("status", -2, "stopped (mailing paused)", "Остановлено", "pending", False),
    Code("status", -1, "waiting to be sent", "Ожидает отправки", "pending", False),
    Code("status", 0, "passed to the operator", "Передано оператору", "pending", False),
    Code("status", 1, "delivered", "Доставлено", "delivered", True),
    Code("status", 2, "read (HTML e-mail)", "Прочитано", "delivered", True),
    Code("status", 3, "expired", "Просрочено", "failed", True),
    Code("status", 4, "link clicked", "Нажата ссылка", "delivered", True),
    Code("status", 20, "cannot be delivered", "Невозможно доставить", "failed", True),
    Code("status", 22, "invalid number", "Неверный номер", "failed", True),
    Code("status", 23, "prohibited", "Запрещено", "failed", True),
    Code("status", 24, "insufficient funds", "Недостаточно средств", "failed", True),
    Code("status", 25, "unavailable number", "Недоступный номер", "failed", True),
)

ERRORS: tuple[Code, ...] = (
    Code("err", 0, "none", "Нет ошибки"),
    Code("err", 1, "subscriber does not exist", "Абонент не существует"),
    Code("err", 2, "mailbox full (e-mail)", "Почтовый ящик переполнен (e-mail)"),
    Code("err", 3, "mail domain not found (e-mail)", "Почтовый домен не найден (e-mail)"),
    Code("err", 4, "mailbox blocked (e-mail)", "Почтовый ящик заблокирован (e-mail)"),
    Code("err", 6, "subscriber offline", "Абонент не в сети"),
    Code("err", 11, "no SMS service", "Нет услуги SMS"),
    Code("err", 12, "phone/SIM error", "Ошибка в телефоне абонента"),
    Code("err", 13, "subscriber blocked", "Абонент заблокирован"),
    Code("err", 21, "device does not support the service", "Нет поддержки сервиса"),
    Code("err", 200, "virtual send (test mode)", "Виртуальная отправка"),
    Code("err", 219, "SIM replaced", "Замена SIM-карты"),
    Code("err", 220, "operator queue overflow", "Переполнена очередь у оператора"),
    Code("err", 237, "not answering (call)", "Абонент не отвечает"),
    Code("err", 238, "no template", "Нет шаблона"),
    Code("err", 239, "forbidden sender IP", "Запрещенный IP-адрес"),
    Code("err", 240, "busy (call)", "Абонент занят"),
    Code("err", 241, "conversion error / not all parts sent", "Ошибка конвертации"),
    Code("err", 242, "answering machine", "Зафиксирован автоответчик"),
    Code("err", 243, "no contract", "Не заключен договор"),
    Code("err", 244, "mailing forbidden", "Рассылки запрещены"),
    Code("err", 245, "status not received within a day", "Статус не получен"),
    Code("err", 246, "time restriction", "Ограничение по времени"),
    Code("err", 247, "message limit exceeded", "Превышен лимит сообщений"),
    Code("err", 248, "no route", "Нет маршрута"),
    Code("err", 249, "invalid number format", "Неверный формат номера"),
    Code("err", 250, "number forbidden by settings", "Номер запрещен настройками"),
    Code("err", 251, "per-number limit exceeded", "Превышен лимит на один номер"),
    Code("err", 252, "number forbidden", "Номер запрещен"),
    Code("err", 253, "spam filter", "Запрещено спам-фильтром"),
    Code("err", 254, "unregistered sender ID", "Незарегистрированный sender id"),
    Code("err", 255, "rejected by operator", "Отклонено оператором"),
)

CODES: tuple[Code, ...] = STATUSES + ERRORS

CODES_COLUMNS: tuple[Column, ...] = (
    Column("kind", pa.string(), "'status' (the history's status column) or 'err' (its err column).", True),
    Column("code", pa.int32(), "The code as SMSC sends it; (kind, code) is the key.", True),
    Column("name_en", pa.string(), "English name, after SMSC's documentation.", True),
    Column(
        "name_ru",
        pa.string(),
        "Russian name: SMSC's wording (the e-mail errors 2, 3 and 4 translated from the English reference).",
        True,
    ),
    Column(
        "status_class",
        pa.string(),
        "Statuses only: delivered, failed, pending or other, as the history's status_class; NULL for err codes.",
    ),
    Column(
        "final",
        pa.bool_(),
        "Statuses only: true when the status settles the message (1 may still become 2 or 4), false while it "
        "can change, NULL for -3 (not a delivery state) and for err codes.",
    ),
)
CODES_SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in CODES_COLUMNS])


def codes_table() -> pa.Table:
    """The reference codes as an Arrow table of :data:`CODES_SCHEMA`, statuses first, each kind by code."""
    return pa.Table.from_pylist([code._asdict() for code in CODES], schema=CODES_SCHEMA)


def code_name(kind: str, code: int | None, *, russian: bool = False) -> str:
    """The name of one code, :data:`UNKNOWN` (or :data:`UNKNOWN_RU`) when it is not documented."""
    for entry in CODES:
        if entry.kind == kind and entry.code == code:
            return entry.name_ru if russian else entry.name_en
    return UNKNOWN_RU if russian else UNKNOWN
