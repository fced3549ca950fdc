"""Injectable clocks: the request budget, retries and the simulator all read time through one of these,
so tests can run an hour of API traffic in seconds."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the budget, the client and the simulator need of time."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Wall-clock time; the default everywhere outside tests."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that only moves when someone sleeps on it or calls :meth:`advance`.

    Thread-safe, so a client and an in-process simulator can share one instance.

    Example:
        >>> clock = FakeClock(1_700_000_000)
        >>> clock.sleep(3600)
        >>> clock.now()
        1700003600.0
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = float(time.time() if start is None else start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


class ScaledClock:
    """Real time run ``speed`` times faster, counted from a fixed ``origin``.

    Every process that builds a ``ScaledClock`` with the same ``speed`` and ``origin`` agrees on the time,
    which is what a test of two processes sharing one request budget needs.

    Example:
        >>> clock = ScaledClock(speed=720, origin=time.time())  # an hour passes in five seconds
    """

    def __init__(self, speed: float, origin: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"ScaledClock speed must be positive, got {speed!r}")
        self.speed = float(speed)
        self.origin = float(origin)
        self.start = float(origin if start is None else start)

    def now(self) -> float:
        return self.start + (time.time() - self.origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self.speed!r}, origin={self.origin!r}, start={self.start!r})"


CLOCK_SPEED_ENV = "SMSC_CLOCK_SPEED"
CLOCK_ORIGIN_ENV = "SMSC_CLOCK_ORIGIN"
CLOCK_START_ENV = "SMSC_CLOCK_START"


def clock_from_env() -> Clock:
    """The clock a process should use: a :class:`ScaledClock` when ``SMSC_CLOCK_SPEED`` and
    ``SMSC_CLOCK_ORIGIN`` (optionally ``SMSC_CLOCK_START``) are set — how tests speed up Dagster's own run processes, which they cannot hand
    a clock object — else the system clock."""
    import os

    speed = os.environ.get(CLOCK_SPEED_ENV)
    if not speed:
        return SystemClock()
    origin = os.environ.get(CLOCK_ORIGIN_ENV)
    if not origin:
        raise ValueError(f"{CLOCK_SPEED_ENV} is set but {CLOCK_ORIGIN_ENV} is not")
    start = os.environ.get(CLOCK_START_ENV)
    return ScaledClock(speed=float(speed), origin=float(origin), start=float(start) if start else None)
