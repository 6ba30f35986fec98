"""Chaos for a supervised run: SIGKILL to a random process every few seconds.

:class:`ChaosSchedule` (pure, on an injected clock, so a
:class:`~realtime.clock.FakeClock` drives it in tests) says when the next kill is
due and draws its victim with a seeded RNG from the candidates it is given.
:class:`ChaosMonkey` runs it beside :meth:`realtime.supervisor.Supervisor.run`
(on a thread of its own, or by calling :meth:`ChaosMonkey.step`): the candidates
are the processes that are ready (running), among ``victims``, and that the
supervisor would restart (its restart budget: a kill never makes the run give
up on a process). It SIGKILLs the victim's process, records each :class:`Kill`,
and keeps every process's heartbeat counters as last seen for each of its
incarnations, by pid (a restart starts them at zero; the supervisor's report keeps
only the last incarnation's): :meth:`ChaosMonkey.counter_total` sums them.
:func:`leftover_processes` finds what outlived a run: any live process in the
process group of one the supervisor started.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from realtime.errors import ConfigError
from realtime.supervisor import ProcState, Supervisor, SupervisorReport

__all__ = ["ChaosMonkey", "ChaosOptions", "ChaosSchedule", "Kill", "leftover_processes",
           "started_pids"]


@dataclass(frozen=True)
class ChaosOptions:
    """every_s: time between kills. first_after_s: before the first one (None: every_s).
    victims: the processes that may be killed (empty: any). seed: the victims' draw."""

    every_s: float
    first_after_s: float | None = None
    victims: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.1 <= self.every_s <= 86_400:
            raise ConfigError(f"chaos every_s: expected 0.1..86400 seconds, got {self.every_s!r}")
        if self.first_after_s is not None and not 0 <= self.first_after_s <= 86_400:
            raise ConfigError(f"chaos first_after_s: expected 0..86400 seconds or None, got "
                              f"{self.first_after_s!r}")


@dataclass(frozen=True)
class Kill:
    """One kill: when (on the monkey's clock, ns), whom and which process."""

    t_ns: int
    name: str
    pid: int


class ChaosSchedule:
    """When the next kill is due (``every_s`` after the last one) and whom it hits."""

    def __init__(self, options: ChaosOptions, clock_ns: Callable[[], int] = time.monotonic_ns
                 ) -> None:
        self.options = options
        self.clock_ns = clock_ns
        first = options.every_s if options.first_after_s is None else options.first_after_s
        self.next_ns = clock_ns() + round(first * 1e9)
        self._rng = random.Random(options.seed)

    def due(self) -> bool:
        return self.clock_ns() >= self.next_ns

    def choose(self, candidates: Iterable[str]) -> str | None:
        """The victim among ``candidates`` (those allowed by ``victims``), None if none."""
        allowed = sorted(c for c in candidates if not self.options.victims
                         or c in self.options.victims)
        return self._rng.choice(allowed) if allowed else None

    def killed(self) -> None:
        """A kill was done: the next one is ``every_s`` from now."""
        self.next_ns = self.clock_ns() + round(self.options.every_s * 1e9)


@dataclass
class ChaosMonkey:
    """Kills a random ready process of ``supervisor()`` (None until it exists) whenever
    the schedule says so. ``kill(pid, signal)`` is :func:`os.kill` unless injected."""

    supervisor: Callable[[], Supervisor | None]
    options: ChaosOptions
    clock_ns: Callable[[], int] = time.monotonic_ns
    kill: Callable[[int, int], None] = os.kill
    poll_s: float = 0.05
    kills: list[Kill] = field(default_factory=list)
    counters: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)  # name, pid
    schedule: ChaosSchedule = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.schedule = ChaosSchedule(self.options, self.clock_ns)

    def candidates(self, sup: Supervisor) -> list[str]:
        """Ready processes the supervisor would restart after a crash now."""
        return [n for n in sup.names if sup.state(n) is ProcState.RUNNING
                and sup.restarts_left(n) > 0 and sup.pid(n) is not None]

    def step(self) -> Kill | None:
        """Note the counters; kill if one is due and someone may be killed."""
        sup = self.supervisor()
        if sup is None:
            return None
        self._note_counters(sup)
        if not self.schedule.due():
            return None
        name = self.schedule.choose(self.candidates(sup))
        pid = sup.pid(name) if name is not None else None
        if name is None or pid is None:
            return None  # nobody may be killed now: again at the next step
        with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
            self.kill(pid, signal.SIGKILL)
        kill = Kill(self.clock_ns(), name, pid)
        self.kills.append(kill)
        self.schedule.killed()
        return kill

    def _note_counters(self, sup: Supervisor) -> None:
        for name in sup.names:
            hb = sup.last_heartbeat(name)
            if hb is not None:
                self.counters.setdefault(name, {})[hb.pid] = dict(hb.counters)

    def counter_total(self, name: str, key: str) -> int:
        """``key`` of ``name``'s counters, summed over its incarnations (as last seen)."""
        return sum(c.get(key, 0) for c in self.counters.get(name, {}).values())

    def counter_max(self, name: str, key: str) -> int:
        return max((c.get(key, 0) for c in self.counters.get(name, {}).values()), default=0)

    def kills_of(self, name: str) -> int:
        return sum(k.name == name for k in self.kills)

    # -- on a thread -------------------------------------------------------------------
    def start(self) -> ChaosMonkey:
        self._thread = threading.Thread(target=self._run, name="chaos-monkey", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.step()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> ChaosMonkey:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_STARTED = re.compile(r"started pid (\d+)")


def started_pids(report: SupervisorReport) -> list[int]:
    """Every process the supervisor started (each led its own process group)."""
    return [int(m.group(1)) for _, _, what in report.events if (m := _STARTED.search(what))]


def leftover_processes(groups: Sequence[int], proc: Path = Path("/proc")) -> list[int]:
    """Live processes (not zombies) in any of the process ``groups``: what outlived a run."""
    wanted = set(groups)
    left = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        state, pgrp = fields[0], int(fields[2])
        if pgrp in wanted and state != "Z":
            left.append(int(entry.name))
    return sorted(left)
