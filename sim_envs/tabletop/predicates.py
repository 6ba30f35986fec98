"""Outcome predicates: what should be true after an instruction, checked on ground truth.

``rtagent robot "put the blue cube on the red one" --expect "on(blue_cube, red_cube) and
not held(blue_cube)"`` — the simulator evaluates the predicate on its own state
(:class:`~sim_envs.tabletop.truth.WorldTruth`) when the instruction is done; the
task suite's success checks are written the same way (:mod:`sim_envs.tabletop.tasks`).

Vocabulary (objects as the scene names them: red_cube, green_cube, blue_cube,
yellow_cube, bin; distances in metres, or with a unit: ``5cm``, ``30mm``)::

  inside(a, bin)          a rests in the bin (not held)
  on(a, b)  on(a, table)  a rests on cube b / on the table (outside the bin)
  held(a)                 both fingers touch a
  height(a) > 0.08        a's centre above the table (also <, >=, <=)
  distance(a, b) < 0.1    between the two centres
  moved(a, left, 0.05)    a moved at least this far that way since the step started
                          (left|right|forward|back|up|down, in the robot's frame:
                          forward = +x away from its base, left = +y, up = +z)
  unmoved(a)              a is within 1 cm of where it was when the step started
  at_home()               every arm joint within 0.05 rad of the home posture
  pointing_at(a)          the gripper is 8-25 cm straight above a
  gripper_at(x, y, z)     the grasp point within 2 cm of a point

combined with ``and``, ``or``, ``not`` and parentheses (``not`` binds tightest,
then ``and``, then ``or``). :func:`parse` refuses a bad predicate with the
column and what was expected, before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from sim_envs.tabletop.predicate_syntax import (
    DIRECTIONS,
    FUNCTIONS,
    TABLE,
    VOCABULARY,
    All,
    Node,
    Not,
    PredicateError,
    Term,
    parse_tree,
)
from sim_envs.tabletop.scene import BIN_HALF_INNER_M, BIN_ID, BIN_WALL_TOP_M, CUBE_SIZE_M, HOME_Q
from sim_envs.tabletop.truth import WorldTruth

__all__ = ["VOCABULARY", "Predicate", "PredicateError", "TermValue", "Verdict", "parse"]

UNMOVED_TOL_M = 0.01
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


@dataclass(frozen=True)
class TermValue:
    term: str
    value: bool
    measured: float | None = None
    """For height() and distance(): the number compared (metres)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"term": self.term, "value": self.value}
        if self.measured is not None:
            out["measured"] = round(self.measured, 4)
        return out


@dataclass(frozen=True)
class Verdict:
    predicate: str
    success: bool
    terms: tuple[TermValue, ...]

    def to_json(self) -> dict[str, Any]:
        return {"predicate": self.predicate, "success": self.success,
                "terms": [t.to_json() for t in self.terms]}


@dataclass(frozen=True)
class Predicate:
    text: str
    root: Node

    def terms(self) -> list[Term]:
        return list(_walk(self.root))

    @property
    def needs_start(self) -> bool:
        """Whether it compares with the world at the start of the step (moved, unmoved)."""
        return any(FUNCTIONS[t.function].needs_start for t in self.terms())

    def evaluate(self, now: WorldTruth, start: WorldTruth | None = None) -> Verdict:
        """Every term is evaluated (no short cut), so a verdict shows each one's value."""
        if self.needs_start and start is None:
            raise PredicateError(self.text, 0, "moved()/unmoved() need the world at the start "
                                 "of the step, and none was recorded")
        values: dict[Term, TermValue] = {}
        for term in self.terms():
            if term not in values:
                values[term] = _term_value(term, now, start)
        return Verdict(self.text, _truth(self.root, values), tuple(values.values()))


def _walk(node: Node) -> Iterator[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        yield from _walk(node.operand)
    else:
        for child in node.operands:
            yield from _walk(child)


def _truth(node: Node, values: dict[Term, TermValue]) -> bool:
    if isinstance(node, Term):
        return values[node].value
    if isinstance(node, Not):
        return not _truth(node.operand, values)
    results = [_truth(child, values) for child in node.operands]
    return all(results) if isinstance(node, All) else any(results)


# -- evaluation on ground truth ----------------------------------------------------------
def _term_value(term: Term, now: WorldTruth, start: WorldTruth | None) -> TermValue:
    fn, args = term.function, term.args

    def pos(name: object, w: WorldTruth = now) -> np.ndarray:
        return np.asarray(w.positions[str(name)])

    measured: float | None = None
    if fn == "inside":
        p, b = pos(args[0]), pos(args[1])
        value = bool(np.all(np.abs(p[:2] - b[:2]) < BIN_HALF_INNER_M + 0.01)
                     and p[2] < BIN_WALL_TOP_M + CUBE_SIZE_M and args[0] not in now.held)
    elif fn == "on" and args[1] == TABLE:
        value = (abs(pos(args[0])[2] - CUBE_SIZE_M / 2) < 0.01
                 and not _over_bin(pos(args[0]), pos(BIN_ID)))
    elif fn == "on":
        a, b = pos(args[0]), pos(args[1])
        value = bool(np.linalg.norm(a[:2] - b[:2]) < CUBE_SIZE_M * 0.5
                     and abs(a[2] - b[2] - CUBE_SIZE_M) < 0.01)
    elif fn == "held":
        value = args[0] in now.held
    elif fn in ("height", "distance"):
        measured = (float(pos(args[0])[2]) if fn == "height"
                    else float(np.linalg.norm(pos(args[0]) - pos(args[1]))))
        assert term.op is not None and term.threshold is not None
        value = COMPARE[term.op](measured, term.threshold)
    elif fn in ("moved", "unmoved"):
        assert start is not None
        delta = pos(args[0]) - pos(args[0], start)
        if fn == "moved":
            measured = float(delta @ np.asarray(DIRECTIONS[str(args[1])]))
            value = measured >= float(args[2])
        else:
            measured = float(np.linalg.norm(delta))
            value = measured < UNMOVED_TOL_M
    elif fn == "at_home":
        value = bool(np.max(np.abs(np.asarray(now.arm_q) - np.asarray(HOME_Q))) < 0.05)
    elif fn == "pointing_at":
        g, c = np.asarray(now.grasp_point), pos(args[0])
        value = bool(np.linalg.norm(g[:2] - c[:2]) < 0.03 and 0.08 < g[2] - c[2] < 0.25)
    elif fn == "gripper_at":
        value = bool(np.linalg.norm(np.asarray(now.grasp_point) - np.asarray(args, float)) < 0.02)
    else:  # parse() admits only FUNCTIONS
        raise AssertionError(fn)
    return TermValue(str(term), bool(value), measured)


def _over_bin(p: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(np.abs(p[:2] - b[:2]) < BIN_HALF_INNER_M + 0.01))


@lru_cache(maxsize=256)
def parse(text: str) -> Predicate:
    """The predicate ``text`` means; :class:`PredicateError` (column, what was expected) if
    it is not one."""
    return Predicate(text, parse_tree(text))
