"""Values taken from the request, without a model: the numbers a request writes, the spans
a string may copy, each used once per call (the decoder's use of them on the real model
is in tests/models/test_decoder_schema.py)."""

from __future__ import annotations

import pytest

from models.argspec import ArgKind, ArgSpec
from models.constraints import StringMatcher
from models.copyspans import CopySpans
from models.simpletool.said import request_numbers
from tests.helpers.fake_vocab import FakeVocab

PIECES = ["=", '="', '"', "San", " Francisco", " Fr", "ancisco", " and", " Sydney", "Syd",
          "ney", "s", "an", "pet", " friendly", "Pet", "P", "e", "t", "x", " "]


V = FakeVocab(PIECES)


@pytest.mark.parametrize(("request_", "numbers"), [
    ("move to x 0.3, y -0.25, z 0.30", ["0.3", "-0.25", "0.3"]),
    ("standings for the 2022-2023 season", ["2022", "2023"]),  # a dash there is no sign
    ("cash flows [-50000, 10000] at 8% over 1,500 miles", ["-50000", "10000", "8", "0.08",
                                                          "1500"]),
    ("three bottles and a dozen eggs", ["3", "12"]),
    ("no numbers at all", []),
])
def test_the_numbers_a_request_writes(request_: str, numbers: list[str]) -> None:
    assert request_numbers(request_) == numbers


def test_a_string_copies_a_span_of_the_request_from_word_start_to_word_end() -> None:
    spans = CopySpans("time between San Francisco and Sydney", V)  # type: ignore[arg-type]
    assert spans.viable("") and spans.viable("San Fr") and spans.viable("syd")
    assert not spans.viable("an Francisco")  # not at a word start
    assert spans.complete("San Francisco") and spans.complete("sydney")  # any case
    assert not spans.complete("San Fr")  # not at a word end
    assert spans.forced("San Fr") == "ancisco" and spans.forced("San") is None
    allowed = {PIECES[i] for i in spans.allowed("San", room=40)}
    assert " Francisco" in allowed and " Fr" in allowed and " and" not in allowed
    spans.take("San Francisco")  # one value per span and call
    assert not spans.viable("San") and spans.complete("Sydney")


def test_a_string_matcher_held_to_spans_allows_nothing_else() -> None:
    spans = CopySpans("a pet friendly hotel", V)  # type: ignore[arg-type]
    m = StringMatcher(ArgSpec("kind", ArgKind.STRING, True), V, copy=spans)  # type: ignore[arg-type]
    assert {PIECES[i] for i in m.allowed('="')} >= {"pet", "Pet", "P"}
    assert m.complete('="Pet') and not m.complete('="Pe') and not m.complete('="x')
    assert m.forced('="Pe') == "t" and m.value('="pet friendly') == "pet friendly"


def test_numbers_an_earlier_call_used_go_to_later_calls_only_where_none_else_fits() -> None:
    from control.tools import ToolCall
    from models.simpletool.said import RequestValues

    request = "play Taylor Swift for 20 minutes and Maroon 5 for 15 minutes"
    earlier = [ToolCall("play", {"artist": "Taylor Swift", "minutes": 20})]
    said = RequestValues.of(request, V, earlier)  # type: ignore[arg-type]
    assert said.numbers == ["5", "15"] and said.written == ("20", "5", "15")
    minutes = ArgSpec("minutes", ArgKind.INTEGER, False, minimum=10, maximum=60)
    assert said.offers(minutes) and not said.offers(minutes, need=2)  # 15 only
    said.use(15)
    assert not said.offers(minutes)  # an optional one is no longer offered
    both = RequestValues.of("stock prices of Microsoft and Apple over 30 days", V,  # type: ignore[arg-type]
                            [ToolCall("stock", {"days": 30})])
    assert both.numbers == [] and both.written == ("30",)  # (taken again: the only one)


def test_a_number_written_with_trailing_zeros_is_offered_as_written_and_used_up_as_its_value(
        ) -> None:
    """"y 0.0": a model copying it writes ``0.`` next; offering only ``0`` forced that on
    to the request's next number (``0.3``), the arm went to the wrong place."""
    from models.constraints import NumberMatcher
    from models.simpletool.said import RequestValues, request_spellings

    request = "move the gripper to x 0.5 y 0.0 z 0.30"
    assert request_spellings(request) == {"0": ("0.0",), "0.3": ("0.30",)}
    said = RequestValues.of(request, V)  # type: ignore[arg-type]
    y = ArgSpec("y", ArgKind.NUMBER, True)
    m = said.narrow(NumberMatcher(y, V), y)  # type: ignore[arg-type]
    assert m.complete("=0.0") and m.complete("=0") and m.complete("=0.30")
    assert m.value("=0.0") == 0.0 and not m.complete("=0.7")
    said.take(m, "=0.0")
    assert said.numbers == ["0.5", "0.3"]  # the one occurrence is gone, in either spelling
