"""Personal data: what the tables keep of recipients and texts, and the masking of everything that goes into
Dagster's metadata.

Two columns of the history hold personal data: ``phone`` (the recipient's number, or address for e-mail) and
``message`` (the text). :class:`Privacy` says, for each, what is stored:

* ``keep`` (default): the value as SMSC sent it;
* ``hash``: the keyed SHA-256 (HMAC) hex digest of the value, with a key read from an environment variable
  when a run starts. The same value and key give the same digest in every run, so joins and distinct counts
  still work, but nobody without the key can test a guessed number against the table;
* ``drop``: NULL.

It is applied to each page before anything is written (staging included), so the raw values never reach the
disk. The key itself is never stored: not in files, not in metadata, not in the staging state.

Metadata is masked whatever the setting (:func:`mask_address`, :func:`mask_text`, :func:`mask_table`):
Dagster keeps metadata in its instance database for good, where anyone with UI access reads it.

Example:
    >>> privacy = Privacy(phone="hash", message="drop")       # key in $SMSC_PRIVACY_KEY
    >>> table = privacy.resolve().apply(rows_to_table(...))  # raises SMSCConfigError if the key is unset
    >>> mask_address("77011234567")
    '7701***4567'
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smsc_dagster.core import SMSCConfigError

from .contract import Column

KEEP = "keep"
HASH = "hash"
DROP = "drop"
MODES = (KEEP, HASH, DROP)
# The history columns that hold personal data, in the order the settings are given.
PERSONAL_COLUMNS = ("phone", "message")
DEFAULT_KEY_ENV = "SMSC_PRIVACY_KEY"
# A shorter HMAC key could be found by trying keys against one known number's digest.
MIN_KEY_LENGTH = 16
_SETTINGS = (*PERSONAL_COLUMNS, "key_env")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What the key id is the HMAC of: a fixed label, so the id tells keys apart without revealing anything.
_KEY_ID_LABEL = b"smsc_dagster privacy key id"


@dataclass(frozen=True)
class Privacy:
    """What the history tables store of personal data.

    Args:
        phone: ``keep``, ``hash`` or ``drop`` for the ``phone`` column.
        message: ``keep``, ``hash`` or ``drop`` for the ``message`` column.
        key_env: the *name* of the environment variable holding the HMAC key (read by :meth:`resolve` when a
            run starts; needed only when something is hashed).

    Raises:
        SMSCConfigError: a setting that is not one of the above, named (``privacy.phone must be ...``).
    """

    phone: str = KEEP
    message: str = KEEP
    key_env: str = DEFAULT_KEY_ENV

    def __post_init__(self) -> None:
        for name in PERSONAL_COLUMNS:
            value = getattr(self, name)
            mode = value.strip().lower() if isinstance(value, str) else value
            if mode not in MODES:
                raise SMSCConfigError(f"privacy.{name} must be keep, hash or drop, got {value!r}")
            object.__setattr__(self, name, mode)
        if not isinstance(self.key_env, str) or not _VARIABLE_NAME.fullmatch(self.key_env.strip()):
            raise SMSCConfigError(
                f"privacy.key_env must be the name of an environment variable (such as {DEFAULT_KEY_ENV}), "
                f"got {self.key_env!r}"
            )
        object.__setattr__(self, "key_env", self.key_env.strip())

    @classmethod
    def coerce(cls, value: Privacy | Mapping[str, Any] | None) -> Privacy:
        """A :class:`Privacy` from itself, a mapping of its settings (``{"phone": "hash"}``) or ``None``
        (everything kept)."""
        if value is None:
            return cls()
        if isinstance(value, Privacy):
            return value
        if not isinstance(value, Mapping):
            raise SMSCConfigError(
                f"privacy must be a Privacy or a mapping such as {{'phone': 'hash', 'message': 'drop'}}, "
                f"got {type(value).__name__}"
            )
        unknown = [k for k in value if k not in _SETTINGS]
        if unknown:
            raise SMSCConfigError(
                f"privacy.{unknown[0]} is not a setting: give phone, message and/or key_env"
            )
        return cls(**dict(value))

    @property
    def modes(self) -> dict[str, str]:
        """Each personal column's mode, e.g. ``{"phone": "hash", "message": "drop"}``."""
        return {name: getattr(self, name) for name in PERSONAL_COLUMNS}

    @property
    def needs_key(self) -> bool:
        return HASH in self.modes.values()

    def resolve(self, environ: Mapping[str, str] | None = None) -> PrivacyFilter:
        """The filter a run applies to its pages, with the key read now from ``environ`` (default
        ``os.environ``). Call it when the run starts, before any request.

        Raises:
            SMSCConfigError: something is hashed and the key variable is unset, empty or too short; the
                message names the variable (never its value).
        """
        if not self.needs_key:
            return PrivacyFilter(self, None)
        hashed = ", ".join(f"privacy.{n}" for n, m in self.modes.items() if m == HASH)
        raw = (os.environ if environ is None else environ).get(self.key_env, "")
        if not raw.strip():
            raise SMSCConfigError(
                f"{hashed} is hash but the environment variable {self.key_env} (the HMAC key) is not set: set it "
                f"to a secret of at least {MIN_KEY_LENGTH} characters and keep it the same across runs, so "
                "equal values keep equal hashes"
            )
        if len(raw) < MIN_KEY_LENGTH:
            raise SMSCConfigError(
                f"the environment variable {self.key_env} (the HMAC key for {hashed}) holds {len(raw)} "
                f"characters; use a secret of at least {MIN_KEY_LENGTH}"
            )
        return PrivacyFilter(self, raw.encode("utf-8"))

    def describe(self, column: str) -> str | None:
        """What the setting does to ``column``, for its description; ``None`` when it is kept as is."""
        mode = self.modes.get(column, KEEP)
        if mode == HASH:
            return f"Stored as keyed SHA-256 (HMAC) hex (privacy: hash, key from ${self.key_env}); NULL stays NULL."
        if mode == DROP:
            return "Not stored (privacy: drop): always NULL."
        return None

    def columns(self, columns: Sequence[Column]) -> tuple[Column, ...]:
        """``columns`` with :meth:`describe` appended to the description of each personal column."""
        out = []
        for c in columns:
            note = self.describe(c.name)
            if c.name == "crc" and self.message != KEEP:
                note = "Not stored while the message is not kept (a checksum of the text): always NULL."
            out.append(dataclasses.replace(c, description=f"{c.description} {note}") if note else c)
        return tuple(out)


