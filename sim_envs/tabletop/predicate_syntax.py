"""The outcome predicates' language: vocabulary, syntax tree and parser.

:func:`parse_tree` turns ``on(blue_cube, red_cube) and not held(blue_cube)`` into
a tree of :class:`Term` (one function call, with its comparison for numbers),
:class:`Not`, :class:`All` (and) and :class:`AnyOf` (or), or raises
:class:`PredicateError` with the column and what was expected. Evaluating a
tree on the simulator's state is :mod:`sim_envs.tabletop.predicates`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from realtime.errors import ConfigError
from sim_envs.tabletop.scene import BIN_ID, CUBE_IDS

__all__ = ["DIRECTIONS", "FUNCTIONS", "TABLE", "VOCABULARY", "All", "AnyOf", "Node", "Not",
           "PredicateError", "Term", "parse_tree"]

TABLE = "table"
DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (0.0, 1.0, 0.0), "right": (0.0, -1.0, 0.0), "forward": (1.0, 0.0, 0.0),
    "back": (-1.0, 0.0, 0.0), "up": (0.0, 0.0, 1.0), "down": (0.0, 0.0, -1.0)}
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


def parse_tree(text: str) -> Node:
    """The syntax tree of ``text``; :class:`PredicateError` if it is not a predicate."""
    return _Parser(text).parse()
