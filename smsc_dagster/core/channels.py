"""The channels SMSC keeps a history of: one record per channel, used everywhere a channel is named."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    """One history endpoint of SMSC.

    Attributes:
        name: the short name users configure (``"sms"``, ``"email"``).
        format: the ``format`` parameter of ``get_messages`` that selects it.
        table: the history table (and folder) its rows are stored in.
        label: how people write it in a sentence.
    """

    name: str
    format: int
    table: str
    label: str


SMS = Channel("sms", 0, "sms_history", "SMS")
EMAIL = Channel("email", 8, "email_history", "e-mail")
CHANNELS: dict[str, Channel] = {c.name: c for c in (SMS, EMAIL)}


def get_channel(name: str | Channel) -> Channel:
    """The :class:`Channel` called ``name``; a ``ValueError`` naming the valid ones otherwise."""
    if isinstance(name, Channel):
        return name
    try:
        return CHANNELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"channel must be one of {sorted(CHANNELS)}, got {name!r}") from None


def parse_channels(value: str | Iterable[str | Channel], *, setting: str = "channels") -> tuple[Channel, ...]:
    """A non-empty tuple of distinct channels from ``"sms,email"`` or a sequence of names.

    Raises:
        ValueError: naming ``setting`` when the value is empty or names an unknown channel.
    """
    items = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    names = [i if isinstance(i, str) else getattr(i, "name", i) for i in items if i != ""]
    unknown = [n for n in names if n not in CHANNELS]
    if unknown or not names:
        raise ValueError(
            f"{setting} must be a non-empty list of {', '.join(sorted(CHANNELS))} (comma-separated), got {value!r}"
        )
    seen: dict[str, Channel] = {}
    for n in names:
        seen.setdefault(n, CHANNELS[n])
    return tuple(seen.values())
