"""Measure the deadline loop's release jitter on this machine, optionally under
load and side by side with cyclictest.

The loop runs at --hz for --seconds on the real clock (sleep-then-spin wake-ups,
GC kept between ticks, optional RT hardening) and reports release lateness
(actual wake-up minus scheduled release), period, tick time and deadline misses.

  rtagent jitter --hz 16 --seconds 60 --load decoder --compare-cyclictest \\
                 --json jitter.json --plot jitter.png

--load decoder runs the real llama.cpp model decoding continuously in another
process (2 threads); --load cpu runs one busy process per CPU; --load gil runs a
pure-Python busy thread inside the loop's own process (GIL contention: see
--switch-interval-ms). --tick-alloc and --heap-objects make ticks allocate and
the heap big, as in a real agent process, to show GC kept out of ticks. With
--compare-cyclictest, cyclictest then runs at the same interval, for the same
time, under the same load (SCHED_FIFO priority --priority when --fifo took),
and both are printed with the ratio of their p99 and max.
"""

from __future__ import annotations

import argparse
from collections import deque
from dataclasses import replace
from typing import Any

from realtime.jitter_load import LOADS, Load

TARGET_MAX_US = 2000.0
TARGET_P99_RATIO = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hz", type=float, default=16.0, help="loop rate, 10..16 (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="run time (default 10)")
    parser.add_argument("--load", choices=LOADS, default="none",
                        help="background load while measuring (default none)")
    parser.add_argument("--fifo", action=argparse.BooleanOptionalAction, default=True,
                        help="run the loop (and cyclictest) with SCHED_FIFO if permitted "
                             "(default on)")
    parser.add_argument("--priority", type=int, default=80, help="SCHED_FIFO priority (80)")
    parser.add_argument("--spin-us", type=float, default=1000.0,
                        help="spin margin before each release, µs (default 1000; 0 = sleep only)")
    parser.add_argument("--cpus", default=None,
                        help="pin the loop (and cyclictest) to these CPUs, e.g. 1 or 0,1")
    parser.add_argument("--gc-freeze", action=argparse.BooleanOptionalAction, default=True,
                        help="gc.freeze() the heap before running (default on)")
    parser.add_argument("--gc-between-ticks", action=argparse.BooleanOptionalAction,
                        default=True, help="keep GC out of ticks (default on)")
    parser.add_argument("--nice", type=int, default=-20,
                        help="nice value for the loop thread; matters only when SCHED_FIFO is "
                             "off or refused (default -20)")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval for --load gil, e.g. 0.5 (default 5)")
    parser.add_argument("--tick-alloc", type=int, default=0, metavar="N",
                        help="each tick allocates N small objects that live a while (default 0)")
    parser.add_argument("--heap-objects", type=int, default=0, metavar="N",
                        help="grow the heap by N objects first, like a big app (default 0)")
    parser.add_argument("--mlock", action=argparse.BooleanOptionalAction, default=False,
                        help="mlockall() the process (default off)")
    parser.add_argument("--timer-slack", action=argparse.BooleanOptionalAction, default=True,
                        help="set the timer slack to 1 ns (default on)")
    parser.add_argument("--dma-latency", action=argparse.BooleanOptionalAction, default=False,
                        help="hold /dev/cpu_dma_latency at 0 µs, as cyclictest does (default off)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH",
                        help="write the full report (stats, samples, settings) as JSON")
    parser.add_argument("--trace", dest="trace_path", default=None, metavar="PATH",
                        help="write the loop's ticks as a Chrome trace (built from the loop's "
                             "history after the run: nothing is added to the ticks)")
    parser.add_argument("--plot", dest="plot_path", default=None, metavar="PATH",
                        help="write a PNG: lateness histogram and time series")
    parser.add_argument("--compare-cyclictest", action="store_true",
                        help="also run cyclictest at the same interval, same time, same load")
    parser.add_argument("--compare-sleep", action="store_true",
                        help="also run the same tick as a plain sleep loop (no spin, no "
                             "hardening, GC as usual): the naive baseline")
    parser.add_argument("--model", default=None, help="GGUF for --load decoder (default: embedded)")


