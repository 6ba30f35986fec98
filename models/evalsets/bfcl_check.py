"""BFCL's AST match, mirrored: is a model's output one of the possible answers?

A port of ``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` (``bfcl-eval==2026.3.23``,
Apache-2.0), Python language only, rule for rule, so a score here is the score BFCL's
checker gives (it is not imported: the package's dependencies are not installed):

- *simple*: exactly one call; *multiple*: exactly one call, checked against the
  function its possible answer names; *parallel* / *parallel_multiple*: as many calls
  as possible answers, matched in any order (each answer takes the first unmatched call
  that fits).
- A call fits when the name is right, every required parameter is there, every given
  parameter is one the answer lists, and every listed parameter is given unless ``""``
  is among its possible values (optional).
- Types as BFCL's ``type_checker``: ``float`` accepts an int (converted), ``tuple``
  takes a list, a value of the possible answers' type passes as a "variable"; nested
  types checked one level deep.
- Values: strings after ``standardize_string`` (spaces and ``,./-_*^`` removed, lower
  case, ``'`` -> ``"``) must be among the possible ones; lists compared element-wise
  after the same; dicts key by key (every key known, each value possible, missing keys
  only where optional); lists of dicts in order; anything else by Python ``in``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ast_match"]

_PY_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool,
                              "array": list, "tuple": list, "dict": dict, "any": str}
_NESTED = ("array", "tuple")

Verdict = tuple[bool, str]  # (valid, why not)


def _answer_type(possible: list[Any]) -> type | None:
    return next((type(a) for a in possible if a != ""), None)


def _type_check(param: str, value: Any, possible: list[Any], expected: type,
                nested: type | None) -> tuple[bool, bool, str]:
    """(valid, is_variable, error) as BFCL's ``type_checker``."""
    answer_type = _answer_type(possible)
    is_variable = answer_type is not None and answer_type != expected
    valid, error = True, ""
    if type(value) is expected:
        if nested is None:
            return True, is_variable, ""
        for item in possible:
            fits = True
            if type(item) is list:
                for v in value:
                    if not _type_check(param, v, item, nested, None)[0]:
                        fits = False
                        break
            if fits:
                return True, is_variable, ""
        valid, error = False, f"nested type check failed for {param!r}"
    if answer_type is not None and type(value) is answer_type:
        return valid, True, error  # (a nested failure stays one, as in BFCL)
    return False, False, error or f"wrong type for {param!r}: {type(value).__name__}"


def _std(text: str) -> str:
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", text).lower().replace("'", '"')


def _string_ok(value: str, possible: list[Any]) -> bool:
    return _std(value) in [_std(p) for p in possible if type(p) is str]


def _list_ok(value: list[Any], possible: list[Any]) -> bool:
    got = [_std(v) if type(v) is str else v for v in value]
    options = [[_std(x) if type(x) is str else x for x in p] for p in possible]
    return got in options


def _dict_ok(value: Mapping[str, Any], possible: list[Any]) -> bool:
    for answer in possible:
        if answer == "":
            continue
        fits = True
        for key, v in value.items():
            if key not in answer:
                fits = False
                break
            std = _std(v) if type(v) is str else v
            options = [_std(p) if type(p) is str else p for p in answer[key]]
            if std not in options:
                fits = False
                break
        for key, options in answer.items():
            if key not in value and "" not in options:
                fits = False
                break
        if fits:
            return True
    return False


def _list_of_dicts_ok(value: list[Any], possible: list[Any]) -> bool:
    for answer in possible:
        if len(value) != len(answer):
            continue
        if all(_dict_ok(v, [a]) for v, a in zip(value, answer, strict=True)):
            return True
    return False


def _simple(function: Mapping[str, Any], output: Mapping[str, Any],
            answer: Mapping[str, Any]) -> Verdict:
    possible = list(answer.values())[0]
    name = function["name"]
    details = function["parameters"]["properties"]
    if name not in output:
        return False, f"function {name!r} not in the output"
    given = output[name]
    for param in function["parameters"]["required"]:
        if param not in given:
            return False, f"missing required parameter {param!r}"
    for param, value in given.items():
        if param not in details or param not in possible:
            return False, f"unexpected parameter {param!r}"
        kind = details[param]["type"]
        expected = _PY_TYPES[kind]
        nested = _PY_TYPES[details[param]["items"]["type"]] if kind in _NESTED else None
        if kind == "tuple" and type(value) is tuple:
            value = list(value)
        if kind == "float" and type(value) is int:
            value = float(value)
        ok, is_variable, error = _type_check(param, value, possible[param], expected, nested)
        if not ok:
            return False, error
        if not is_variable:
            if expected is dict:
                special = _dict_ok(value, possible[param])
            elif expected is list and nested is dict:
                special = _list_of_dicts_ok(value, possible[param])
            elif expected is str:
                special = _string_ok(value, possible[param])
            elif expected is list:
                special = _list_ok(value, possible[param])
            else:
                special = None
            if special is not None:
                if not special:
                    return False, f"wrong value for {param!r}: {value!r}"
                continue
        if value not in possible[param]:
            return False, f"wrong value for {param!r}: {value!r}"
    for param, options in possible.items():
        if param not in given and "" not in options:
            return False, f"optional parameter {param!r} not given and not marked optional"
    return True, ""


def _find(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((f for f in functions if f["name"] == name), None)


def ast_match(category: str, functions: Sequence[Mapping[str, Any]],
              output: Sequence[Mapping[str, Any]], answers: Sequence[Mapping[str, Any]]
              ) -> Verdict:
    """BFCL's verdict on ``output`` (``[{name: {arg: value}}]``) for a case of
    ``category`` with its function docs and possible answers."""
    if "parallel" in category:
        if len(output) != len(answers):
            return False, "wrong number of calls"
        matched: list[int] = []
        for answer in answers:
            function = _find(functions, next(iter(answer)))
            if function is None:
                return False, "the possible answer names no given function"
            for i, call in enumerate(output):
                if i not in matched and _simple(function, call, answer)[0]:
                    matched.append(i)
                    break
            else:
                return False, f"no call matches the possible answer {next(iter(answer))!r}"
        return True, ""
    if len(output) != 1 or len(answers) < 1:
        return False, "wrong number of calls"
    function = functions[0] if "multiple" not in category else _find(functions,
                                                                    next(iter(answers[0])))
    if function is None:
        return False, "the possible answer names no given function"
    return _simple(function, output[0], answers[0])
