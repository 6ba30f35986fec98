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

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from realtime.errors import ConfigError
from sim_envs.tabletop.scene import (
    BIN_HALF_INNER_M,
    BIN_ID,
    BIN_WALL_TOP_M,
    CUBE_IDS,
    CUBE_SIZE_M,
    HOME_Q,
)
from sim_envs.tabletop.truth import WorldTruth

__all__ = ["Predicate", "PredicateError", "TermValue", "Verdict", "parse", "VOCABULARY"]

TABLE = "table"
DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (0.0, 1.0, 0.0), "right": (0.0, -1.0, 0.0), "forward": (1.0, 0.0, 0.0),
    "back": (-1.0, 0.0, 0.0), "up": (0.0, 0.0, 1.0), "down": (0.0, 0.0, -1.0)}
UNMOVED_TOL_M = 0.01
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
VOCABULARY = ("inside(a, bin), on(a, b|table), held(a), height(a) > m, distance(a, b) < m, "
              "moved(a, left|right|forward|back|up|down, m), unmoved(a), at_home(), "
              "pointing_at(a), gripper_at(x, y, z)")


class PredicateError(ConfigError):
    """A predicate that cannot be parsed or evaluated; says where and what was expected."""

    def __init__(self, text: str, position: int, problem: str) -> None:
        self.text, self.position, self.problem = text, position, problem
        caret = " " * position + "^"
        super().__init__(f"predicate {text!r}: {problem} (column {position + 1})\n"
                         f"  {text}\n  {caret}")


# -- the vocabulary ----------------------------------------------------------------------
# Argument kinds: what names or values each position takes.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cube": ("a cube", CUBE_IDS),
    "object": ("an object", (*CUBE_IDS, BIN_ID)),
    "container": ("a container", (BIN_ID,)),
    "support": ("a cube or 'table'", (*CUBE_IDS, TABLE)),
    "direction": ("a direction", tuple(DIRECTIONS)),
}


@dataclass(frozen=True)
class Function:
    params: tuple[str, ...]  # KINDS, or "distance" (> 0) / "number"
    numeric: bool = False  # returns a number: needs a comparison after it
    needs_start: bool = False  # reads the pose at the start of the step


FUNCTIONS: dict[str, Function] = {
    "inside": Function(("cube", "container")),
    "on": Function(("cube", "support")),
    "held": Function(("cube",)),
    "height": Function(("object",), numeric=True),
    "distance": Function(("object", "object"), numeric=True),
    "moved": Function(("cube", "direction", "distance"), needs_start=True),
    "unmoved": Function(("cube",), needs_start=True),
    "at_home": Function(()),
    "pointing_at": Function(("cube",)),
    "gripper_at": Function(("number", "number", "number")),
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}
KEYWORDS = ("and", "or", "not")


# -- the syntax tree ---------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    function: str
    args: tuple[str | float, ...]
    op: str | None = None
    threshold: float | None = None

    def __str__(self) -> str:
        args = ", ".join(a if isinstance(a, str) else f"{a:g}" for a in self.args)
        cmp = f" {self.op} {self.threshold:g}" if self.op is not None else ""
        return f"{self.function}({args}){cmp}"


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class All:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    operands: tuple[Node, ...]


Node = Term | Not | All | AnyOf


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


# -- parsing -----------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?P<unit>[A-Za-z]*))"
                    r"|(?P<name>[A-Za-z_]\w*)|(?P<op>>=|<=|>|<)|(?P<punct>[(),]))")


@dataclass(frozen=True)
class Token:
    kind: str  # number, name, op, punct, end
    text: str
    pos: int
    value: float = 0.0


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        match = _TOKEN.match(text, i)
        if match is None or match.end() == i:
            at = i + len(text[i:]) - len(text[i:].lstrip())
            raise PredicateError(text, at, f"unexpected character {text[at]!r}")
        kind = match.lastgroup if match.lastgroup != "unit" else "number"
        start = match.start(kind)
        word = match.group(kind)
        value = 0.0
        if kind == "number":
            unit = match.group("unit")
            if unit and unit not in UNITS:
                raise PredicateError(text, match.start("unit"),
                                     f"unknown unit {unit!r}; expected m, cm or mm (or none: metres)")
            value = float(word[: len(word) - len(unit)]) * UNITS[unit or "m"]
        out.append(Token(kind, word, start, value))
        i = match.end()
    out.append(Token("end", "", len(text)))
    return out


