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
A store written before the manifest existed has none: its zone is read from its newest rows (each row has
``sent_at`` and its local ``date``), checked the same way, and recorded on the next run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import uuid
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smsc_dagster.core import CHANNELS, Channel, SMSCConfigError, SMSCDataError, get_channel

from .contract import local_dates
from .filesystem import RemotePath, StorePath, arrow_file, store_root
from .partitions import PartitionStore

ACCOUNT_RE = re.compile(r"[a-z][a-z0-9_]*")
WAREHOUSE_FILE = "warehouse.duckdb"
DEFAULT_SCHEMA = "smsc"
UNION_SCHEMA = "smsc_all"
MANIFEST_FILE = "_smsc_store.json"
MANIFEST_FORMAT = 1
# Without a manifest, the zone is read from the newest non-empty of this many stored days of each channel.
STORED_ZONE_PROBE_DAYS = 31
# Named first when a legacy store's rows fit several zones of one offset.
PREFERRED_ZONES = ("Asia/Almaty", "Europe/Moscow", "UTC")


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

    data_dir: StorePath
    account: str | None = None

    def __init__(self, data_dir: str | os.PathLike[str] | RemotePath, account: str | None = None) -> None:
        object.__setattr__(self, "data_dir", store_root(data_dir))
        object.__setattr__(self, "account", check_account(account))

    # -- paths ------------------------------------------------------------------------------------------

    @property
    def root(self) -> StorePath:
        """The folder of this account's tables, staging and manifest."""
        return self.data_dir / self.account if self.account else self.data_dir

    def store(self, channel: str | Channel) -> PartitionStore:
        """The committed partitions of one channel's history."""
        return PartitionStore(self.root, get_channel(channel).table)

    @property
    def staging_dir(self) -> StorePath:
        return self.root / ".staging"

    @property
    def spill_dir(self) -> Path:
        """Where the checks' DuckDB spills when a query outgrows its memory limit (always a local folder: in
        the system's temporary directory when ``data_dir`` is in an object store)."""
        if isinstance(self.data_dir, RemotePath):
            return Path(tempfile.gettempdir()) / "smsc_dagster" / "checks_spill"
        return self.staging_dir / "checks_spill"

    @property
    def warehouse_path(self) -> StorePath:
        """The DuckDB file, one per ``data_dir``, shared by its accounts (in an object store, the object a
        writer downloads and uploads again, see :class:`~smsc_dagster.storage.warehouse.Warehouse`)."""
        return self.data_dir / WAREHOUSE_FILE

    @property
    def manifest_path(self) -> StorePath:
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
        except (FileNotFoundError, NotADirectoryError):
            return None  # (not a directory: claim() reports the data_dir that cannot be written)
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
            # No manifest: a new store, or one written by a version that kept none. The stored rows tell
            # which zone their days were filed in; refuse before a request when it is not this one.
            self._check_stored_zone(timezone)
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
        """Record (once) the zone and identity this store is filed with; check them when already recorded.

        Called before a run's first request, so it is also where an unusable ``data_dir`` is reported.

        Raises:
            SMSCConfigError: settings that would misfile the stored days (see :meth:`check_manifest`), or a
                ``data_dir`` that cannot be written.
        """
        self.check_manifest(timezone=timezone, account_id=account_id)
        saved = self.read_manifest()
        identity = login_identity(account_id)
        record = saved is None or (identity is not None and not saved.get("login_identity"))
        manifest = {
            "format": MANIFEST_FORMAT, "account": self.account, "timezone": timezone, "login_identity": identity,
        }
        # Written every run (and moved into place when something new is recorded): the probe that data_dir is
        # writable, before the run spends a request it could not store.
        tmp = self.root / f".{MANIFEST_FILE}.{uuid.uuid4().hex}.tmp"
        content = json.dumps(manifest if record else saved, indent=1, sort_keys=True)
        if isinstance(tmp, RemotePath):
            # An object store: the object appears whole or not at all, so no temporary object; the probe is
            # a write of the manifest itself (the same content when nothing new is recorded).
            try:
                self.manifest_path.write_text(content)
            except OSError as exc:
                raise SMSCConfigError(
                    f"data_dir {str(self.data_dir)!r} is not writable ({_short_os_error(exc)}): check the bucket "
                    f"name, the AWS credentials and the endpoint (AWS_ENDPOINT_URL) of the Dagster processes."
                ) from None
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                tmp.write_text(content)
                if record:
                    os.replace(tmp, self.manifest_path)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise SMSCConfigError(
                f"data_dir {str(self.data_dir)!r} is not writable ({exc.strerror or type(exc).__name__}): "
                f"point data_dir at a directory the Dagster processes can create and write to."
            ) from None

    def _check_stored_zone(self, timezone: str) -> None:
        """Without a manifest: check that the newest stored rows of each channel are dated by their local
        day in ``timezone`` (the rows carry both ``sent_at`` and ``date``), else an :class:`SMSCConfigError`."""
        for channel in CHANNELS.values():
            store = self.store(channel)
            for day in reversed(store.days()[-STORED_ZONE_PROBE_DAYS:]):
                try:
                    table = pq.read_table(arrow_file(store.path(day)), columns=["sent_at", "date"])
                except (OSError, pa.ArrowException):
                    continue  # a damaged file is the checks' business (date_matches_partition...), not the load's
                if not table.num_rows:
                    continue  # an empty day proves nothing; look at the one before
                sent_at = table["sent_at"].combine_chunks().cast(pa.timestamp("us", tz="UTC"))
                dated = table["date"].combine_chunks()
                misdated = pc.sum(pc.cast(pc.not_equal(local_dates(sent_at, timezone), dated), pa.int64())).as_py()
                if misdated:
                    stored, named = _fitting_zones(sent_at, dated, day)
                    keep = f"timezone={named!r}" if named else "the timezone the store was written in"
                    raise SMSCConfigError(
                        f"timezone is {timezone!r} but the days stored in {self._where()} were filed in "
                        f"{stored}: {misdated} of the {table.num_rows} rows of {channel.table} {day} fall on "
                        f"another local day in {timezone!r}. (This store has no {MANIFEST_FILE}: an earlier "
                        f"version wrote it.) Re-reading a day in another zone would store its messages twice. "
                        f"Keep {keep}, or point data_dir at a new directory for "
                        f"{timezone!r} (and re-run the backfill there)."
                    )
                break

    def _where(self) -> str:
        return f"<data_dir>/{self.account}" if self.account else "<data_dir>"


