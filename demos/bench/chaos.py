"""``--chaos SECONDS`` for ``rtagent bench robot`` and ``rtagent bench voice``: a
:class:`realtime.chaos.ChaosMonkey` SIGKILLs a random process of the session every
SECONDS while the suite (the spoken requests) runs, and these are the figures.

Robot: every task completed, or failed with its reason (and the kills during it);
the processes left after the run (0 expected: every process group the supervisor
started is empty, the run directory gone); the arm held after each kill of the
decision within one watchdog period (the actuation's own counters over all its
incarnations: the longest time from the last command to the hold, how long the arm
then took to stop in sim time, holds that never got still; a hold at the first
tick after the sim came back is counted apart: while it was gone there was no arm).

Voice: the home is a fresh file; every write a turn acknowledged must be in it
afterwards (:func:`sim_envs.home.audit.lost_actions`). The perception process is not
killed by default: it plays the session's audio stream, which a restarted one cannot
rewind (a live microphone would just go on), so the turns would wait for requests
that were never heard.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from realtime.chaos import ChaosMonkey, ChaosOptions, leftover_processes, started_pids

VOICE_VICTIMS = ("decision", "actuation")


def chaos_option(parser: argparse.ArgumentParser, victims: str) -> None:
    parser.add_argument("--chaos", type=float, metavar="SECONDS",
                        help=f"SIGKILL a random process ({victims}) every SECONDS while the "
                             "suite runs, then report what survived")
    parser.add_argument("--chaos-seed", type=int, default=0, help="which processes it picks")


def monkey_for(session: Any, args: argparse.Namespace,
               victims: tuple[str, ...] = ()) -> ChaosMonkey | None:
    """A started monkey on ``session``'s supervisor (once it exists), or None without --chaos."""
    if not args.chaos:
        return None
    return ChaosMonkey(lambda: session.supervisor,
                       ChaosOptions(every_s=args.chaos, victims=victims, seed=args.chaos_seed)
                       ).start()


def _common(monkey: ChaosMonkey, result: Any, run_dir: Path | None) -> dict[str, Any]:
    pids = started_pids(result.supervisor) if result.supervisor is not None else []
    return {"every_s": monkey.options.every_s,
            "kills": dict(Counter(k.name for k in monkey.kills)),
            "processes_started": len(pids), "processes_left": leftover_processes(pids),
            "run_dir_left": bool(run_dir is not None and run_dir.exists())}


def robot_figures(monkey: ChaosMonkey, result: Any, step_ends_ns: list[int],
                  run_dir: Path | None) -> dict[str, Any]:
    out = _common(monkey, result, run_dir)
    steps, start = [], 0
    for r, end in zip(result.steps, step_ends_ns, strict=False):
        during = [k.name for k in monkey.kills if start <= k.t_ns <= end]
        reason = None if r.success else (r.error or "not done when the simulator checked")
        steps.append({"task": r.step.task_id, "success": bool(r.success), "reason": reason,
                      "kills_during": during})
        start = end
    a = "actuation"
    out.update(steps=steps, completed=sum(s["success"] for s in steps),
               failed_without_reason=sum(not s["success"] and not s["reason"] for s in steps),
               holds=monkey.counter_total(a, "holds"),
               hold_after_ms_max=monkey.counter_max(a, "hold_after_ms_max"),
               stop_ms_max=monkey.counter_max(a, "stop_ms_max"),
               holds_never_still=monkey.counter_total(a, "holds_never_still"),
               holds_after_no_joints=monkey.counter_total(a, "holds_after_no_joints"))
    return out


def voice_figures(monkey: ChaosMonkey, result: Any, home: Path, run_dir: Path | None
                  ) -> dict[str, Any]:
    from sim_envs.home.audit import WRITES, lost_actions
    from sim_envs.home.store import HomeStore

    out = _common(monkey, result, run_dir)
    done = [r for t in result.turns for r in (t.get("turn") or {}).get("results", [])
            if r.get("name") in WRITES and r.get("ok")
            and not (isinstance(r.get("value"), dict) and r["value"].get("held"))]
    store = HomeStore(home, seed=False)
    try:
        lost = lost_actions(store, done)
    finally:
        store.close()
    out.update(turns=len(result.turns), acknowledged_actions=len(done), lost_actions=lost,
               error=result.error)
    return out


def lines(label: str, f: dict[str, Any]) -> list[str]:
    """The figures, printed."""
    kills = ", ".join(f"{n} x{c}" for n, c in sorted(f["kills"].items())) or "none"
    out = [f"{label}: chaos every {f['every_s']:g} s: {sum(f['kills'].values())} kills ({kills}); "
           f"{len(f['processes_left'])} of {f['processes_started']} processes left after the "
           f"run{', run directory left' if f['run_dir_left'] else ''}"]
    if "steps" in f:
        out.append(f"  tasks: {f['completed']}/{len(f['steps'])} completed, "
                   f"{f['failed_without_reason']} failed without a reason")
        out += [f"    {s['task']}: {s['reason']}" + (f" (killed during it: "
                f"{', '.join(s['kills_during'])})" if s["kills_during"] else "")
                for s in f["steps"] if not s["success"]]
        out.append(f"  arm: {f['holds']} holds; hold after the last command <= "
                   f"{f['hold_after_ms_max']} ms, then still within {f['stop_ms_max']} ms of "
                   f"sim time; {f['holds_never_still']} holds never still; "
                   f"{f['holds_after_no_joints']} more when the sim came back (no arm to "
                   f"hold meanwhile)")
    else:
        out.append(f"  home: {f['acknowledged_actions']} actions acknowledged in {f['turns']} "
                   f"turns, {len(f['lost_actions'])} lost"
                   + "".join(f"\n    lost: {x}" for x in f["lost_actions"]))
    return out
