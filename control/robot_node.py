"""The robot demo's decision process: ``python -m control.robot_node decision CONFIG_JSON``.

It loads the decoder, opens the sockets (world states in, commands, events and
control requests; see :mod:`sim_envs.tabletop.nodes` for the whole picture),
builds the :class:`~control.robot_decision.RobotDecision` on the real clock and
runs its deadline loop until the supervisor stops the process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from functools import partial
from typing import Any

from control.offload import DecoderProcess, KinematicsProcess
from control.robot_decision import DecisionPorts, RobotDecision
from models.prompts import render_scene
from realtime import messages as m
from realtime.bus import BusOptions, LatestValueSubscriber, Publisher
from realtime.bus_rpc import ReplyServer
from realtime.clock import MonotonicClock
from realtime.hardening import LOOP_SWITCH_INTERVAL_S, Hardening, HardeningOptions
from realtime.node import Node, node_main
from realtime.node_trace import node_tracer, run_traced
from sim_envs.tabletop.config import RobotDemoConfig

__all__ = ["load_decoder", "main", "run_decision"]

log = logging.getLogger("rtagent.robot")


def load_decoder(cfg: RobotDemoConfig) -> Any:
    """The decoder ``cfg`` names, on its model; ``lora="default"``: the model's shipped
    adapter, if any (the JSON baseline runs the base model alone). Resolving may make the
    run-time file (seconds): call it inside the heartbeats."""
    from models.factory import make_decoder
    from models.resolve import resolve_model

    model = resolve_model(cfg.model, cfg.lora if cfg.decoder == "simpletool" else None)
    return make_decoder(cfg.decoder, model, n_threads=cfg.decoder_threads)


def run_decision(cfg: RobotDemoConfig, node: Node) -> None:
    from models.decoder import DecodeContext
    from sim_envs.tabletop.robot_tools import robot_tool_specs

    tracer = node_tracer(node, "decision", cfg.trace_label)
    rd = node.run_dir
    ports = DecisionPorts(
        world=node.own(LatestValueSubscriber(rd.endpoint("world"), ("world",),
                                             types=(m.WorldState,))),
        # each incarnation its own source: the actuation's watchdog takes the first seq of
        # a restarted decision as new, not as older than the last one it saw
        commands=node.own(Publisher(rd.endpoint("commands"), source=f"decision-{os.getpid()}")),
        events=node.own(Publisher(rd.endpoint("events"), source="decision",
                                  options=BusOptions(sndhwm=256))),
        control=node.own(ReplyServer(rd.endpoint("decision_ctl"), source="decision")))
    # Loading the model, the warm-up decode and mining the patterns take seconds
    # (more on a busy machine): heartbeats go on from a helper thread meanwhile.
    with node.beating():
        # The decoder runs in its own process: its Python work between llama.cpp
        # passes would otherwise hold this process's GIL when the loop wakes.
        decoder = node.own(DecoderProcess(partial(load_decoder, cfg)))
        # Evaluate the system prompt and tool list once now, so the first instruction
        # pays only for its own tokens (the prefix KV cache is reused).
        with tracer.span("warm-up", "decoder", "decode"):
            decoder.decode(DecodeContext.from_request("go home", scene=render_scene(["red_cube"])),
                           robot_tool_specs())
        # So does the tools' motion planning (pybullet IK holds the GIL for milliseconds).
        kinematics = node.own(KinematicsProcess())
        decision = node.own(RobotDecision(cfg, MonotonicClock(), decoder, ports, tracer=tracer,
                                          counters=node.counters, beat=node.beat,
                                          kinematics=kinematics))
    node.report_turns(decision.agent.progress)  # heartbeats carry the turn's progress
    # This (loop) thread gets SCHED_FIFO 80. The agent's threads, which share its GIL,
    # get SCHED_FIFO 1: one holding the GIL is never kept off the CPU by the other
    # processes while the loop waits for it; they only do short bursts (the decoder and
    # the IK are other processes). A short switch interval bounds how long the loop,
    # woken, waits for a running holder (CPython's default: 5 ms).
    hardening = Hardening(HardeningOptions(fifo_priority=80 if cfg.fifo else None,
                                           partners_fifo_priority=1 if cfg.fifo else None,
                                           switch_interval_s=LOOP_SWITCH_INTERVAL_S))
    node.beat("running", force=True)
    with hardening:
        decision.hardening = [asdict(s) for s in hardening.steps]  # reported by ``stats``
        for step in hardening.steps:
            log.info("hardening: %s", step)
        run_traced(decision.loop, tracer, node)


def main(argv: list[str] | None = None) -> int:
    return node_main("control.robot_node", {"decision": run_decision}, RobotDemoConfig.from_json,
                     argv)


if __name__ == "__main__":
    raise SystemExit(main())
