"""Progress of a long paging walk, so a user can tell a working 30-hour backfill from a stuck one.

At 30 requests an hour, 180 days at 5,000 messages a day take 30 hours. While the history asset pages,
:class:`WalkProgress` reports how far back the cursor has come (the oldest ``send_timestamp`` seen against the
range), the pages and rows so far, the requests left in this hour of the account's budget and an estimated
finish — in the run's log at a steady rhythm, and as observations of the asset that the UI shows (and plots)
on the asset's page.
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

# Report after the first page, then at least every REPORT_EVERY_S of the clock's time or REPORT_EVERY_PAGES
# pages, whichever comes first, and at the end.
REPORT_EVERY_S = 300.0
REPORT_EVERY_PAGES = 10
SECONDS_PER_REQUEST = 120.0  # 30 requests an hour


class WalkProgress:
    """Tracks one walk over ``[start_ts, end_ts)`` (the requested server days) newest first.

    Args:
        asset_key: the history asset the observations are about.
        start_ts: the range's first second (Unix).
        end_ts: the range's end (exclusive).
        clock: the client's clock (``now()``).
        requests_left: how many requests the account may still make in this rolling hour.
        log: the run's logger.
        emit: records an observation (``context.log_event``).
        label: names the walk in the log (``sms_history``).
    """

    def __init__(
        self,
        *,
        asset_key: dg.AssetKey,
        start_ts: float,
        end_ts: float,
        clock: Any,
        requests_left: Callable[[], int],
        log: Any,
        emit: Callable[[dg.AssetObservation], None],
        label: str,
    ) -> None:
        self.asset_key = asset_key
        self.start_ts, self.end_ts = float(start_ts), float(end_ts)
        self.clock = clock
        self.requests_left = requests_left
        self.log = log
        self.emit = emit
        self.label = label
        self.started = clock.now()
        self.pages = 0
        self.rows = 0
        self.oldest: float | None = None
        self._last_report_at: float | None = None
        self._last_report_pages = 0
        self.reports = 0

    @property
    def share(self) -> float:
        """How much of the range the walk has covered, 0..1 (by time, newest first)."""
        if self.oldest is None:
            return 0.0
        span = self.end_ts - self.start_ts
        return min(1.0, max(0.0, (self.end_ts - max(self.oldest, self.start_ts)) / span)) if span > 0 else 1.0

    def page(self, table: pa.Table) -> None:
        """Account for one staged page (its rows, in the history schema)."""
        self.pages += 1
        self.rows += table.num_rows
        if table.num_rows:
            oldest = pc.min(table["sent_at"]).value / 1_000_000
            self.oldest = oldest if self.oldest is None else min(self.oldest, oldest)
        now = self.clock.now()
        due = (
            self._last_report_at is None
            or now - self._last_report_at >= REPORT_EVERY_S
            or self.pages - self._last_report_pages >= REPORT_EVERY_PAGES
        )
        if due:
            self.report(now)

    def finish(self) -> None:
        """The walk reached the end of its range."""
        self.oldest = self.start_ts
        self.report(self.clock.now(), done=True)

    def estimate_finish(self, now: float) -> float | None:
        """When the walk should end: the pages still ahead (rows so far scaled to the range left, 1,000 a
        page) at the account's pace once this hour's remaining requests are spent."""
        share = self.share
        if share <= 0:
            return None
        if share >= 1:
            return now
        pages_ahead = max(1.0, self.pages * (1 - share) / share)
        free_now = max(0, self.requests_left())
        waiting = max(0.0, pages_ahead - free_now) * SECONDS_PER_REQUEST
        return now + waiting

    def report(self, now: float, *, done: bool = False) -> None:
        self._last_report_at, self._last_report_pages = now, self.pages
        self.reports += 1
        left = max(0, self.requests_left())
        eta = self.estimate_finish(now)
        cursor = dt.datetime.fromtimestamp(self.oldest if self.oldest is not None else self.end_ts, dt.timezone.utc)
        metadata: dict[str, dg.MetadataValue] = {
            "walk_progress": dg.MetadataValue.float(round(self.share, 4)),
            "walk_pages": dg.MetadataValue.int(self.pages),
            "walk_rows": dg.MetadataValue.int(self.rows),
            "walk_cursor_at": dg.MetadataValue.timestamp(cursor.timestamp()),
            "requests_left_this_hour": dg.MetadataValue.int(left),
            "walk_done": dg.MetadataValue.bool(done),
        }
        if eta is not None:
            metadata["estimated_finish"] = dg.MetadataValue.timestamp(eta)
        self.emit(dg.AssetObservation(asset_key=self.asset_key, metadata=metadata))
        finish = (
            dt.datetime.fromtimestamp(eta, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if eta is not None else "unknown"
        )
        self.log.info(
            f"{self.label}: {'done, ' if done else ''}{self.pages} pages, {self.rows} rows; cursor at "
            f"{cursor:%Y-%m-%d %H:%M} UTC, {self.share:.0%} of the range; {left} requests left this hour; "
            f"estimated finish {finish}"
        )