# -- the command ------------------------------------------------------------------
def _hardening_options(args: argparse.Namespace) -> Any:
    from realtime.errors import ConfigError
    from realtime.hardening import HardeningOptions

    cpus = None
    if args.cpus:
        try:
            cpus = tuple(int(c) for c in args.cpus.split(","))
        except ValueError:
            raise ConfigError(f"--cpus: expected e.g. 1 or 0,1, got {args.cpus!r}") from None
    return HardeningOptions(
        fifo_priority=args.priority if args.fifo else None,
        nice=args.nice,
        switch_interval_s=None if args.switch_interval_ms is None
        else args.switch_interval_ms / 1000.0,
        cpus=cpus,
        gc_freeze=args.gc_freeze,
        mlock=args.mlock,
        timer_slack_ns=1 if args.timer_slack else None,
        cpu_dma_latency_us=0 if args.dma_latency else None,
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from realtime.clock import MonotonicClock
    from realtime.cyclictest import run_cyclictest
    from realtime.errors import ConfigError
    from realtime.hardening import Hardening, cpu_steal_s, kernel_preemption
    from realtime.jitter import render_table, report_from_history, save_json, save_plot
    from realtime.loop import DeadlineLoop, HoldOrStop, LatestResult, LoopOptions, TickInfo
    from realtime.loop_trace import TickTracer
    from realtime.trace import Tracer, write_chrome

    if not 0 < args.seconds <= 3600:
        raise ConfigError(f"--seconds: expected 0 < s <= 3600, got {args.seconds!r}")
    options = LoopOptions(hz=args.hz, spin_us=args.spin_us,
                          history_len=max(16, int(args.hz * args.seconds) + 16),
                          gc_between_ticks=args.gc_between_ticks)
    hopts = _hardening_options(args)
    console = Console()
    load = Load(args.load, _decoder_model(args))
    reports: list[Any] = []
    try:
        load_desc = load.start(console.status)  # before hardening: children stay SCHED_OTHER
        console.print(f"[bold]rtagent jitter[/]: {args.hz:g} Hz for {args.seconds:g} s, "
                      f"load: {load_desc}")
        # The tick does what a real tick does: poll for finished work, else fall back.
        mailbox: LatestResult[int] = LatestResult()
        fallback: HoldOrStop[int] = HoldOrStop(safe_stop=0, max_hold_ticks=3)
        ballast = [{"i": i} for i in range(args.heap_objects)]  # noqa: F841 (kept alive)
        recent: deque[dict[str, Any]] = deque(maxlen=max(1, 50 * args.tick_alloc))

        def tick(info: TickInfo) -> int:
            fresh = mailbox.poll()
            for i in range(args.tick_alloc):
                recent.append({"seq": info.seq, "i": i, "xyz": [0.0, 0.1, 0.2]})
            return fallback(fresh.value if fresh else None)

        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                            TimeRemainingColumn(), console=console, auto_refresh=False,
                            transient=True)
        hardening = Hardening(hopts)
        with progress:
            loop = DeadlineLoop(MonotonicClock(args.spin_us), options, tick)
            tracer = Tracer("jitter", enabled=bool(args.trace_path))
            ticks = TickTracer(loop, tracer)  # not attached: read from the history afterwards
            steal0 = cpu_steal_s()
            with hardening:
                summary = _run_loop(loop, args, progress, "deadline loop")
            ticks.finish()
            steal = None if steal0 is None else (cpu_steal_s() or 0.0) - steal0
            fifo_ok = hardening.applied("fifo")
            steps = [str(s) for s in hardening.steps]
            load_rate = load.rate()
            meta = {"load": args.load, "load_detail": load_desc, "load_rate": load_rate,
                    "seconds": args.seconds, "spin_us": args.spin_us,
                    "fifo": fifo_ok, "hardening": steps,
                    "gc_between_ticks": args.gc_between_ticks, "tick_alloc": args.tick_alloc,
                    "heap_objects": args.heap_objects, "gc_runs": summary.gc_runs,
                    "worst_gc_us": summary.worst_gc_ns / 1000, "cpu_steal_s": steal,
                    "kernel_preemption": kernel_preemption()}
            reports.append(report_from_history(loop.history, summary, meta=meta))
            if args.compare_sleep:  # the same tick, plain sleep, no hardening, GC as usual
                plain = DeadlineLoop(MonotonicClock(0), replace(options, spin_us=0,
                                     gc_between_ticks=False), tick)
                summary = _run_loop(plain, args, progress, "plain sleep loop")
                reports.append(report_from_history(
                    plain.history, summary, source="plain sleep loop",
                    meta={"load": args.load, "spin_us": 0, "fifo": False, "hardening": []}))
            ct_note = ""
            if args.compare_cyclictest:
                period_us = round(1e6 / args.hz)
                prio = args.priority if fifo_ok else None
                ct = run_cyclictest(period_us, args.seconds, prio, args.cpus, args.hz,
                                    {"load": args.load, "fifo": fifo_ok},
                                    _progress_bar(progress, "cyclictest", args.seconds))
                if isinstance(ct, str):
                    ct_note = ct
                else:
                    reports.append(ct)
        load_rate = load.rate() or load_rate
    finally:
        load.stop()

    for s in steps:
        console.print(f"  hardening {s}")
    if args.fifo and not fifo_ok:
        console.print("[yellow]SCHED_FIFO is not available here: the loop ran as "
                      "SCHED_OTHER (see the fifo line above for why and how to allow it).[/]")
    if load_rate:
        console.print(f"  load: {load_rate}")
    meta = reports[0].meta
    console.print(f"  kernel preemption: {meta['kernel_preemption']}; CPU time stolen by the "
                  f"hypervisor during the loop: {_fmt_s(meta['cpu_steal_s'])}; "
                  f"{meta['gc_runs']} GC runs between ticks (worst {meta['worst_gc_us']:.0f} µs)")
    if ct_note:
        console.print(f"[yellow]{ct_note}; showing the loop alone.[/]")
    console.print(render_table(reports, title=f"release lateness at {args.hz:g} Hz, "
                                              f"load {args.load}"))
    _print_targets(console, reports)
    if args.json_path:
        out = save_json(args.json_path, reports, hz=args.hz, seconds=args.seconds,
                        load=args.load, fifo=fifo_ok, hardening=steps)
        console.print(f"wrote {out}")
    if args.trace_path:
        out = write_chrome(args.trace_path, tracer.events(), run="rtagent jitter", hz=args.hz,
                           seconds=args.seconds, load=args.load)
        console.print(f"wrote {out} (`rtagent report {out}`)")
    if args.plot_path:
        out = save_plot(args.plot_path, reports,
                        title=f"release lateness at {args.hz:g} Hz, load {args.load}")
        console.print(f"wrote {out}")
    return 0


