"""The speculative executor is lossless: differential replays, deny/dry-run enforcement,
no stale results after writes, joins instead of double runs, multi-step, thinking ahead.

Runs on the virtual-time event loop (speculation.vtime), so nothing here is timed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import pytest

from control.tools import ToolCall, ToolRegistry, ToolSpec
from speculation import metadata
from speculation.derive import Context, Prediction
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.metadata import SpeculationPolicyError, guard_speculative
from speculation.patterns import Guess, PatternLibrary
from speculation.predictors import PatternPredictor
from speculation.replay import replay_run
from speculation.vtime import run_virtual
from speculation.workloads import load_specs, robot_episodes, voice_episodes


def _spec(name: str, effect: str, policy: str, props: dict[str, Any] | None = None,
          reads: Sequence[str] = (), writes: Sequence[str] = ()) -> ToolSpec:
    return ToolSpec.from_json({
        "name": name, "parameters": {"type": "object", "properties": props or {}},
        "x-effect": effect, "x-speculation": policy,
        "x-resources": {"reads": list(reads), "writes": list(writes)}})


class Home:
    """A write-detecting backend: lights with state, a log of every invocation and
    of whether the agent had asked for it."""

    def __init__(self) -> None:
        self.lights = {"kitchen": False, "office": True}
        self.invocations: list[str] = []
        self.unasked_writes: list[str] = []
        self.asked: set[str] = set()
        self.dry: list[str] = []

    def registry(self) -> ToolRegistry:
        room = {"room": {"type": "string"}}
        reg = ToolRegistry()

        async def get_light(room: str) -> Any:
            self.invocations.append(f"get_light:{room}")
            await asyncio.sleep(0.3)
            return {"room": room, "on": self.lights[room]}

        async def set_light(room: str, on: bool) -> Any:
            key = ToolCall("set_light", {"room": room, "on": on}).key()
            self.invocations.append(key)
            if key not in self.asked:
                self.unasked_writes.append(key)
            await asyncio.sleep(0.1)
            self.lights[room] = on
            return {"room": room, "on": on}

        async def move(room: str) -> Any:
            self.invocations.append(f"move:{room}")
            if f"move:{room}" not in self.asked:
                self.unasked_writes.append(f"move:{room}")
            await asyncio.sleep(0.5)
            return {"at": room}

        async def move_dry(room: str) -> Any:
            self.dry.append(room)
            return {"plan": room}

        async def find(room: str) -> Any:
            self.invocations.append(f"find:{room}")
            await asyncio.sleep(0.2)
            return {"next_room": "office" if room == "kitchen" else "kitchen"}

        reg.register(_spec("get_light", "read", "allow", room, ["light:{room}"]), get_light)
        reg.register(_spec("set_light", "write", "deny", {**room, "on": {"type": "boolean"}},
                           writes=["light:{room}"]), set_light)
        reg.register(_spec("move", "write", "dry_run", room, writes=["robot"]), move, move_dry)
        reg.register(_spec("find", "read", "allow", room, ["map"]), find)
        return reg

    async def ask(self, ex: SpeculativeExecutor, call: ToolCall) -> Any:
        self.asked.add(call.key() if call.name == "set_light" else f"{call.name}:"
                       f"{call.arguments.get('room')}")
        return await ex.call(call)


class Fixed:
    """A predictor that always predicts the given calls (p=1), whatever the context."""

    def __init__(self, *calls: ToolCall) -> None:
        self.calls = calls

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        return [Prediction(c, 1.0, "fixed") for c in self.calls][:k]


def test_deny_tool_is_never_run_ahead_even_if_predicted_and_requested() -> None:
    home = Home()
    deny = ToolCall("set_light", {"room": "kitchen", "on": True})

    async def main() -> SpeculativeExecutor:
        ex = SpeculativeExecutor(home.registry(), Fixed(deny))
        ex.observe({"user": "lights on"})                 # predicts the deny call
        assert await ex.speculate([deny]) == 0            # and asks for it explicitly
        await asyncio.sleep(1.0)
        assert home.invocations == []
        res = await home.ask(ex, deny)                    # only the agent's call runs it
        assert res.ok and not res.speculative
        await ex.aclose()
        return ex

    ex = run_virtual(main())
    assert home.invocations == [deny.key()] and home.unasked_writes == []
    assert ex.metrics.writes_attempted >= 2 and ex.metrics.writes_executed == 0


def test_guard_refuses_at_invocation_even_if_the_policy_lookup_is_wrong(
        monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home()
    reg = home.registry()
    with pytest.raises(SpeculationPolicyError):
        guard_speculative(reg.get("set_light"), dry_run=False)
    with pytest.raises(SpeculationPolicyError):
        guard_speculative(reg.get("set_light"), dry_run=True)
    # A bug upstream (the executor's copy of the policy says "run") must not cause a write.
    import speculation.executor as ex_mod

    monkeypatch.setattr(ex_mod, "ahead_mode", lambda _tool: metadata.AheadMode.RUN)
    deny = ToolCall("set_light", {"room": "kitchen", "on": True})

    async def main() -> SpeculativeExecutor:
        ex = SpeculativeExecutor(reg, Fixed(deny))
        await ex.speculate([deny])
        await asyncio.sleep(1.0)
        await ex.aclose()
        return ex

    ex = run_virtual(main())
    assert home.invocations == [] and ex.metrics.refused == 1


def test_dry_run_tool_runs_only_its_dry_run_ahead_and_is_never_served() -> None:
    home = Home()
    move = ToolCall("move", {"room": "office"})

    async def main() -> Any:
        ex = SpeculativeExecutor(home.registry(), Fixed(move))
        ex.observe({})
        await asyncio.sleep(1.0)
        assert home.dry == ["office"] and home.invocations == []
        res = await home.ask(ex, move)
        await ex.aclose()
        return res

    res = run_virtual(main())
    assert res.value == {"at": "office"} and not res.speculative
    assert home.invocations == ["move:office"] and home.unasked_writes == []


def test_no_stale_result_after_a_write_to_what_it_read() -> None:
    home = Home()
    read = ToolCall("get_light", {"room": "kitchen"})

    async def main() -> list[Any]:
        ex = SpeculativeExecutor(home.registry(), Fixed(read))
        ex.observe({})
        await asyncio.sleep(1.0)                               # finished: {"on": False}
        w = await home.ask(ex, ToolCall("set_light", {"room": "kitchen", "on": True}))
        r = await home.ask(ex, read)
        # in flight when the write starts: must be dropped too
        await asyncio.sleep(0.05)
        w2 = home.ask(ex, ToolCall("set_light", {"room": "kitchen", "on": False}))
        await w2
        r2 = await home.ask(ex, read)
        await ex.aclose()
        return [w, r, r2, ex.metrics]

    w, r, r2, m = run_virtual(main())
    # (a fresh speculative run started after the write may serve it: that is not stale)
    assert w.ok and r.value == {"room": "kitchen", "on": True}
    assert r2.value == {"room": "kitchen", "on": False}
    assert m.invalidated >= 2


def test_in_flight_speculation_is_joined_not_started_twice() -> None:
    home = Home()
    read = ToolCall("get_light", {"room": "office"})

    async def main() -> Any:
        ex = SpeculativeExecutor(home.registry(), Fixed(read),
                                 SpeculationOptions(launch_at_issue=False))
        ex.observe({})
        await asyncio.sleep(0.1)              # started, 0.2 s left
        res = await ex.call(read)
        await ex.aclose()
        return res, ex.metrics

    res, m = run_virtual(main())
    assert res.speculative and res.value == {"room": "office", "on": True}
    assert home.invocations.count("get_light:office") == 1 and m.joins == 1 and m.hits == 0


def test_multi_step_prepares_the_call_after_next_from_a_speculative_result() -> None:
    lib = PatternLibrary(min_support=1)
    from speculation.traces import Episode, Step

    ep = Episode("e", (Step("get_light", {"room": "kitchen"}, {"room": "kitchen", "on": False}),
                       Step("find", {"room": "kitchen"}, {"next_room": "office"}),
                       Step("get_light", {"room": "office"}, {"room": "office", "on": True})))
    lib.update([ep] * 3)
    home = Home()

    async def main() -> Any:
        ex = SpeculativeExecutor(home.registry(), PatternPredictor(lib))
        ex.observe({})
        await asyncio.sleep(2.0)   # get_light(kitchen) -> find(kitchen) -> get_light(office)
        out = [await ex.call(ToolCall(s.name, s.arguments)) for s in ep.steps]
        await ex.aclose()
        return out

    out = run_virtual(main())
    assert [r.speculative for r in out] == [True, True, True]
    assert out[2].value == {"room": "office", "on": True}
    assert home.invocations[:3] == ["get_light:kitchen", "find:kitchen", "get_light:office"]


def test_guess_prefers_a_finished_speculative_result_then_the_guesser() -> None:
    home = Home()
    read = ToolCall("get_light", {"room": "kitchen"})

    class G:
        def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
            return Guess({"guessed": call.name}, 0.9)

    async def main() -> tuple[Any, Any]:
        ex = SpeculativeExecutor(home.registry(), Fixed(read), guesser=G())
        before = ex.guess(read)
        ex.observe({})
        await asyncio.sleep(1.0)
        after = ex.guess(read)
        await ex.aclose()
        return before, after

    before, after = run_virtual(main())
    assert before is not None and before.value == {"guessed": "get_light"}
    assert after is not None and after.value == {"room": "kitchen", "on": False}


class Noisy:
    """Predicts random calls seen in the episodes (writes and denies included)."""

    def __init__(self, calls: list[ToolCall], seed: int) -> None:
        self.calls, self.rng = calls, random.Random(seed)

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        return [Prediction(c, self.rng.random(), "noisy") for c in self.rng.sample(self.calls, k)]


@pytest.mark.parametrize("workload", ["robot", "voice"])
def test_differential_replay_commits_identical_calls_and_results(workload: str) -> None:
    gen = robot_episodes if workload == "robot" else voice_episodes
    eps = gen(60, 7)
    train, test = eps[:40], eps[40:]
    specs = load_specs(workload)
    base = replay_run("baseline", specs, test, predictor=None)
    lib = PatternLibrary()
    lib.update(train)
    calls = [ToolCall(s.name, dict(s.arguments)) for e in eps for s in e.steps]
    for think in (False, True):
        for pred in (PatternPredictor(lib), Noisy(calls, 1)):
            run = replay_run("spec", specs, test, predictor=pred, think_ahead=think,
                             options=SpeculationOptions(top_k=3, max_concurrency=8))
            assert run.committed == base.committed
            assert run.violations == [] and run.unrecorded_served == 0
            assert run.metrics.writes_executed == 0
            # recorded results are what the agent got, with or without speculation
            for ep, got in zip(test, run.committed, strict=True):
                assert len(got) == len(ep.steps)
    assert sum(run.task_s) <= sum(base.task_s)


def test_budget_slack_and_headroom_gate_speculation_and_store_records_flags(
        tmp_path: Any) -> None:
    from speculation.traces import TraceStore

    read = ToolCall("get_light", {"room": "office"})
    slack = {"ms": 0.0}

    async def main(store: TraceStore) -> tuple[Any, Any]:
        home = Home()
        ex = SpeculativeExecutor(home.registry(), Fixed(read), SpeculationOptions(
            slack_fn=lambda: slack["ms"], min_slack_ms=5.0), store=store, episode_id="ep")
        ex.observe({})                       # no slack: nothing runs ahead
        await asyncio.sleep(1.0)
        assert home.invocations == [] and ex.metrics.skipped_budget >= 1
        first = await ex.call(read)          # direct
        slack["ms"] = 20.0
        ex.observe({})                       # slack: speculates
        await asyncio.sleep(1.0)
        second = await ex.call(read)
        await ex.aclose()
        busy = SpeculativeExecutor(home.registry(), Fixed(read), SpeculationOptions(
            cpu_headroom=1.0, spare_cores_fn=lambda: 0.5))
        busy.observe({})
        assert busy.metrics.launched == 0 and busy.metrics.skipped_budget == 1
        return first, second

    with TraceStore(tmp_path / "t.db") as store:
        first, second = run_virtual(main(store))
        assert not first.speculative and second.speculative
        steps = list(store.episodes(["ep"]))[0].steps
        assert [s.speculative for s in steps] == [False, True]


def test_a_broken_predictor_never_breaks_the_agents_call() -> None:
    class Broken:
        def predict(self, ctx: Context, k: int) -> list[Prediction]:
            raise RuntimeError("bug")

        def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
            raise RuntimeError("bug")

    home = Home()

    async def main() -> Any:
        ex = SpeculativeExecutor(home.registry(), Broken())
        ex.observe({})
        res = await ex.call(ToolCall("get_light", {"room": "office"}))
        assert ex.guess(ToolCall("get_light", {"room": "office"})) is None
        await ex.aclose()
        return res, ex.metrics

    res, m = run_virtual(main())
    assert res.ok and res.value == {"room": "office", "on": True} and m.predictor_errors >= 3
