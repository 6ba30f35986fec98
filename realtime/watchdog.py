"""The actuation-side command watchdog: no fresh command in time -> safe stop (hold).

Actuation calls :meth:`Watchdog.feed` with each valid command it receives and
:meth:`Watchdog.check` every control step. ``check`` returns ``True`` while
commands are fresh; ``False`` means *hold now* (the decision process died,
hung or the link is down). After a trip the watchdog resumes cleanly: it waits
for ``resume_after`` fresh commands in a row, each newer (higher ``seq`` from
the same source, or any seq from a new source) than the last one seen, so an
old command re-delivered after a reconnect cannot restart motion.

Time comes from an injected ``clock_ns`` (receive time on this host), so the
logic is tested in virtual time and works across hosts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from realtime.errors import ConfigError

__all__ = ["Watchdog", "WatchdogOptions", "WatchdogState"]


class WatchdogState(StrEnum):
    WAITING = "waiting"  # no command yet: hold
    OK = "ok"  # commands are fresh: act
    TRIPPED = "tripped"  # commands stopped coming: hold until a clean resume


@dataclass(frozen=True)
class WatchdogOptions:
    """``timeout_ms``: longest gap between fresh commands before a safe stop (a few
    decision periods, e.g. 250 ms at 16 Hz). ``resume_after``: fresh commands in a
    row needed to leave the tripped state."""

    timeout_ms: float = 250.0
    resume_after: int = 2

    def __post_init__(self) -> None:
        if not self.timeout_ms > 0:
            raise ConfigError(f"WatchdogOptions.timeout_ms: expected > 0, got {self.timeout_ms!r}")
        if not isinstance(self.resume_after, int) or self.resume_after < 1:
            raise ConfigError(
                f"WatchdogOptions.resume_after: expected an int >= 1, got {self.resume_after!r}"
            )


class Watchdog:
    def __init__(
        self,
        options: WatchdogOptions | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.options = options or WatchdogOptions()
        self.clock_ns = clock_ns
        self.state = WatchdogState.WAITING
        self.trips = 0
        self.resumes = 0
        self.stale_feeds = 0  # commands ignored because they were not newer
        self.last_fed_ns: int | None = None
        self.events: deque[tuple[int, str]] = deque(maxlen=256)  # (t_ns, "trip"/"resume")
        self._timeout_ns = int(self.options.timeout_ms * 1e6)
        self._last_key: tuple[str, int] | None = None
        self._streak = 0

    def feed(self, seq: int = 0, source: str = "") -> bool:
        """Record a fresh command; ``False`` if it was not newer than the last one."""
        now = self.clock_ns()
        if self._last_key is not None and seq:
            last_source, last_seq = self._last_key
            if source == last_source and seq <= last_seq:
                self.stale_feeds += 1
                return False
        if seq:
            self._last_key = (source, seq)
        gap_ok = self.last_fed_ns is not None and now - self.last_fed_ns <= self._timeout_ns
        self._streak = self._streak + 1 if gap_ok else 1
        self.last_fed_ns = now
        if self.state is WatchdogState.WAITING:
            self.state = WatchdogState.OK
        elif self.state is WatchdogState.TRIPPED and self._streak >= self.options.resume_after:
            self.state = WatchdogState.OK
            self.resumes += 1
            self.events.append((now, "resume"))
        return True

    def check(self) -> bool:
        """``True``: act on the latest command. ``False``: hold (safe stop)."""
        if self.state is WatchdogState.OK:
            assert self.last_fed_ns is not None
            now = self.clock_ns()
            if now - self.last_fed_ns > self._timeout_ns:
                self.state = WatchdogState.TRIPPED
                self.trips += 1
                self._streak = 0
                self.events.append((now, "trip"))
        return self.state is WatchdogState.OK

    def age_ms(self) -> float | None:
        """Time since the last fresh command, or ``None`` before the first."""
        if self.last_fed_ns is None:
            return None
        return (self.clock_ns() - self.last_fed_ns) / 1e6
