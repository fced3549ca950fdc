"""``SMSCAccountComponent``: one SMSC account declared in YAML, for projects built with ``dg``.

Example ``defs/acme/defs.yaml``:

.. code-block:: yaml

    type: smsc_dagster.SMSCAccountComponent
    attributes:
      account: acme
      api_key_env: ACME_SMSC_API_KEY        # the variable's *name*: read when a run starts, never stored
      start_date: "2026-01-01"
      timezone: Asia/Almaty
      channels: [sms, email]
      data_dir: /srv/smsc
      privacy: {phone: hash, message: drop}   # HMAC key from SMSC_PRIVACY_KEY (a name, as below)

Credentials are given as the *names* of environment variables (``api_key_env``, or ``login_env`` and
``password_env``) and reach the resource as :class:`dagster.EnvVar`. A ``{{ env.X }}`` template would be
resolved to the plain secret when the YAML loads and end up in the code location's snapshot, which the
webserver shows; the component refuses attributes that hold a secret's value.
"""

from __future__ import annotations

import re

import dagster as dg
from dagster.components.component_scaffolding import scaffold_component
from pydantic import ConfigDict, Field, model_validator

from smsc_dagster.storage import Privacy

from .automation import SCHEDULE_CRON
from .builder import build_smsc_definitions
from .resource import SMSCResource


class SMSCAccountScaffolder(dg.Scaffolder):
    """``dg scaffold defs smsc_dagster.SMSCAccountComponent acme`` writes a ``defs.yaml`` for account
    ``acme`` whose credentials come from ``ACME_SMSC_API_KEY``."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        account = re.sub(r"[^a-z0-9_]", "_", request.target_path.name.lower()).lstrip("_0123456789") or "account"
        scaffold_component(
            request,
            {
                "account": account,
                "api_key_env": f"{account.upper()}_SMSC_API_KEY",
                "start_date": "2026-01-01",
                "timezone": "Asia/Almaty",
                "channels": ["sms"],
                "data_dir": "data",
            },
        )


@dg.scaffold_with(SMSCAccountScaffolder)
class SMSCAccountComponent(dg.Component, dg.Model, dg.Resolvable):
    """One SMSC account's history assets, delivery tables, checks, jobs, schedule and sensor, from YAML.

    Builds exactly what :func:`build_smsc_definitions` builds for the same settings; several components
    (one per account) live side by side in one code location.
    """

    # A value given where a variable name belongs may be a secret: never echo inputs into errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    account: str = Field(description="Short name of the account ([a-z][a-z0-9_]*): keys, jobs, paths and schema derive from it.")
    start_date: str = Field(description="First partition, YYYY-MM-DD.")
    api_key_env: str | None = Field(default=None, description="Name of the environment variable holding the API key.")
    login_env: str | None = Field(default=None, description="Name of the environment variable holding the login.")
    password_env: str | None = Field(
        default=None, description="Name of the environment variable holding the password (or its MD5)."
    )
    base_url: str = Field(default="https://smsc.kz", description="SMSC API host (https://smsc.kz, https://smsc.ru...).")
    api_timezone: str = Field(default="Europe/Moscow", description="The zone the SMSC server reads start/end dates in.")
    timezone: str = Field(default="Asia/Almaty", description="The zone whose local days are the partitions.")
    channels: list[str] = Field(default_factory=lambda: ["sms"], description="sms and/or email.")
    lookback_days: int = Field(default=3, description="Days the daily schedule re-reads while statuses settle.")
    data_dir: str = Field(default="data", description="Where Parquet partitions and warehouse.duckdb live.")
    schedule: str = Field(default=SCHEDULE_CRON, description="Cron of the daily refresh, in `timezone`.")
    settle_after_hours: float = Field(
        default=24.0,
        description="Message lifetime: a day read this long after it ended, with nothing pending, is settled and "
        "no longer re-read by the daily refresh.",
    )
    key_prefix: list[str] = Field(default_factory=lambda: ["smsc"], description="Asset key prefix.")
    budget_path: str | None = Field(default=None, description="SQLite file of the request-budget ledger.")
    privacy: dict[str, str] | None = Field(
        default=None,
        description=(
            "What the history stores of recipients and texts: phone and message each keep (default), hash "
            "(keyed SHA-256 hex; the key is read from the environment variable named by key_env, default "
            "SMSC_PRIVACY_KEY, when a run starts) or drop (NULL), e.g. {phone: hash, message: drop}."
        ),
    )

    @model_validator(mode="after")
    def _credentials_by_name(self) -> SMSCAccountComponent:
        names = {"api_key_env": self.api_key_env, "login_env": self.login_env, "password_env": self.password_env}
        for attribute, value in names.items():
            if value is not None and not _looks_like_variable_name(value):
                raise ValueError(
                    f"{attribute} must be the *name* of an environment variable (such as ACME_SMSC_API_KEY), not "
                    "its value: a value resolved from {{ env.X }} would be stored in the code location's snapshot"
                )
        if self.api_key_env and (self.login_env or self.password_env):
            raise ValueError("give either api_key_env, or login_env and password_env, not both")
        if not self.api_key_env and not (self.login_env and self.password_env):
            raise ValueError("credentials missing: give api_key_env, or login_env and password_env (variable names)")
        Privacy.coerce(self.privacy)  # an SMSCConfigError (a ValueError) naming the setting
        return self

    def resource(self) -> SMSCResource:
        if self.api_key_env:
            creds = {"api_key": dg.EnvVar(self.api_key_env)}
        else:
            creds = {"login": dg.EnvVar(self.login_env), "password": dg.EnvVar(self.password_env)}
        return SMSCResource(
            **creds, base_url=self.base_url, api_timezone=self.api_timezone, budget_path=self.budget_path
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_smsc_definitions(
            account=self.account,
            start_date=self.start_date,
            timezone=self.timezone,
            data_dir=self.data_dir,
            channels=self.channels,
            lookback_days=self.lookback_days,
            resource=self.resource(),
            key_prefix=self.key_prefix,
            schedule_cron=self.schedule,
            settle_after_hours=self.settle_after_hours,
            privacy=self.privacy,
        )


def _looks_like_variable_name(value: str) -> bool:
    return value.replace("_", "a").isalnum() and not value[:1].isdigit() and value.upper() == value