@dataclass(frozen=True)
class PrivacyFilter:
    """A :class:`Privacy` with its key, for one run. Built by :meth:`Privacy.resolve`; holds the key in
    memory only (and never shows it: not in ``repr``, not in :attr:`record`)."""

    privacy: Privacy
    _key: bytes | None = field(repr=False)

    @property
    def record(self) -> dict[str, str]:
        """What the files record about how their personal columns were stored: the modes, and when
        something is hashed an id of the key (an HMAC of a fixed label, not the key), so a changed key is
        visible as a changed id."""
        record = dict(self.privacy.modes)
        if self._key is not None:
            record["key_id"] = hmac.new(self._key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]
        return record

    def apply(self, table: pa.Table) -> pa.Table:
        """``table`` with its personal columns stored as the setting says (same schema, same rows)."""
        for name, mode in self.privacy.modes.items():
            if mode == KEEP or name not in table.column_names:
                continue
            index = table.column_names.index(name)
            column = table.column(index)
            if mode == DROP:
                values: pa.Array = pa.nulls(len(column), column.type)
            else:
                assert self._key is not None
                values = _hmac_hex(column, self._key).cast(column.type)
            table = table.set_column(index, table.schema.field(index), values)
        if self.privacy.message != KEEP and "crc" in table.column_names:
            # SMSC's crc is a checksum of the text: for a known template it gives the text back.
            index = table.column_names.index("crc")
            table = table.set_column(index, table.schema.field(index), pa.nulls(table.num_rows, pa.string()))
        return table


def _hmac_hex(column: pa.ChunkedArray | pa.Array, key: bytes) -> pa.Array:
    """HMAC-SHA256 hex of each value; NULL stays NULL and an empty string stays empty. Each distinct value
    is hashed once (a page repeats few numbers, but texts repeat a lot)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    base = hmac.new(key, digestmod=hashlib.sha256)
    digests = []
    for value in encoded.dictionary.to_pylist():
        if value == "":
            digests.append("")
            continue
        h = base.copy()
        h.update(value.encode("utf-8"))
        digests.append(h.hexdigest())
    return pc.take(pa.array(digests, pa.string()), encoded.indices)


# -- masking for metadata ---------------------------------------------------------------------------------

def mask_address(value: str | None) -> str | None:
    """A phone number or e-mail address as metadata may show it: ``77011234567`` -> ``7701***4567``,
    ``anna@example.com`` -> ``a***@example.com``. At most four characters are shown at each end of a number,
    and at least three are hidden; a (hashed) digest is shortened the same way."""
    if value is None:
        return None
    text = str(value)
    if not text:
        return text
    if "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}***@{domain}"
    shown = max(0, min(4, (len(text) - 3) // 2))
    return f"{text[:shown]}***{text[len(text) - shown:]}" if shown else "***"


def mask_text(value: str | None, keep: int = 3) -> str | None:
    """A message text cut to its first ``keep`` characters and ``…`` (just ``…`` when it is that short)."""
    if value is None:
        return None
    text = str(value)
    return f"{text[:keep]}…" if len(text) > keep else "…"


def mask_table(table: pa.Table) -> pa.Table:
    """``table`` (a few rows for a preview) with every personal column it has masked."""
    maskers = {"phone": mask_address, "message": mask_text}
    for name, mask in maskers.items():
        if name in table.column_names:
            index = table.column_names.index(name)
            masked = pa.array([mask(v) for v in table.column(index).to_pylist()], pa.string())
            table = table.set_column(index, pa.field(name, pa.string()), masked)
    return table