def _short_os_error(exc: OSError) -> str:
    """An object store's error without request ids or host names: its first clause."""
    text = str(exc).split(". Detail", 1)[0].split("; Details", 1)[0]
    return text[:160]


def _fitting_zones(sent_at: pa.Array, dated: pa.Array, day: dt.date) -> tuple[str, str | None]:
    """Which zones rows dated ``dated`` at ``sent_at`` can have been filed in, for a message (``"'Asia/Almaty'
    (or another zone at UTC+05:00)"``, or ``'another zone'`` when no IANA zone fits them all), and the zone
    it names."""
    fits = []
    for name in sorted(zoneinfo.available_timezones()):
        if name.startswith(("posix/", "right/", "Etc/")) or ("/" not in name and name != "UTC"):
            continue  # aliases of the zones below
        try:
            if pc.all(pc.equal(local_dates(sent_at, name), dated)).as_py():
                fits.append(name)
        except (pa.ArrowInvalid, zoneinfo.ZoneInfoNotFoundError):
            continue
    if not fits:
        return "another zone", None
    named = next((z for z in PREFERRED_ZONES if z in fits), fits[0])
    noon = dt.datetime.combine(day, dt.time(12))
    offsets = sorted({noon.replace(tzinfo=zoneinfo.ZoneInfo(z)).utcoffset() for z in fits})
    shown = "..".join(_utc_offset(o) for o in (offsets[0], offsets[-1])[: 1 if len(offsets) == 1 else 2])
    return (f"{named!r} (or another zone at {shown})" if len(fits) > 1 else repr(named)), named


def _utc_offset(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
