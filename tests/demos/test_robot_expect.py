"""`rtagent robot --expect`: predicates refused before anything starts, and (slow) checked
by the real simulator at the end of each instruction."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from demos.cli import main as cli_main
from demos.robot import _steps, add_arguments, summarize
from demos.robot_session import SessionResult, Step, StepResult
from sim_envs.tabletop.predicates import PredicateError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_each_instruction_gets_its_expectation_in_order() -> None:
    steps = _steps(_args("point at the red cube", "go home", "--expect", "pointing_at(red_cube)",
                         "--expect", "at_home()", "--seed", "3"))
    assert [(s.instruction, s.expect, s.seed) for s in steps] == [
        ("point at the red cube", "pointing_at(red_cube)", 3), ("go home", "at_home()", None)]


def test_a_bad_predicate_or_count_is_refused_before_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PredicateError, match="unknown function 'stacked'"):
        _steps(_args("stack it", "--expect", "stacked(blue_cube, red_cube)"))
    # Through the CLI: exit status 1 with the column, no process started.
    assert cli_main(["robot", "go home", "--expect", "at_home() and"]) == 1
    err = capsys.readouterr().err
    assert "rtagent robot: error: predicate 'at_home() and'" in err and "column 14" in err
    assert cli_main(["robot", "go home", "point at the red cube", "--expect", "at_home()"]) == 1
    assert "got 1 for 2 instruction(s)" in capsys.readouterr().err


def test_the_summary_carries_each_verdict_and_the_final_world() -> None:
    verdict = {"predicate": "held(red_cube)", "success": False,
               "terms": [{"term": "held(red_cube)", "value": False}]}
    world = {"objects": {"red_cube": {"position": [0.4, 0.0, 0.025]}}, "holding": [],
             "arm_q": [0.0] * 7}
    result = SessionResult(steps=[StepResult(Step("pick up the red cube", expect="held(red_cube)"),
                                             True, False, 2.0, {"calls": []}, verdict=verdict)],
                           world=world)
    summary = summarize(result)
    (step,) = summary["steps"]
    assert step["success"] is False and step["expect"] == verdict
    assert summary["world"] == world and (summary["success"], summary["checked"]) == (0, 1)


@pytest.mark.slow
def test_expectations_are_checked_by_the_simulator_end_to_end(tmp_path: Path) -> None:
    """Real processes and model: one expectation that holds, one that does not."""
    out = tmp_path / "run.json"
    code = cli_main(["robot", "point at the yellow cube", "go home",
                     "--expect", "pointing_at(yellow_cube) and unmoved(yellow_cube)",
                     "--expect", "not at_home() or held(red_cube)",
                     "--json", str(out), "--turn-timeout-s", "120"])
    figures = json.loads(out.read_text())
    assert figures["error"] is None and figures["ok"] == 2, figures
    first, second = figures["steps"]
    assert first["success"] is True, first
    assert [t["value"] for t in first["expect"]["terms"]] == [True, True]
    assert second["success"] is False, second
    assert {t["term"]: t["value"] for t in second["expect"]["terms"]} == {
        "at_home()": True, "held(red_cube)": False}
    assert code == 1  # an expectation did not hold
    world = figures["world"]
    assert set(world["objects"]) == {"red_cube", "green_cube", "blue_cube", "yellow_cube", "bin"}
    assert world["holding"] == [] and len(world["arm_q"]) == 7
