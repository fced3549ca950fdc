"""Turning SMSC response bytes into rows or exceptions.

Kept apart from the HTTP code so the same parsing serves the client, the benchmarks and anyone holding
recorded bodies. SMSC answers errors with HTTP 200, defaults to windows-1251, and sometimes a proxy in front
of it answers with an HTML page: all of that is sorted out here.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from typing import Any

from .errors import ERROR_CLASSES, SMSCError, SMSCResponseError

# The charset SMSC uses when the request names none and, per recorded responses, what its header says then.
DEFAULT_CHARSET = "windows-1251"
EXCERPT_CHARS = 200
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def charset_of(content_type: str | None) -> str:
    """The charset named by a ``Content-Type`` header, or SMSC's default when it names none we know."""
    match = _CHARSET_RE.search(content_type or "")
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return DEFAULT_CHARSET


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def excerpt(text: str, secrets: Iterable[str | None] = ()) -> str:
    """A short single-line start of a body for an error message, secrets removed."""
    short = " ".join(text[: EXCERPT_CHARS * 2].split())[:EXCERPT_CHARS]
    return redact(short, secrets)


def decode_body(body: bytes, content_type: str | None, secrets: Iterable[str | None] = ()) -> str:
    """Decode a response body by the charset its header names."""
    charset = charset_of(content_type)
    try:
        return body.decode(charset)
    except UnicodeDecodeError as exc:
        text = body.decode(charset, errors="replace")
        raise SMSCResponseError(
            f"SMSC response is not valid {charset}: {exc.reason}",
            excerpt=excerpt(text, secrets),
            retryable=True,
        ) from None


def parse_json_body(text: str, secrets: Iterable[str | None] = ()) -> Any:
    """Parse a fmt=3 body, raising the matching :class:`SMSCError` for error objects and for bodies that are
    not JSON at all (an HTML page, a truncated answer)."""
    secrets = tuple(secrets)
    stripped = text.lstrip()
    if stripped[:1] not in ("[", "{"):
        kind = "an HTML page" if stripped[:1] == "<" else "not JSON"
        raise SMSCResponseError(
            f"SMSC answered with {kind} instead of JSON: {excerpt(text, secrets)!r}",
            excerpt=excerpt(text, secrets),
            retryable=True,
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SMSCResponseError(
            f"SMSC answered with malformed or truncated JSON ({exc.msg} at char {exc.pos} of {len(text)}): "
            f"{excerpt(text, secrets)!r}",
            excerpt=excerpt(text, secrets),
            retryable=True,
        ) from None
    if isinstance(data, dict) and "error_code" in data:
        raise error_from_body(data, secrets)
    return data


def error_from_body(data: dict[str, Any], secrets: Iterable[str | None] = ()) -> SMSCError:
    """The exception for an SMSC error object ``{"error": ..., "error_code": N}``."""
    try:
        code = int(data["error_code"])
    except (TypeError, ValueError):
        return SMSCResponseError(
            f"SMSC error object with a non-numeric error_code: {excerpt(json.dumps(data, ensure_ascii=False), secrets)!r}",
            excerpt=excerpt(json.dumps(data, ensure_ascii=False), secrets),
        )
    description = redact(str(data.get("error", "")), secrets)
    cls = ERROR_CLASSES.get(code, SMSCError)
    return cls(f"SMSC error {code}: {description}", code=code)


def int_id_of(row: Any) -> int | None:
    """A row's ``int_id`` as an int; SMSC sends it as a number or a numeric string. ``None`` when absent or
    not numeric."""
    if not isinstance(row, dict):
        return None
    value = row.get("int_id")
    if type(value) is int:  # the common cases first: called once per row of every page
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
