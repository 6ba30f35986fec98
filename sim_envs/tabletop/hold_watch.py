"""How fast the arm stops when commands stop: measured by the actuation process.

Each time the actuator's watchdog trips (no fresh command for its timeout),
:class:`HoldWatch` records, from the receipt of the last fresh command, how long
until the hold was commanded (``hold_after_ms``: the watchdog's timeout plus at
most one actuation tick) and until the measured joint speeds were all under
``still_rad_s`` (``still_after_ms``: the arm actually stopped). The largest of
each over the run, the number of holds and of holds that never got still before
commands came back, go into the node's heartbeat counters
(:meth:`HoldWatch.counters`), which the supervisor's report keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.watchdog import Watchdog, WatchdogState

__all__ = ["HoldWatch"]


@dataclass
class HoldWatch:
    still_rad_s: float = 0.05
    holds: int = 0
    hold_after_ms_max: float = 0.0
    still_after_ms_max: float = 0.0
    never_still: int = 0  # holds that ended (commands came back) before the arm was still
    _holding: bool = False
    _still: bool = False
    _fed_ns: int = 0

    def update(self, watchdog: Watchdog, velocities_rad_s: np.ndarray, now_ns: int) -> None:
        """After each tick's :meth:`~sim_envs.tabletop.actuation.Actuator.update`;
        ``now_ns`` on the watchdog's clock, ``velocities_rad_s`` the arm's measured speeds."""
        tripped = watchdog.state is WatchdogState.TRIPPED
        if tripped and not self._holding:
            self._holding, self._still = True, False
            self._fed_ns = watchdog.last_fed_ns or now_ns
            self.holds += 1
            self.hold_after_ms_max = max(self.hold_after_ms_max, (now_ns - self._fed_ns) / 1e6)
        if tripped and not self._still and velocities_rad_s.size and \
                float(np.max(np.abs(velocities_rad_s))) < self.still_rad_s:
            self._still = True
            self.still_after_ms_max = max(self.still_after_ms_max, (now_ns - self._fed_ns) / 1e6)
        if not tripped and self._holding:
            self.never_still += int(not self._still)
            self._holding = False

    def counters(self) -> dict[str, int]:
        """Whole milliseconds (heartbeat counters are integers)."""
        return {"holds": self.holds, "hold_after_ms_max": round(self.hold_after_ms_max),
                "still_after_ms_max": round(self.still_after_ms_max),
                "holds_never_still": self.never_still}