def _decoder_model(args: argparse.Namespace) -> str | None:
    """The GGUF --load decoder runs (--model, default: the embedded one)."""
    if args.load != "decoder":
        return None
    from models.resolve import resolve_gguf

    return str(resolve_gguf(args.model))


def _progress_bar(progress: Any, label: str, seconds: float) -> Any:
    """A callback drawing ``label``'s bar from the seconds done (added on the first call)."""
    task = None

    def draw(done_s: float) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(label, total=max(1, round(seconds)))
        progress.update(task, completed=done_s)
        progress.refresh()

    return draw


def _fmt_s(x: float | None) -> str:
    return "unknown" if x is None else f"{x * 1000:.0f} ms"


def _run_loop(loop: Any, args: argparse.Namespace, progress: Any, label: str) -> Any:
    """Run ``loop`` for --seconds, drawing the progress bar only between ticks."""
    task = progress.add_task(label, total=args.seconds)
    last_draw = [0]

    def between_ticks(info: Any) -> None:
        if info.release_ns - last_draw[0] >= 250_000_000:
            last_draw[0] = info.release_ns
            progress.update(task, completed=(info.index + 1) / args.hz)
            progress.refresh()

    loop.between_ticks = between_ticks
    summary = loop.run(seconds=args.seconds)
    progress.update(task, visible=False)
    return summary


def _print_targets(console: Any, reports: list[Any]) -> None:
    loop = reports[0]
    lat = loop.lateness_us
    checks = [
        (f"max lateness {lat.max:.0f} µs <= {TARGET_MAX_US:.0f} µs", lat.max <= TARGET_MAX_US),
        (f"deadline misses {loop.deadline_misses} == 0", loop.deadline_misses == 0),
    ]
    by_source = {r.source: r.lateness_us for r in reports[1:]}
    if "plain sleep loop" in by_source:
        sl = by_source["plain sleep loop"]
        console.print(f"  plain sleep loop / rtagent loop: p99 {sl.p99 / max(lat.p99, 1e-3):.0f}x, "
                      f"max {sl.max / max(lat.max, 1e-3):.0f}x")
    if "cyclictest" in by_source:
        ct = by_source["cyclictest"]
        ratio = lat.p99 / ct.p99 if ct.p99 else float("inf")
        checks.append((f"p99 {lat.p99:.0f} µs = {ratio:.2f}x cyclictest p99 {ct.p99:.0f} µs "
                       f"<= {TARGET_P99_RATIO:g}x", ratio <= TARGET_P99_RATIO))
        mratio = lat.max / ct.max if ct.max else float("inf")
        console.print(f"  vs cyclictest: max {mratio:.2f}x")
    for text, ok in checks:
        console.print(f"  target {text}: {'[green]met[/]' if ok else '[red]not met[/]'}")
