"""The Dagster resource: configuration of one SMSC account, and a factory for its client."""

from __future__ import annotations

import logging
import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from pydantic import Field

from smsc_dagster.core import Clock, SMSCClient, clock_from_env, credentials_problem, validate_base_url


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
        description="SQLite file of the request-budget ledger shared by all processes. Default: "
        "$DAGSTER_HOME/smsc_budget.sqlite3.",
    )

    @classmethod
    def from_env(cls) -> SMSCResource:
        """The resource configured from ``SMSC_API_KEY`` or ``SMSC_LOGIN``/``SMSC_PASSWORD`` (read when a run
        starts, never stored), ``SMSC_BASE_URL`` and ``SMSC_API_TIMEZONE``."""
        if os.environ.get("SMSC_API_KEY"):
            creds: dict[str, Any] = {"api_key": dg.EnvVar("SMSC_API_KEY")}
        elif os.environ.get("SMSC_LOGIN") or os.environ.get("SMSC_PASSWORD"):
            creds = {"login": dg.EnvVar("SMSC_LOGIN"), "password": dg.EnvVar("SMSC_PASSWORD")}
        else:
            # Nothing set where the code location loads: it still loads (the UI works), and a run fails at
            # its start with a message that names both ways to give credentials.
            creds = {}
        return cls(
            **creds,
            base_url=os.environ.get("SMSC_BASE_URL") or "https://smsc.kz",
            api_timezone=os.environ.get("SMSC_API_TIMEZONE") or "Europe/Moscow",
            budget_path=os.environ.get("SMSC_BUDGET_PATH") or None,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail when the run starts, with the fix in the message, not at the first request.
        self.validate()

    def validate(self) -> None:
        """Raise ``dagster.DagsterInvalidConfigError``-style errors for a configuration that cannot work."""
        problem = credentials_problem(login=self.login, password=self.password, api_key=self.api_key)
        if problem:
            hint = "" if "not both" in problem else (
                ". Set SMSC_API_KEY, or SMSC_LOGIN and SMSC_PASSWORD, in the environment of the Dagster processes."
            )
            raise dg.DagsterInvariantViolationError(f"SMSCResource: {problem}{hint}")
        try:
            validate_base_url(self.base_url)
        except ValueError as exc:
            raise dg.DagsterInvariantViolationError(f"SMSCResource: {exc}") from None
        try:
            ZoneInfo(self.api_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise dg.DagsterInvariantViolationError(
                f"SMSCResource: api_timezone {self.api_timezone!r} is not an IANA time zone"
            ) from None
        for name in ("requests_per_hour", "identical_per_minute"):
            if getattr(self, name) < 1:
                raise dg.DagsterInvariantViolationError(f"SMSCResource: {name} must be at least 1")

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
            requests_per_hour=self.requests_per_hour,
            identical_per_minute=self.identical_per_minute,
            clock=clock or clock_from_env(),
            logger=logger,
        )