def _described(tok: Token) -> str:
    return "the end of the predicate" if tok.kind == "end" else repr(tok.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Token, problem: str) -> PredicateError:
        return PredicateError(self.text, tok.pos, problem)

    def expect_punct(self, char: str, context: str) -> Token:
        tok = self.take()
        if tok.kind != "punct" or tok.text != char:
            raise self.fail(tok, f"expected {char!r} {context}, got {_described(tok)}")
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "name" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), f"empty; expected a condition such as {VOCABULARY}")
        node = self.any_of()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, f"expected 'and', 'or' or the end, got {_described(tok)}")
        return node

    def any_of(self) -> Node:
        items = [self.all_of()]
        while self.keyword("or"):
            items.append(self.all_of())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def all_of(self) -> Node:
        items = [self.negation()]
        while self.keyword("and"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else All(tuple(items))

    def negation(self) -> Node:
        if self.keyword("not"):
            return Not(self.negation())
        return self.atom()

    def atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.take()
            node = self.any_of()
            self.expect_punct(")", "to close the '('")
            return node
        if tok.kind == "name" and tok.text.lower() not in KEYWORDS:
            return self.call()
        raise self.fail(tok, "expected a condition such as on(a, b), 'not' or '(', "
                             f"got {_described(tok)}")

    def call(self) -> Term:
        name = self.take()
        fn = FUNCTIONS.get(name.text)
        if fn is None:
            close = difflib.get_close_matches(name.text, list(FUNCTIONS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.fail(name, f"unknown function {name.text!r}; {hint}expected one of: "
                                  f"{VOCABULARY}")
        self.expect_punct("(", f"after {name.text!r}")
        args: list[str | float] = []
        arity = f"{name.text}() takes {len(fn.params)} argument{'s' * (len(fn.params) != 1)}"
        for k, kind in enumerate(fn.params):
            if k:
                tok = self.take()
                if tok.kind == "punct" and tok.text == ")":
                    raise self.fail(tok, f"{arity}, got {k}")
                if tok.kind != "punct" or tok.text != ",":
                    raise self.fail(tok, f"expected ',' in {name.text}(), got {_described(tok)}")
            args.append(self.argument(name.text, k, kind))
        tok = self.take()
        if tok.kind == "punct" and tok.text == ",":
            raise self.fail(tok, f"{arity}, got more")
        if tok.kind != "punct" or tok.text != ")":
            if not fn.params:
                raise self.fail(tok, f"{arity}; expected ')', got {_described(tok)}")
            raise self.fail(tok, f"expected ')' after {name.text}()'s arguments, "
                                 f"got {_described(tok)}")
        objects = [a for a, kind in zip(args, fn.params, strict=True)
                   if kind in ("cube", "object", "support")]
        if len(objects) == 2 and objects[0] == objects[1]:
            raise self.fail(name, f"{name.text}() names {objects[0]!r} twice; "
                                  "expected two different objects")
        op: str | None = None
        threshold: float | None = None
        nxt = self.peek()
        if fn.numeric:
            tok = self.take()
            if tok.kind != "op":
                raise self.fail(tok, f"{name.text}() is a number (metres): expected a comparison "
                                     f"(>, <, >=, <=) after it, got {_described(tok)}")
            num = self.take()
            if num.kind != "number":
                raise self.fail(num, f"expected a number after {tok.text!r}, got {_described(num)}")
            op, threshold = tok.text, num.value
        elif nxt.kind == "op":
            raise self.fail(nxt, f"{name.text}() is true or false; it cannot be compared "
                                 "(only height() and distance() can)")
        return Term(name.text, tuple(args), op, threshold)

    def argument(self, function: str, k: int, kind: str) -> str | float:
        tok = self.take()
        where = f"argument {k + 1} of {function}()"
        if kind in ("number", "distance"):
            if tok.kind != "number":
                raise self.fail(tok, f"{where}: expected a number (metres), got {_described(tok)}")
            if kind == "distance" and tok.value <= 0:
                raise self.fail(tok, f"{where}: expected a distance > 0, got {tok.text}")
            return tok.value
        what, names = KINDS[kind]
        if tok.kind != "name" or tok.text not in names:
            close = difflib.get_close_matches(tok.text, names, n=1) if tok.kind == "name" else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem = "unknown" if tok.kind == "name" else "expected"
            raise self.fail(tok, f"{where}: {problem} {_described(tok)}{hint}; expected {what}: "
                                 + ", ".join(names))
        return tok.text


@lru_cache(maxsize=256)
def parse(text: str) -> Predicate:
    """The predicate ``text`` means; :class:`PredicateError` (column, what was expected) if
    it is not one."""
    return Predicate(text, _Parser(text).parse())
