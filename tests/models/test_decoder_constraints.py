"""Unit tests of the per-type value constraints over a small fake vocabulary
(the real-model twin is tests/models/test_decoder.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.callformat import ArgKind, ArgSpec
from models.constraints import EnumMatcher, NumberMatcher, StringMatcher
from tests.helpers.fake_vocab import FakeVocab

PIECES = ["=", "=-", "-", "0", "1", "2", "3", "5", "9", ".", "10", "=\"", "\"", "Os", "lo",
          "red", "_", "cube", "blue", "\"x", "a\"b", "\n", ",", "true", "false", "4", "6", "n",
          "ull", "null"]


V = FakeVocab(PIECES)


def _texts(ids: np.ndarray) -> set[str]:
    return {PIECES[i] for i in ids}


def test_number_range_prunes_sign_and_magnitude() -> None:
    y = NumberMatcher(ArgSpec("y", ArgKind.NUMBER, True, minimum=-0.5, maximum=0.5), V)  # type: ignore[arg-type]
    assert _texts(y.allowed("")) == {"=", "=-"}
    assert "1" not in _texts(y.allowed("="))  # 1.x is out of range
    assert _texts(y.allowed("=0")) == {"."}
    assert y.complete("=-0.3") and not y.complete("=-0.") and not y.complete("=0.7")
    z = NumberMatcher(ArgSpec("z", ArgKind.NUMBER, True, minimum=0.0, maximum=0.7), V)  # type: ignore[arg-type]
    assert "=-" not in _texts(z.allowed(""))  # no negative values in range
    assert z.value("=0.25") == 0.25


def test_integer_has_no_dot_and_stays_in_range() -> None:
    b = NumberMatcher(ArgSpec("b", ArgKind.INTEGER, True, minimum=0, maximum=100), V)  # type: ignore[arg-type]
    assert "." not in _texts(b.allowed("=1"))
    assert b.complete("=100") and not b.complete("=101")
    assert "9" not in _texts(b.allowed("=10"))  # 109 > 100
    assert b.value("=42") == 42


def test_enum_forces_the_rest_once_unique() -> None:
    m = EnumMatcher(["red_cube", "blue_cube"], ArgSpec("o", ArgKind.ENUM, True,
                                                       enum=("red_cube", "blue_cube")), V)  # type: ignore[arg-type]
    assert _texts(m.allowed("=")) == {"red", "blue"}
    assert m.forced("=red") == "_cube"
    assert m.complete("=red_cube") and m.value("=red_cube") == "red_cube"
    booleans = EnumMatcher([True, False], ArgSpec("on", ArgKind.BOOLEAN, True), V)  # type: ignore[arg-type]
    assert booleans.value("=false") is False


def test_strings_are_bounded_and_never_break_out() -> None:
    s = StringMatcher(ArgSpec("city", ArgKind.STRING, True, max_length=4), V)  # type: ignore[arg-type]
    assert _texts(s.allowed("")) == {"=", '="'}
    assert _texts(s.allowed("=")) == {'"', '"x'}
    inside = _texts(s.allowed('="Os'))
    assert "lo" in inside and '"' not in inside and "\n" not in inside and 'a"b' not in inside
    assert "cube" not in _texts(s.allowed('="Osl'))  # would exceed maxLength 4
    assert s.complete('="Oslo') and s.value('="Oslo') == "Oslo"


@pytest.mark.parametrize("text", ["=00", "=1.", "=.5", "=--1", "=1.2.3"])
def test_malformed_numbers_are_not_complete(text: str) -> None:
    n = NumberMatcher(ArgSpec("n", ArgKind.NUMBER, True), V)  # type: ignore[arg-type]
    assert not n.complete(text)


def test_a_lead_every_value_starts_with_is_forced_not_decided() -> None:
    def lead(m: object) -> list[str]:
        return [PIECES[i] for i in m.lead()]  # type: ignore[attr-defined]

    assert lead(EnumMatcher([True, False], ArgSpec("on", ArgKind.BOOLEAN, True), V)) == ["="]  # type: ignore[arg-type]
    assert lead(EnumMatcher(["red_cube", "blue_cube"], None, V)) == ["="]  # type: ignore[arg-type]
    assert lead(StringMatcher(ArgSpec("city", ArgKind.STRING, True), V)) == ['="']  # type: ignore[arg-type]
    unsigned = NumberMatcher(ArgSpec("n", ArgKind.INTEGER, True, minimum=0, maximum=100), V)  # type: ignore[arg-type]
    assert lead(unsigned) == ["="]
    # where values differ in their first token (`=` / `=-`), the model decides it
    signed = NumberMatcher(ArgSpec("y", ArgKind.NUMBER, True, minimum=-0.5, maximum=0.5), V)  # type: ignore[arg-type]
    assert lead(signed) == [] and lead(EnumMatcher([1, -1], None, V)) == []  # type: ignore[arg-type]


def test_a_prefix_other_than_equals_starts_the_value() -> None:
    # an array's later element: `, ` is structure, the value starts at its space
    n = NumberMatcher(ArgSpec("n", ArgKind.INTEGER, True, minimum=0, maximum=100), V,  # type: ignore[arg-type]
                      prefix="=")
    assert n.complete("=42")
    later = NumberMatcher(ArgSpec("n", ArgKind.INTEGER, True), V, prefix=",")  # type: ignore[arg-type]
    assert later.complete(",12") and later.value(",12") == 12 and not later.complete("=12")
    e = EnumMatcher(["red_cube", "blue_cube"], None, V, prefix=",")  # type: ignore[arg-type]
    assert e.complete(",red_cube") and e.value(",blue_cube") == "blue_cube"


def test_numbers_held_to_choices_force_the_rest_of_the_only_one_left() -> None:
    arg = ArgSpec("x", ArgKind.NUMBER, True, minimum=-1.0, maximum=1.0)
    n = NumberMatcher(arg, V, choices=["0.25", "-0.5", "9"])  # type: ignore[arg-type]
    assert n.choices == ("0.25", "-0.5")  # 9 is out of range
    assert n.complete("=0.25") and not n.complete("=0.2") and not n.complete("=0.3")
    assert n.forced("=0") == ".25" and n.forced("=-") == "0.5"
    assert _texts(n.allowed("=")) == {"0", "-"}  # no 1, 2, 3, 5, 9 to start with
    fine = NumberMatcher(ArgSpec("c", ArgKind.NUMBER, True), V, choices=["46.603354"])  # type: ignore[arg-type]
    assert fine.complete("=46.603354")  # the request's own precision, beyond the default 4


def test_unions_of_scalars_decode_either_option() -> None:
    from models.constraints import UnionMatcher, matcher_for

    arg = ArgSpec("v", ArgKind.UNION, True, options=(
        ArgSpec("v", ArgKind.INTEGER, True, minimum=0, maximum=100),
        ArgSpec("v", ArgKind.NULL, True)))
    m = matcher_for(arg, V)  # type: ignore[arg-type]
    assert isinstance(m, UnionMatcher)
    assert m.complete("=10") and m.value("=10") == 10
    assert m.viable("=n") and m.forced("=n") == "ull"
    assert m.complete("=null") and m.value("=null") is None
