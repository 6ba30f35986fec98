"""The voice demo's home survives its process: a file in the user's data directory by
default (WAL, one transaction per action with its version bump, seeded only when new);
a restart of the home process drops the decision's speculative reads of it; the home
RPC checks arguments against the tools' schemas. Real processes and sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.home_rpc import HomeRpc, home_resources
from control.tools import ToolCall, ToolResult
from control.voice_node import VoiceDecisionConfig, build_registry
from realtime import messages as m
from realtime.bus_async import AsyncRequestClient
from realtime.bus_rpc import RequestClient
from realtime.errors import RtAgentError
from realtime.supervisor import ProcessSpec, Supervisor, python_module
from sim_envs.home.nodes import ActuationConfig
from sim_envs.home.services import ServiceOptions, Services
from sim_envs.home.store import IN_MEMORY, HomeStore, default_home_path
from sim_envs.home.tools import voice_tool_specs


def _call(client: RequestClient, name: str, **args: object) -> m.ToolReply:
    return client.call(m.ToolRequest(name=name, arguments_json=json.dumps(args)), timeout_ms=3000)


def _answer(client: RequestClient, name: str, wait_s: float = 60.0, **args: object) -> dict:
    """The value of ``name`` once the home answers it (it may be starting)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            got = _call(client, name, **args)
        except RtAgentError:
            continue
        assert got.ok, got.error
        return json.loads(got.value_json)
    raise AssertionError(f"the home did not answer {name!r} in {wait_s} s")


@contextlib.contextmanager
def home_process(cfg: ActuationConfig) -> Iterator[Supervisor]:
    """The voice demo's actuation process (the home) under a supervisor stepped on a thread."""
    spec = ProcessSpec("actuation", python_module("sim_envs.home.nodes", "actuation",
                                                  cfg.to_json()),
                       startup_grace_ms=60_000, heartbeat_timeout_ms=10_000,
                       backoff_initial_ms=100)
    sup = Supervisor([spec])
    stop = threading.Event()

    def step() -> None:
        while not stop.is_set():
            sup.step()
            time.sleep(0.02)

    sup.start()
    stepper = threading.Thread(target=step, daemon=True)
    stepper.start()
    try:
        yield sup
    finally:
        stop.set()
        stepper.join(5)
        sup.stop()


def _kill_and_wait_restart(sup: Supervisor) -> None:
    pid = sup.pid("actuation")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while sup.restarts("actuation") < 1 or sup.pid("actuation") in (None, pid):
        assert time.monotonic() < deadline, "the home process was not restarted"
        time.sleep(0.05)


