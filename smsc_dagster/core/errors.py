"""The exceptions a caller can catch: one hierarchy rooted at :class:`SMSCError`.

SMSC reports errors inside HTTP 200 bodies (``{"error": ..., "error_code": N}``); the client turns each code
into its own class so callers can react to, say, a blocked IP differently from a typo in a parameter.
"""

from __future__ import annotations


class SMSCError(Exception):
    """Base class of every error this package raises about the SMSC API.

    Attributes:
        code: SMSC's ``error_code`` when the server sent one, else ``None``.
        attempts: how many HTTP requests were made for the failing call.
    """

    def __init__(self, message: str, *, code: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.attempts = attempts


class SMSCParameterError(SMSCError):
    """Error 1: the server rejected a parameter. Retrying the same request cannot help."""


class SMSCAuthError(SMSCError):
    """Error 2: wrong login/password or API key, or an IP not on the account's allow-list.

    Never retried: five authentication failures in 30 minutes block the IP for 30 minutes.
    """


class SMSCBlockedError(SMSCError):
    """Error 4: SMSC has temporarily blocked this IP. Retrying extends the block."""


class SMSCRateLimitError(SMSCError):
    """Error 9: too many requests, and waiting within the retry limits did not clear it."""


class SMSCResponseError(SMSCError):
    """The body is not what the API documents: an HTML page, truncated or malformed JSON, an unexpected shape.

    Attributes:
        excerpt: the start of the offending body, with credentials removed.
        retryable: ``True`` when the body looks like a transient proxy or transport fault (HTML page,
            unparseable JSON) rather than a well-formed answer of an unexpected shape.
    """

    def __init__(
        self,
        message: str,
        *,
        excerpt: str = "",
        retryable: bool = False,
        code: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, code=code, attempts=attempts)
        self.excerpt = excerpt
        self.retryable = retryable


class SMSCUnavailableError(SMSCError):
    """The API could not be reached (connection failure, timeout, HTTP 5xx) within the retry limits."""


class SMSCBudgetError(SMSCError):
    """The local request budget cannot be used (for example its ledger file is not writable)."""


# Error codes as documented; anything else becomes a plain SMSCError carrying the code.
ERROR_CLASSES: dict[int, type[SMSCError]] = {
    1: SMSCParameterError,
    2: SMSCAuthError,
    4: SMSCBlockedError,
    9: SMSCRateLimitError,
}


class SMSCConfigError(SMSCError, ValueError):
    """A setting that cannot work; the message names the setting and what to do. Raised before any request
    is spent."""


class SMSCDataError(SMSCError, ValueError):
    """Data the server sent, or data already stored, that would be lost, duplicated or misfiled if the run
    went on; the message names the row (``int_id``), the field and the value, or the stored setting."""
