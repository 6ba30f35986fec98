"""rtagent bench decoder's scoring (models.evalsets.tally): what one case adds to the
tallies and to the per-case rows."""

from __future__ import annotations

from typing import Any

from control.tools import ToolCall
from models.decoder import DecodeError, DecodeResult
from models.evalsets.score import Case
from models.evalsets.tally import Tally, decode_case


class _Fixed:
    def __init__(self, calls: list[ToolCall] | None) -> None:
        self.calls = calls

    def decode(self, ctx: Any, tools: Any) -> DecodeResult:
        if self.calls is None:
            raise DecodeError("no valid continuation")
        return DecodeResult(self.calls, latency_ms=120.0, prompt_tokens=40, forward_passes=3,
                            sampled_tokens=4, json_tokens=16, text="")


CASE = Case("v-1", ({"role": "user", "content": "weather in Oslo"},),
            ({"name": "get_weather", "arguments": {"city": "Oslo"}},))


def test_a_case_row_says_what_was_decoded_and_whether_it_matched() -> None:
    tally = Tally()
    row = decode_case(_Fixed([ToolCall("get_weather", {"city": "Oslo"})]), None, CASE, [], (tally,))
    assert row["exact"] and row["forward_passes"] == 3 and row["latency_ms"] == 120.0
    assert row["calls"] == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    wrong = decode_case(_Fixed([ToolCall("get_time", {"city": "Oslo"})]), None, CASE, [], (tally,))
    assert not wrong["exact"]
    s = tally.summary()
    assert (s["cases"], s["exact"], s["passes_per_answer"], s["compression"]) == (2, 0.5, 3, 4.0)


def test_a_failed_decode_is_an_error_row_and_counts_as_wrong() -> None:
    tally = Tally()
    row = decode_case(_Fixed(None), None, CASE, [], (tally,))
    assert row == {"error": "no valid continuation", "exact": False}
    assert (tally.summary()["cases"], tally.summary()["errors"]) == (1, 1)


def test_a_judge_scores_cases_without_expected_calls() -> None:
    tally = Tally()
    case = Case("bfcl-1", CASE.messages)
    calls = [ToolCall("get_weather", {"city": "Oslo"})]
    row = decode_case(_Fixed(calls), None, case, [], (tally,), judge=lambda got: (True, False))
    assert row["exact"] and tally.summary()["exact"] == 1.0 and tally.summary()["tool"] == 0.0
    decode_case(_Fixed(calls), None, case, [], (tally,), judge=lambda got: (False, True))
    assert tally.summary()["exact"] == 0.5 and tally.summary()["tool"] == 0.5
