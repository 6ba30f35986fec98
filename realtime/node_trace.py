"""Tracing inside a demo's processes: each node's tracer, bus hops, traced loops.

The front-end of a run with ``--trace PATH`` (:class:`realtime.trace_run.TraceRun`)
puts the collector's endpoint in the children's environment; each process then
calls :func:`node_tracer` once and traces unconditionally (a disabled tracer
returns at once)::

    tracer = node_tracer(node, "decision")
    ...
    hop(tracer, got, "world")          # a message's trip from its sender to here
    run_traced(loop, tracer, node)     # the loop's ticks, until the node stops

:func:`supervisor_events` adds, on the front-end, what the supervisor did.
"""

from __future__ import annotations

import gc
from typing import Any

from realtime import messages as m
from realtime.bus import Latest
from realtime.loop import DeadlineLoop
from realtime.loop_trace import TickTracer
from realtime.node import Node, StopOnNode
from realtime.supervisor import SupervisorReport
from realtime.trace import Tracer
from realtime.trace_bus import BusTracer

__all__ = ["hop", "node_tracer", "run_traced", "supervisor_events"]


def node_tracer(node: Node, name: str, label: str = "") -> Tracer:
    """This process's tracer: on when the front-end set the trace endpoint, else a
    disabled one (no socket). Owned by ``node`` first, so it closes last (after the
    agent and the sockets, whose last events it still delivers). With a ``label``
    (several runs in one trace) the process is named "LABEL/NAME"."""
    bus = BusTracer.from_env(f"{label}/{name}" if label else name)
    node.own(bus)
    return bus.tracer


def hop(tracer: Tracer, got: Latest[Any], name: str) -> None:
    """A message's trip from its sender (``t_ns``) to this process (received)."""
    msg = got.message
    if tracer.enabled and msg.t_ns:
        tracer.complete(name, "bus", msg.t_ns, got.received_ns, "msg", seq=msg.seq,
                        src=msg.source)


def run_traced(loop: DeadlineLoop[Any], tracer: Tracer, node: Node) -> None:
    """Run ``loop`` until the node stops, its ticks traced (when the tracer is on).

    What the node built before (models, simulator, modules) is frozen out of the garbage
    collector first: the collections the loop runs between ticks then walk only what
    its ticks made (measured in the voice demo's decision process: the worst collection
    87 -> 0.7 ms, the worst release lateness 25 -> 3.2 ms).
    """
    gc.collect()
    gc.freeze()
    ticks = TickTracer(loop, tracer).attach()
    try:
        loop.run(stop_event=StopOnNode(node))
    finally:
        ticks.finish()


def supervisor_events(tracer: Tracer, report: SupervisorReport | None, t0_ns: int) -> None:
    """What the supervisor did (starts, exits, restarts) as instants on track
    ``supervisor``; ``t0_ns``: the monotonic time its run started."""
    if not tracer.enabled or report is None:
        return
    for t_s, name, what in report.events:
        t = t0_ns + round(t_s * 1e9)
        tracer.add(m.TraceEvent(source=tracer.process, t_ns=t, name=f"{name}: {what}", ph="i",
                                ts_ns=t, track="supervisor", cat="supervisor",
                                args={"process": name}))
