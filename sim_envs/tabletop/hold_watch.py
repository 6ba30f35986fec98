"""How fast the arm stops when commands stop: measured by the actuation process.

Each time the actuator's watchdog trips (no fresh command for its timeout),
:class:`HoldWatch` records how long from the receipt of the last fresh command
until the hold was commanded (``hold_after_ms``: the watchdog's timeout plus at
most one actuation tick), and how long from the hold until the measured joint
speeds were all under ``still_rad_s`` (``stop_ms``: the arm actually stopped),
timed on the simulator's clock that the joint states carry (a busy machine slows
the sim, not its physics; on hardware, whose states carry no sim time, on the
tick's clock). The largest of each over the run, the number of holds and of holds
that never got still before commands came back go into the node's heartbeat
counters (:meth:`HoldWatch.counters`), which the supervisor's report keeps.

A hold that came after a tick without joint states (the sim was gone: no arm to
hold, no tick to check the watchdog on) is counted apart (``holds_after_no_joints``)
and not timed: it came at the first tick with an arm again.
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
    stop_ms_max: float = 0.0
    never_still: int = 0  # holds that ended (commands came back) before the arm was still
    after_no_joints: int = 0
    _holding: bool = False
    _last_ns: int = 0  # the last update
    _still: bool = False
    _held_s: float = 0.0

    def update(self, watchdog: Watchdog, velocities_rad_s: np.ndarray, now_ns: int,
               sim_time_s: float = 0.0) -> None:
        """After each tick's :meth:`~sim_envs.tabletop.actuation.Actuator.update`: ``now_ns``
        on the watchdog's clock; the arm's measured speeds and the sim's time of them."""
        tripped = watchdog.state is WatchdogState.TRIPPED
        at_s = sim_time_s if sim_time_s > 0 else now_ns / 1e9
        last_ns, self._last_ns = self._last_ns, now_ns
        if tripped and not self._holding:
            self._holding, self._still, self._held_s = True, False, at_s
            if last_ns and (now_ns - last_ns) / 1e6 > watchdog.options.timeout_ms:
                self.after_no_joints += 1
                return
            self.holds += 1
            fed_ns = now_ns if watchdog.last_fed_ns is None else watchdog.last_fed_ns
            self.hold_after_ms_max = max(self.hold_after_ms_max, (now_ns - fed_ns) / 1e6)
            return  # these speeds were measured before the hold
        if tripped and not self._still and velocities_rad_s.size and \
                float(np.max(np.abs(velocities_rad_s))) < self.still_rad_s:
            self._still = True
            self.stop_ms_max = max(self.stop_ms_max, (at_s - self._held_s) * 1e3)
        if not tripped and self._holding:
            self.never_still += int(not self._still)
            self._holding = False

    def counters(self) -> dict[str, int]:
        """Whole milliseconds (heartbeat counters are integers)."""
        return {"holds": self.holds, "hold_after_ms_max": round(self.hold_after_ms_max),
                "stop_ms_max": round(self.stop_ms_max), "holds_never_still": self.never_still,
                "holds_after_no_joints": self.after_no_joints}