def test_an_action_and_its_version_bump_are_one_transaction(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = HomeStore(tmp_path / "home.sqlite")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def crash(resources: object) -> None:  # dies between the UPDATE and the version bump
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "_bump", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        store.set_light("kitchen", False)
    with pytest.raises(RuntimeError, match="power cut"):
        store.set_timer(5)
    monkeypatch.undo()
    store.close()
    reopened = HomeStore(tmp_path / "home.sqlite")
    assert reopened.get_light_state("kitchen")["on"] is True  # neither the change ...
    assert reopened.version("light:kitchen") == 0  # ... nor its bump
    assert reopened.list_timers()["timers"] == []
    reopened.close()


def test_a_home_is_seeded_only_when_new(tmp_path: Path) -> None:
    path = tmp_path / "home.sqlite"
    store = HomeStore(path)
    store.add_to_shopping_list("bread")
    store.close()
    db = sqlite3.connect(path)  # someone empties the contacts: a reopen must not refill them
    db.execute("DELETE FROM contacts")
    db.commit()
    db.close()
    again = HomeStore(path)
    assert again.get_shopping_list()["items"] == ["milk", "eggs", "bread"]
    assert again.contacts() == []
    again.close()


def test_the_default_home_is_a_file_in_the_users_data_dir(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_home_path() == tmp_path / "data" / "rtagent" / "home.sqlite"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # not absolute: ignored (XDG spec)
    assert default_home_path() == Path.home() / ".local" / "share" / "rtagent" / "home.sqlite"


def test_a_kill_9_of_the_home_process_keeps_the_home() -> None:
    with home_process(ActuationConfig()) as sup, \
            RequestClient(sup.run_dir.endpoint("home"), source="test") as home:
        _answer(home, "snapshot")  # up (writes are sent once: a retry would repeat them)
        assert json.loads(_call(home, "set_light", room="kitchen", on=False).value_json)[
            "changed"] is True
        timer = json.loads(_call(home, "set_timer", minutes=10, label="tea").value_json)
        epoch = _answer(home, "epoch")["epoch"]
        _kill_and_wait_restart(sup)
        snap = _answer(home, "snapshot")
        assert _answer(home, "epoch")["epoch"] != epoch  # a new incarnation answers
    assert snap["lights"]["kitchen"]["on"] is False  # not reseeded: the light stays off
    assert [t["id"] for t in snap["timers"]] == [timer["id"]]
    assert default_home_path().exists()  # the user's data dir (a private one in tests)


def test_bad_arguments_are_refused_naming_the_argument(tmp_path: Path) -> None:
    cfg = ActuationConfig(home_db=str(tmp_path / "home.sqlite"))
    with home_process(cfg) as sup, \
            RequestClient(sup.run_dir.endpoint("home"), source="test") as home:
        _answer(home, "snapshot")
        assert _answer(home, "set_light", room="kitchen", on=False)["on"] is False
        bad = _call(home, "set_light", room="kitchen", on="true")  # a string, not a boolean
        assert not bad.ok and "'on'" in bad.error and "boolean" in bad.error
        bad = _call(home, "set_light", room="garage", on=True)
        assert not bad.ok and "'room'" in bad.error and "kitchen" in bad.error
        bad = _call(home, "set_light", on=True)
        assert not bad.ok and "missing argument 'room'" in bad.error
        bad = _call(home, "set_timer", minutes=5, seconds=3)
        assert not bad.ok and "'seconds' was unexpected" in bad.error
        bad = home.call(m.ToolRequest(name="set_light", arguments_json="[true]"), timeout_ms=3000)
        assert not bad.ok and "JSON object" in bad.error
        for name in ("vocabulary", "close", "get_weather"):  # store methods, another's tool
            bad = _call(home, name)
            assert not bad.ok and f"unknown home request {name!r}" in bad.error
        assert _answer(home, "get_light_state", room="kitchen")["on"] is False  # untouched


async def _until_ok(executor: Any, call: ToolCall) -> ToolResult:
    """``call`` run directly (not through the executor's cache) until the home answers it."""
    for _ in range(300):
        got = await executor.registry.invoke(call)
        if got.ok:
            return got  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"the home did not answer {call.name} in 30 s")


async def _speculated_read_after_restart(sup: Supervisor) -> tuple[dict, dict]:
    """Turn the kitchen light off, read it ahead, restart the (in-memory) home; then
    the agent asks for the light: what it gets, and what the home says."""
    specs = voice_tool_specs()
    home = HomeRpc(home_resources(specs), poll_s=0.1)
    home.client = AsyncRequestClient(sup.run_dir.endpoint("home"), source="decision")
    services = Services(ServiceOptions(min_latency_ms=0, max_latency_ms=0))
    from speculation.executor import SpeculationOptions, SpeculativeExecutor

    executor = SpeculativeExecutor(build_registry(VoiceDecisionConfig(), home.call, services),
                                   None, SpeculationOptions(top_k=0))
    home.on_stale = executor.invalidate
    read = ToolCall("get_light_state", {"room": "kitchen"})
    try:
        await _until_ok(executor, ToolCall("list_timers", {}))  # the home is up
        home.watch()
        off = await executor.call(ToolCall("set_light", {"room": "kitchen", "on": False}))
        assert off.ok, off.error
        assert await executor.speculate([read]) == 1
        await asyncio.sleep(0.5)  # the read ahead is done: {"on": false}
        await asyncio.to_thread(_kill_and_wait_restart, sup)
        truth = await _until_ok(executor, read)  # the new home (reseeded: the light is on)
        got = await executor.call(read)
        assert got.ok, got.error
        return {"value": got.value, "speculative": got.speculative}, truth.value
    finally:
        executor.close()
        home.close()
        home.client.close()


def test_a_restart_of_the_home_drops_what_the_decision_read_ahead() -> None:
    with home_process(ActuationConfig(home_db=IN_MEMORY)) as sup:
        got, truth = asyncio.run(_speculated_read_after_restart(sup))
    assert truth["on"] is True  # the in-memory home started over
    assert got["speculative"] is False and got["value"]["on"] is True, got


def test_the_audit_finds_acknowledged_actions_the_home_lost(tmp_path: Path) -> None:
    from sim_envs.home.audit import lost_actions

    store = HomeStore(tmp_path / "home.sqlite")
    done = [{"name": "set_light", "value": store.set_light("kitchen", False)},
            {"name": "set_light", "value": store.set_light("office", True, 40)},
            {"name": "set_timer", "value": store.set_timer(10)},
            {"name": "send_message", "value": store.send_message("Anna", "hi")},
            {"name": "add_to_shopping_list", "value": store.add_to_shopping_list("bread")}]
    store.set_light("office", False)  # a later write nobody heard of: not a loss
    assert lost_actions(store, done) == []
    db = store._db  # what a home that forgets does: the state back, no write recorded
    db.execute("UPDATE lights SET is_on = 1 WHERE room = 'kitchen'")
    db.execute("DELETE FROM messages")
    db.execute("DELETE FROM shopping WHERE item = 'bread'")
    lost = lost_actions(store, done)
    assert lost == ["message 1 to Anna", "shopping item 'bread'",
                    "light:kitchen: 1 writes acknowledged, 1 kept, the last lost"], lost
    store.close()
