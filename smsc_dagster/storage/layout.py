"""Where one account's data lives: the one place that turns an account into paths, warehouse names and the
staging signature.

Without an account the layout is the original single-account one, so an existing store keeps working::

    {data_dir}/sms_history/date=YYYY-MM-DD/data.parquet     DuckDB schema smsc
    {data_dir}/.staging/...

With ``account="acme"`` everything of that account sits under its own folder and schema::

    {data_dir}/acme/sms_history/date=YYYY-MM-DD/data.parquet   DuckDB schema smsc_acme
    {data_dir}/acme/.staging/...

Every account of one ``data_dir`` shares ``{data_dir}/warehouse.duckdb``, where the schema ``smsc_all``
holds views that union the accounts' tables with an ``account`` column.

A small manifest, ``_smsc_store.json`` in the account's folder, records what the stored days were filed
with (partition zone, account name, and a hash of the SMSC host and login); a run with other settings is
refused before it spends a request, so a changed zone can never file one message into two days and another
login never writes into this account's days. (An API key is not compared: it may be rotated, or open the
same account as the login. Staging, which is resumed page by page, is matched on the full identity.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsc_dagster.core import Channel, SMSCConfigError, SMSCDataError, get_channel

from .partitions import PartitionStore

ACCOUNT_RE = re.compile(r"[a-z][a-z0-9_]*")
WAREHOUSE_FILE = "warehouse.duckdb"
DEFAULT_SCHEMA = "smsc"
UNION_SCHEMA = "smsc_all"
MANIFEST_FILE = "_smsc_store.json"
MANIFEST_FORMAT = 1


def check_account(account: object) -> str | None:
    """``account`` when it is ``None`` or a valid short name, else an :class:`SMSCConfigError`."""
    if account is None:
        return None
    if not isinstance(account, str) or not ACCOUNT_RE.fullmatch(account) or len(account) > 40:
        raise SMSCConfigError(
            f"account must be a short name of lowercase letters, digits and '_', starting with a letter "
            f"(pattern [a-z][a-z0-9_]*, at most 40 characters), got {account!r}"
        )
    return account


def identity_hash(account_id: str) -> str:
    """A short hash of an account identity (host and login, or host and API-key hash): it tells accounts
    apart in stored files without naming the login."""
    return hashlib.sha256(account_id.encode()).hexdigest()[:16]


def login_identity(account_id: str | None) -> str | None:
    """The hash of host and login when the identity is a login; ``None`` for an API key, which may be
    rotated or stand for the same account as a login, so it proves nothing about which account it opens."""
    if account_id is None or "|login:" not in account_id:
        return None
    return identity_hash(account_id)


@dataclass(frozen=True)
class Layout:
    """The storage of one account (or of the single, unnamed account) under ``data_dir``.

    Example:
        >>> layout = Layout("data", account="acme")
        >>> layout.store("sms").path(dt.date(2026, 11, 30))
        PosixPath('/…/data/acme/sms_history/date=2026-11-30/data.parquet')
        >>> layout.schema
        'smsc_acme'
    """

    data_dir: Path
    account: str | None = None

    def __init__(self, data_dir: str | os.PathLike[str], account: str | None = None) -> None:
        object.__setattr__(self, "data_dir", Path(data_dir).resolve())
        object.__setattr__(self, "account", check_account(account))

    # -- paths ------------------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The folder of this account's tables, staging and manifest."""
        return self.data_dir / self.account if self.account else self.data_dir

    def store(self, channel: str | Channel) -> PartitionStore:
        """The committed partitions of one channel's history."""
        return PartitionStore(self.root, get_channel(channel).table)

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    @property
    def spill_dir(self) -> Path:
        """Where the checks' DuckDB spills when a query outgrows its memory limit."""
        return self.staging_dir / "checks_spill"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file, one per ``data_dir``, shared by its accounts."""
        return self.data_dir / WAREHOUSE_FILE

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    def describe(self, channel: str | Channel) -> str:
        """Where a channel's partitions live, relative to ``data_dir`` (for descriptions and messages that
        must not carry machine paths)."""
        prefix = f"{self.account}/" if self.account else ""
        return f"<data_dir>/{prefix}{get_channel(channel).table}/date=YYYY-MM-DD/data.parquet"

    # -- warehouse names --------------------------------------------------------------------------------

    @property
    def schema(self) -> str:
        """This account's DuckDB schema: ``smsc`` without an account, ``smsc_<account>`` with one."""
        return f"{DEFAULT_SCHEMA}_{self.account}" if self.account else DEFAULT_SCHEMA

    def table_name(self, table: str) -> str:
        """A qualified warehouse name such as ``smsc_acme.delivery_daily``."""
        return f"{self.schema}.{table}"

    # -- staging ----------------------------------------------------------------------------------------

    def staging_signature(
        self, *, channel: str | Channel, account_id: str, api_start: str, api_end: str, timezone: str
    ) -> dict[str, Any]:
        """What must match for a run to resume staging an earlier run left behind: the channel, the SMSC
        identity (host and login, or host and API-key hash — hashed, never the secret), the request window
        and the partitions' zone."""
        return {
            "account": self.account,
            "identity": identity_hash(account_id),
            "channel": get_channel(channel).name,
            "api_start": api_start,
            "api_end": api_end,
            "timezone": timezone,
        }

    # -- manifest ---------------------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        """What the stored days were filed with, or ``None`` for a store that has none yet."""
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise SMSCDataError(f"{self._where()}/{MANIFEST_FILE} is not valid JSON ({exc}); restore or delete it") from None

    def check_manifest(self, *, timezone: str, account_id: str | None = None) -> None:
        """Refuse settings that would misfile what is stored.

        Raises:
            SMSCConfigError: the stored days were filed in another zone, for another account name, or read
                from another SMSC identity (when ``account_id`` is given).
        """
        saved = self.read_manifest()
        if saved is None:
            return
        where = self._where()
        if saved.get("timezone") != timezone:
            raise SMSCConfigError(
                f"timezone is {timezone!r} but the days stored in {where} were filed in "
                f"{saved.get('timezone')!r}: re-reading a day in another zone would store its messages twice. "
                f"Keep timezone={saved.get('timezone')!r}, or point data_dir at a new directory for "
                f"{timezone!r} (and re-run the backfill there)."
            )
        if saved.get("account") != self.account:
            raise SMSCConfigError(
                f"account is {self.account!r} but {where} belongs to account {saved.get('account')!r}"
            )
        stored_identity, identity = saved.get("login_identity"), login_identity(account_id)
        if stored_identity and identity and stored_identity != identity:
            raise SMSCConfigError(
                f"the SMSC login of account {self.account or '(default)'} (with its host) is not the one {where} "
                f"was read with: refusing to mix two SMSC accounts in one store. Use the same login, or another "
                f"account name or data_dir for this one."
            )

    def claim(self, *, timezone: str, account_id: str) -> None:
        """Record (once) the zone and identity this store is filed with; check them when already recorded."""
        self.check_manifest(timezone=timezone, account_id=account_id)
        saved = self.read_manifest()
        identity = login_identity(account_id)
        if saved is not None and (saved.get("login_identity") or identity is None):
            return
        manifest = {
            "format": MANIFEST_FORMAT,
            "account": self.account,
            "timezone": timezone,
            "login_identity": identity,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{MANIFEST_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, self.manifest_path)

    def _where(self) -> str:
        return f"<data_dir>/{self.account}" if self.account else "<data_dir>"
