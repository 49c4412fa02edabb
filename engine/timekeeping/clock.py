"""The engine's one source of "now": real time in production, a movable clock in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 - swapped by tests


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return _now()


class FrozenClock:
    """A clock that only moves when told to; install with ``use(clock)``."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> datetime:
        self.at += delta
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


def use(clock: Callable[[], datetime] | None) -> None:
    """Install a clock (``None`` restores real time)."""
    global _now  # noqa: PLW0603 - the clock is process-wide on purpose, like time itself
    _now = clock if clock is not None else (lambda: datetime.now(UTC))
