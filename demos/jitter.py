"""Measure the deadline loop's release jitter on this machine, optionally under
load, with the demos' own tick, side by side with cyclictest.

The loop runs at --hz for --seconds on the real clock and reports release lateness
(actual wake-up minus scheduled release), period, tick time, deadline misses and
the CPU time it used. Its wait is absolute, as cyclictest's is:
clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to --spin-us before each release,
then a spin on the clock to the release (--spin-us 0: the sleep alone). GC is kept
between ticks; RT hardening (SCHED_FIFO, ...) is applied to the loop's thread.

  rtagent jitter --hz 16 --seconds 60 --load decoder --compare-cyclictest --tick robot \\
                 --json jitter.json --plot jitter.png

--tick says what each tick does: poll (a mailbox poll and the hold fallback: the
loop's own cost), robot (the robot demo's decision tick: world state from a real
bus subscriber, skill step, command publish, the agent decoding instructions with
llama.cpp in its own process) or voice (the voice demo's: transcripts from the bus,
turns, replies); see control/decision_ticks.py.

--load decoder runs the real llama.cpp model decoding continuously in another
process (2 threads), besides any decoder the tick runs; --load cpu runs one busy
process per CPU; --load gil runs a pure-Python busy thread inside the measuring
process (GIL contention; --switch-interval-ms sets how soon it hands the GIL over).
--tick-alloc and --heap-objects make poll ticks allocate and the heap big, to show
GC kept out of ticks.

--compare-cyclictest measures three threads at once, under the same load, over the
same releases: our loop with its spin margin, the same loop sleep only (each in its
own process, with its own tick), and cyclictest (-t1, SCHED_FIFO --priority when
permitted, on --cpus), their releases a third of a period apart. It prints all three
with ratios to cyclictest and the spin's CPU cost (loop thread CPU time per second,
spin minus sleep only). --compare-sleep then also runs the naive baseline: the same
tick with a plain sleep, no hardening, GC as usual.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from control.decision_ticks import TICKS, tick_factory
from realtime.hardening import LOOP_SWITCH_INTERVAL_S
from realtime.jitter import render_table, save_json, save_plot
from realtime.jitter_load import LOADS, Load
from realtime.jitter_run import MeasureSpec

TARGET_MAX_US = 2000.0
TARGET_P99_RATIO = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hz", type=float, default=16.0, help="loop rate, 10..16 (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="run time (default 10)")
    parser.add_argument("--load", choices=LOADS, default="none",
                        help="background load while measuring (default none)")
    parser.add_argument("--tick", choices=TICKS, default="poll",
                        help="what each tick does: poll (nothing), robot or voice (the demos' "
                             "decision tick; default poll)")
    parser.add_argument("--fifo", action=argparse.BooleanOptionalAction, default=True,
                        help="run the loop (and cyclictest) with SCHED_FIFO if permitted "
                             "(default on)")
    parser.add_argument("--priority", type=int, default=80, help="SCHED_FIFO priority (80)")
    parser.add_argument("--fifo-partners", action=argparse.BooleanOptionalAction, default=True,
                        help="with --fifo, SCHED_FIFO priority 1 for the measuring process's "
                             "other threads (the robot/voice tick's agent: those that may hold "
                             "the GIL the loop needs), as the demos do (default on)")
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
    parser.add_argument("--switch-interval-ms", type=float,
                        default=LOOP_SWITCH_INTERVAL_S * 1000,
                        help="sys.setswitchinterval of the measuring process: how long the woken "
                             "loop waits for the GIL held by another thread (default "
                             f"{LOOP_SWITCH_INTERVAL_S * 1000:g}, as in the demos' decision "
                             "processes; CPython's is 5)")
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
                        help="measure at once, over the same releases: our loop with the spin "
                             "margin, the same sleep only, and cyclictest")
    parser.add_argument("--compare-sleep", action="store_true",
                        help="also run the same tick as a plain sleep loop (no spin, no "
                             "hardening, GC as usual): the naive baseline")
    parser.add_argument("--model", default=None,
                        help="GGUF for --load decoder and the robot/voice tick's decoder "
                             "(default: embedded)")


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
        partners_fifo_priority=1 if args.fifo and args.fifo_partners else None,
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

    from realtime.errors import ConfigError

    if not 0 < args.seconds <= 3600:
        raise ConfigError(f"--seconds: expected 0 < s <= 3600, got {args.seconds!r}")
    if args.trace_path and args.compare_cyclictest:
        raise ConfigError("--trace traces a loop run in this process: drop --compare-cyclictest "
                          "(its loops run in child processes) or --trace")
    console = Console()
    # A GIL load is a thread of the measuring process (each, with --compare-cyclictest),
    # started after its hardening: an ordinary thread (MeasureSpec.gil_thread).
    load = Load("none" if args.load == "gil" else args.load, _decoder_model(args))
    try:
        load_desc = load.start(console.status)  # before hardening: children stay SCHED_OTHER
        if args.load == "gil":
            load_desc = "a pure-Python busy thread in the measuring process (holds the GIL)"
        console.print(f"[bold]rtagent jitter[/]: {args.hz:g} Hz for {args.seconds:g} s, "
                      f"tick {args.tick}, load: {load_desc}")
        reports, tracer = (_run_concurrent(args, console) if args.compare_cyclictest
                           else _run_here(args, console))
        load_rate = load.rate()
    finally:
        load.stop()
    _print_results(console, args, reports, load_desc, load_rate)
    if args.json_path:
        first = reports[0].meta
        out = save_json(args.json_path, reports, hz=args.hz, seconds=args.seconds,
                        load=args.load, tick=args.tick, fifo=first["fifo"],
                        hardening=first["hardening"], wait=first["wait"])
        console.print(f"wrote {out}")
    if args.trace_path and tracer is not None:
        from realtime.trace import write_chrome

        out = write_chrome(args.trace_path, tracer.events(), run="rtagent jitter", hz=args.hz,
                           seconds=args.seconds, load=args.load)
        console.print(f"wrote {out} (`rtagent report {out}`)")
    if args.plot_path:
        out = save_plot(args.plot_path, reports,
                        title=f"release lateness at {args.hz:g} Hz, tick {args.tick}, "
                              f"load {args.load}")
        console.print(f"wrote {out}")
    return 0


def _specs(args: argparse.Namespace) -> tuple[MeasureSpec, MeasureSpec]:
    """Our loop as asked (spin margin, hardening), and the naive plain sleep loop."""
    from realtime.hardening import HardeningOptions

    tick_args = {"hz": args.hz, "model": args.model, "tick_alloc": args.tick_alloc,
                 "heap_objects": args.heap_objects}
    ours = MeasureSpec(source="rtagent loop", hz=args.hz, spin_us=args.spin_us,
                       hardening=_hardening_options(args), tick=tick_factory(args.tick),
                       tick_args=tick_args, gc_between_ticks=args.gc_between_ticks,
                       gil_thread=args.load == "gil")
    plain = replace(ours, source="plain sleep loop", spin_us=0.0, hardening=HardeningOptions(),
                    gc_between_ticks=False)
    return ours, plain


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    from realtime.hardening import kernel_preemption

    return {"load": args.load, "seconds": args.seconds, "tick_alloc": args.tick_alloc,
            "heap_objects": args.heap_objects, "kernel_preemption": kernel_preemption()}


def _run_here(args: argparse.Namespace, console: Any) -> tuple[list[Any], Any]:
    """The loop in this process (then, with --compare-sleep, the plain sleep loop)."""
    from realtime.clock import MonotonicClock
    from realtime.hardening import cpu_steal_s
    from realtime.jitter_run import build_tick, measure_here
    from realtime.loop_trace import TickTracer
    from realtime.trace import Tracer

    ours, plain = _specs(args)
    ticks = max(1, round(args.seconds * args.hz))
    clock = MonotonicClock(args.spin_us)
    with console.status(f"building the {args.tick} tick..."):
        workload = build_tick(ours, clock)
    tracer = Tracer("jitter", enabled=bool(args.trace_path))
    traced: list[Any] = []
    try:
        with _progress(console) as progress:
            steal0 = cpu_steal_s()
            got = measure_here(ours, ticks, workload=workload, clock=clock,
                               between=_bar(progress, "deadline loop", args),
                               on_loop=lambda loop: traced.append(TickTracer(loop, tracer)),
                               meta=_meta(args))
            traced[0].finish()  # not attached: built from the history after the run
            steal = None if steal0 is None else (cpu_steal_s() or 0.0) - steal0
            got.report.meta["cpu_steal_s"] = steal
            reports = [got.report]
            if args.compare_sleep:  # the same tick, plain sleep, no hardening, GC as usual
                reports.append(measure_here(
                    plain, ticks, workload=workload, clock=MonotonicClock(0),
                    between=_bar(progress, "plain sleep loop", args), meta=_meta(args)).report)
    finally:
        workload.close()
    return reports, tracer


def _run_concurrent(args: argparse.Namespace, console: Any) -> tuple[list[Any], None]:
    """Our loop with its spin margin, the same sleep only, and cyclictest, all at once
    (each loop in its own process); then, with --compare-sleep, the plain sleep loop."""
    from realtime.cyclictest import Cyclictest
    from realtime.hardening import cpu_steal_s, probe_fifo
    from realtime.jitter_run import measure_here, run_concurrent

    ours, plain = _specs(args)
    sleep_only = replace(ours, source="rtagent loop (sleep only)", spin_us=0.0)
    fifo_ok = args.fifo and probe_fifo(args.priority)[0]
    ct = Cyclictest(round(1e6 / args.hz), args.priority if fifo_ok else None, args.cpus)
    status = console.status(f"starting the measuring processes ({args.tick} tick)...")
    status.start()
    with _progress(console) as progress:
        draw = _seconds_bar(progress, "rtagent loop x2 + cyclictest, at once", args.seconds)
        steal0 = cpu_steal_s()
        try:
            got = run_concurrent([ours, sleep_only], args.seconds, cyclictest=ct,
                                 on_progress=draw, on_ready=status.stop, meta=_meta(args))
        finally:
            status.stop()
        steal = None if steal0 is None else (cpu_steal_s() or 0.0) - steal0
        reports = [m.report for m in got.measurements]
        for r in reports:
            r.meta["cpu_steal_s"] = steal
        if args.compare_sleep:
            reports.append(measure_here(plain, max(1, round(args.seconds * args.hz)),
                                        between=_bar(progress, "plain sleep loop", args),
                                        meta=_meta(args)).report)
    if got.cyclictest is not None:
        got.cyclictest.meta.update(load=args.load, fifo=fifo_ok)
        reports.append(got.cyclictest)
    else:
        reports[0].meta["cyclictest_note"] = got.cyclictest_note
    return reports, None


def _print_results(console: Any, args: argparse.Namespace, reports: list[Any], load_desc: str,
                   load_rate: str) -> None:
    meta = reports[0].meta
    for s in meta["hardening"]:
        console.print(f"  hardening {s}")
    if args.fifo and not meta["fifo"]:
        console.print("[yellow]SCHED_FIFO is not available here: the loop ran as "
                      "SCHED_OTHER (see the fifo line above for why and how to allow it).[/]")
    if load_rate:
        console.print(f"  load: {load_rate}")
    console.print(f"  tick: {meta['tick']}")
    console.print(f"  wait: {meta['wait']} to {args.spin_us:g} µs before each release, then spin"
                  if args.spin_us else f"  wait: {meta['wait']} (no spin)")
    if "phase_vs_cyclictest_ns" in meta:
        console.print("  measured at once, over the same releases: cyclictest, and each of our "
                      "loops in its own process a third of a period apart "
                      f"({', '.join(str(r.meta.get('pid')) for r in reports[:2])})")
    console.print(f"  kernel preemption: {meta['kernel_preemption']}; CPU time stolen by the "
                  f"hypervisor during the run: {_fmt_s(meta.get('cpu_steal_s'))}; "
                  f"{meta['gc_runs']} GC runs between ticks (worst {meta['worst_gc_us']:.0f} µs)")
    if meta.get("cyclictest_note"):
        console.print(f"[yellow]{meta['cyclictest_note']}; showing our loops alone.[/]")
    console.print(render_table(reports, title=f"release lateness at {args.hz:g} Hz, tick "
                                              f"{args.tick}, load {args.load}"))
    _print_spin_cost(console, reports)
    _print_targets(console, reports)


def _print_spin_cost(console: Any, reports: list[Any]) -> None:
    by_source = {r.source: r for r in reports}
    spin, sleep = by_source.get("rtagent loop"), by_source.get("rtagent loop (sleep only)")
    if spin is None or sleep is None or not spin.meta.get("spin_us"):
        return
    extra = spin.meta["loop_thread_cpu_ms_per_s"] - sleep.meta["loop_thread_cpu_ms_per_s"]
    console.print(f"  the {spin.meta['spin_us']:g} µs spin costs {extra:.1f} ms of CPU per second "
                  f"({extra / 10:.2f}% of a core; loop thread, spin minus sleep only) and buys "
                  f"p99 {sleep.lateness_us.p99:.0f} -> {spin.lateness_us.p99:.0f} µs, max "
                  f"{sleep.lateness_us.max:.0f} -> {spin.lateness_us.max:.0f} µs")


def _decoder_model(args: argparse.Namespace) -> str | None:
    """The GGUF --load decoder runs (--model, default: the embedded one)."""
    if args.load != "decoder":
        return None
    from models.resolve import resolve_gguf

    return str(resolve_gguf(args.model))


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed:.0f}/{task.total:.0f} s"), TimeRemainingColumn(),
                    console=console, auto_refresh=False, transient=True)


def _seconds_bar(progress: Any, label: str, seconds: float) -> Any:
    """A callback drawing ``label``'s bar from the seconds done (added on the first call)."""
    task = None

    def draw(done_s: float) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(label, total=max(1, round(seconds)))
        progress.update(task, completed=min(done_s, seconds))
        progress.refresh()

    return draw


def _bar(progress: Any, label: str, args: argparse.Namespace) -> Any:
    """A between-ticks hook drawing ``label``'s bar at most 4 times a second."""
    draw = _seconds_bar(progress, label, args.seconds)
    last = [0]

    def between(info: Any) -> None:
        if info.release_ns - last[0] >= 250_000_000:
            last[0] = info.release_ns
            draw((info.index + 1) / args.hz)

    return between


def _fmt_s(x: float | None) -> str:
    return "unknown" if x is None else f"{x * 1000:.0f} ms"


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
