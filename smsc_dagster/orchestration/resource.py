"""The Dagster resource: configuration of one SMSC account, and a factory for its client."""

from __future__ import annotations

import logging
import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from pydantic import Field

from smsc_dagster.core import (
    Clock,
    SMSCBudgetError,
    SMSCClient,
    SMSCConfigError,
    clock_from_env,
    credentials_problem,
    ledger_url,
    validate_base_url,
)


class SMSCResource(dg.ConfigurableResource):
    """An SMSC.kz / SMSC.ru account whose message history the pipeline reads.

    Holds configuration only; :meth:`get_client` returns the :class:`SMSCClient` that does the work. Give
    either ``api_key`` or ``login`` and ``password``, from environment variables.

    Example:
        .. code-block:: python

            import dagster as dg
            from smsc_dagster import SMSCResource

            smsc = SMSCResource(
                login=dg.EnvVar("SMSC_LOGIN"),
                password=dg.EnvVar("SMSC_PASSWORD"),
            )
            with smsc.get_client() as client:
                print(client.get_currency())
    """

    login: str | None = Field(default=None, description="SMSC account login (used with `password`).")
    password: str | None = Field(
        default=None,
        repr=False,
        description="SMSC account password, or its lowercase MD5. Set it from an environment variable.",
    )
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="SMSC API key, instead of login and password. Set it from an environment variable.",
    )
    base_url: str = Field(
        default="https://smsc.kz",
        description="Base URL of the SMSC API (https://smsc.kz, https://smsc.ru, ...). Plain http is accepted "
        "only for loopback hosts such as the bundled simulator.",
    )
    api_timezone: str = Field(
        default="Europe/Moscow",
        description="Time zone in which the SMSC server reads the dd.mm.yyyy `start`/`end` dates of a history "
        "request. Partition windows are converted into it so that no message near midnight is missed.",
    )
    requests_per_hour: int = Field(
        default=30,
        description="History requests the account may make in any rolling hour (SMSC's limit is 30). Shared "
        "by every run on this machine through the budget ledger.",
    )
    identical_per_minute: int = Field(
        default=3, description="Identical history requests allowed in any rolling minute (SMSC's limit is 3)."
    )
    timeout_s: float = Field(default=60.0, description="Timeout of one HTTP request, in seconds.")
    max_retries: int = Field(
        default=5,
        description="Retries after a transient failure (connection error, timeout, HTTP 5xx, garbled body, "
        "error 9). Authentication errors and a blocked IP are never retried.",
    )
    budget_path: str | None = Field(
        default=None,
        description="SQLite file of the request-budget ledger shared by all processes on this machine. "
        "Default: $DAGSTER_HOME/smsc_budget.sqlite3. Give this or `budget_url`, not both.",
    )
    budget_url: str | None = Field(
        default=None,
        repr=False,
        description="Database URL of the request-budget ledger, for runs on several machines: "
        "postgresql://user:password@host:5432/db (tables are created if missing; admissions are serialised by "
        "a row lock). Set it from an environment variable (SMSC_BUDGET_URL): it holds a password. Give this "
        "or `budget_path`, not both.",
    )

    @classmethod
    def from_env(cls) -> SMSCResource:
        """The resource configured from ``SMSC_API_KEY`` or ``SMSC_LOGIN``/``SMSC_PASSWORD`` (read when a run
        starts, never stored), ``SMSC_BASE_URL`` and ``SMSC_API_TIMEZONE``."""
        # Only variables that are set become EnvVars (resolved when a run starts): with none, or only one of
        # login and password, the code location still loads (the UI works) and a run fails at its start,
        # before any request, with a message that names both ways to give credentials.
        if os.environ.get("SMSC_API_KEY"):
            creds: dict[str, Any] = {"api_key": dg.EnvVar("SMSC_API_KEY")}
        else:
            creds = {
                field: dg.EnvVar(var)
                for field, var in (("login", "SMSC_LOGIN"), ("password", "SMSC_PASSWORD"))
                if os.environ.get(var)
            }
        return cls(
            **creds,
            base_url=os.environ.get("SMSC_BASE_URL") or "https://smsc.kz",
            api_timezone=os.environ.get("SMSC_API_TIMEZONE") or "Europe/Moscow",
            budget_path=os.environ.get("SMSC_BUDGET_PATH") or None,
            # An EnvVar (resolved when a run starts), never the value: the URL holds the database password.
            budget_url=dg.EnvVar("SMSC_BUDGET_URL") if os.environ.get("SMSC_BUDGET_URL") else None,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail when the run starts, with the fix in the message, not at the first request.
        self.validate()

    def validate(self) -> None:
        """Check the configuration (credentials included, so only once ``EnvVar``s are resolved).

        Raises:
            SMSCConfigError: naming the setting (and, for credentials, the environment variables).
        """
        problem = credentials_problem(login=self.login, password=self.password, api_key=self.api_key)
        if problem:
            hint = "" if "not both" in problem else (
                ". Set SMSC_API_KEY, or SMSC_LOGIN and SMSC_PASSWORD, in the environment of the Dagster processes."
            )
            raise SMSCConfigError(f"SMSCResource: {problem}{hint}")
        self.validate_settings()

    def validate_settings(self) -> None:
        """Check the settings other than credentials; ``build_smsc_definitions`` calls it at load for the
        values given as plain strings (an ``EnvVar`` is checked when a run starts).

        Raises:
            SMSCConfigError: naming the setting.
        """
        if not isinstance(self.base_url, dg.EnvVar):
            try:
                validate_base_url(self.base_url)
            except ValueError as exc:
                raise SMSCConfigError(f"SMSCResource: {exc}") from None
        if not isinstance(self.api_timezone, dg.EnvVar):
            try:
                ZoneInfo(self.api_timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise SMSCConfigError(
                    f"SMSCResource: api_timezone {self.api_timezone!r} is not an IANA time zone such as "
                    f"'Europe/Moscow'"
                ) from None
        limits = {"requests_per_hour": 1, "identical_per_minute": 1, "max_retries": 0}
        for name, least in limits.items():
            value = getattr(self, name)
            if isinstance(value, int) and value < least:
                raise SMSCConfigError(f"SMSCResource: {name} must be at least {least}, got {value!r}")
        if isinstance(self.timeout_s, (int, float)) and not self.timeout_s > 0:
            raise SMSCConfigError(
                f"SMSCResource: timeout_s must be a positive number of seconds, got {self.timeout_s!r}"
            )
        self._validate_budget_settings()

    def _validate_budget_settings(self) -> None:
        """One ledger: ``budget_path`` or ``budget_url``, and a URL of a database the budget supports."""
        if self.budget_path and self.budget_url:
            raise SMSCConfigError(
                "SMSCResource: budget_path and budget_url are both set (SMSC_BUDGET_PATH / SMSC_BUDGET_URL): "
                "give one request-budget ledger, a SQLite file or a database URL"
            )
        if self.budget_url and not isinstance(self.budget_url, dg.EnvVar):
            try:
                ledger_url(self.budget_url)
            except SMSCBudgetError as exc:
                raise SMSCConfigError(f"SMSCResource: budget_url: {exc}") from None

    def get_client(self, *, clock: Clock | None = None, logger: logging.Logger | Any | None = None) -> SMSCClient:
        """A new :class:`SMSCClient` for this account.

        Args:
            clock: time source for waits (tests); default the system clock, or ``SMSC_CLOCK_SPEED``'s.
            logger: where the client logs progress and waits, e.g. ``context.log``.
        """
        self.validate()
        return SMSCClient(
            login=self.login or None,
            password=self.password or None,
            api_key=self.api_key or None,
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            budget_path=self.budget_path,
            budget_url=self.budget_url or None,
            requests_per_hour=self.requests_per_hour,
            identical_per_minute=self.identical_per_minute,
            clock=clock or clock_from_env(),
            logger=logger,
        )
