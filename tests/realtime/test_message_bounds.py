"""Bounded numbers in the vocabulary: NaN, infinity and out-of-range values are refused at
decode (``out_of_range``), counted and logged by the receiving socket; frames of the wrong
Python type get a clear codec error instead of a bare TypeError."""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.bounds import INT64_MAX, REACH_LIMIT_M
from realtime.bus import Subscriber
from realtime.bus_base import decode_or_drop
from realtime.codec import MAGIC, Codec, CodecError, MalformedMessageError, OutOfRangeError
from realtime.endpoints import RunDirectory
from realtime.messages import SCHEMA_VERSION, Command, Message

PREFIX = MAGIC + bytes([SCHEMA_VERSION])
NAN, INF = math.nan, math.inf


def frames(tag: str, **fields: Any) -> list[bytes]:
    return [PREFIX + msgspec.msgpack.encode({"type": tag, **fields})]


OUT_OF_RANGE = [
    ("Command", {"target_position_m": [NAN, INF, 0.0]}, "target_position_m[0]"),
    ("Command", {"target_position_m": [0.5, 0.0, -INF]}, "target_position_m[2]"),
    ("Command", {"target_position_m": [REACH_LIMIT_M + 0.1, 0.0, 0.2]}, "target_position_m[0]"),
    ("Command", {"target_orientation_xyzw": [0.0, 2.0, 0.0, 0.0]}, "target_orientation_xyzw[1]"),
    ("Command", {"gripper_width_m": NAN}, "gripper_width_m"),
    ("Command", {"gripper_width_m": 1.0}, "gripper_width_m"),
    ("Command", {"yaw_rad": INF}, "yaw_rad"),
    ("Command", {"joint_target_rad": [0.0, NAN]}, "joint_target_rad[1]"),
    ("Command", {"max_speed_m_s": -1.0}, "max_speed_m_s"),
    ("Command", {"seq": 2**64 - 1}, "seq"),
    ("Command", {"t_ns": -1}, "t_ns"),
    ("Command", {"deadline_ns": -5}, "deadline_ns"),
    ("JointState", {"positions_rad": [0.0, NAN]}, "positions_rad[1]"),
    ("JointState", {"velocities_rad_s": [INF]}, "velocities_rad_s[0]"),
    ("JointState", {"sim_time_s": -1.0}, "sim_time_s"),
    ("JointTargets", {"positions_rad": [NAN] * 7}, "positions_rad[0]"),
    ("JointTargets", {"gripper_opening_m": INF}, "gripper_opening_m"),
    ("WorldState", {"objects": [{"id": "x", "position_m": [0.0, NAN, 0.0]}]}, "position_m[1]"),
    ("WorldState", {"gripper": {"opening_m": -INF}}, "opening_m"),
    ("CameraFrame", {"intrinsics": {"fx_px": 0.0, "fy_px": 1.0, "cx_px": 0.0, "cy_px": 0.0}},
     "fx_px"),
    ("CameraFrame", {"view_matrix": [NAN] * 16}, "view_matrix[0]"),
    ("AudioChunk", {"sample_rate_hz": 12345}, "sample_rate_hz"),
    ("AudioChunk", {"channels": 0}, "channels"),
    ("Transcript", {"avg_logprob": 0.5}, "avg_logprob"),
    ("Heartbeat", {"counters": {"x": 2**64 - 1}}, "counters"),
    ("TraceEvent", {"args": {"x": NAN}}, "args"),
]


@pytest.mark.parametrize(("tag", "fields", "where"), OUT_OF_RANGE,
                         ids=[f"{t}.{w}" for t, _, w in OUT_OF_RANGE])
def test_out_of_range_numbers_are_refused_at_decode(tag: str, fields: dict[str, Any],
                                                    where: str) -> None:
    with pytest.raises(OutOfRangeError, match="out of range") as info:
        Codec().decode(frames(tag, **fields))
    assert info.value.reason == "out_of_range"
    assert where in str(info.value) and tag in str(info.value)


def test_bounds_are_inclusive_and_ordinary_values_pass() -> None:
    msg = Codec().decode(frames("Command", mode="move", seq=INT64_MAX, t_ns=0,
                                target_position_m=[REACH_LIMIT_M, -REACH_LIMIT_M, 0.0],
                                gripper_width_m=0.0, joint_target_rad=[0.0] * 7))
    assert isinstance(msg, Command) and msg.seq == INT64_MAX


def test_a_wrong_literal_is_malformed_not_out_of_range() -> None:
    with pytest.raises(MalformedMessageError) as info:
        Codec().decode(frames("Command", mode="fly"))
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(("bad", "says"), [
    (["RTA\x02"], "frame 0 is of type 'str'"),
    ([PREFIX, 5], "frame 1 is of type 'int'"),
    ("RTA\x02", "not one of type 'str'"),
    (b"RTA\x02", "not one of type 'bytes'"),
    (7, "not one of type 'int'"),
])
def test_frames_of_the_wrong_python_type_get_a_clear_codec_error(bad: Any, says: str) -> None:
    with pytest.raises(MalformedMessageError, match=says):
        Codec().decode(bad)


def test_a_receiver_counts_and_logs_an_out_of_range_message(
        caplog: pytest.LogCaptureFixture) -> None:
    with RunDirectory() as rd, Subscriber(rd.endpoint("s"), [""], bind=True) as sub:
        with caplog.at_level(logging.WARNING, logger="rtagent.bus"):
            assert decode_or_drop(sub, frames("Command", target_position_m=[NAN, 0.0, 0.0])) is None
        assert sub.stats.dropped == {"out_of_range": 1}
        assert "out_of_range" in caplog.text and "target_position_m" in caplog.text


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, msgspec.Struct):
        return [x for f in value.__struct_fields__ for x in _numbers(getattr(value, f))]
    return []


floats = st.floats(allow_nan=True, allow_infinity=True)
ints = st.integers(-(2**63), 2**64 - 1)


@settings(max_examples=300, deadline=None)
@given(tag=st.sampled_from(["Command", "JointState", "JointTargets", "WorldState"]),
       vec=st.lists(floats, min_size=3, max_size=3), x=floats, n=ints)
def test_whatever_decodes_carries_only_finite_numbers(tag: str, vec: list[float], x: float,
                                                      n: int) -> None:
    fields: dict[str, Any] = {"seq": n, "t_ns": n}
    if tag == "Command":
        fields |= {"target_position_m": vec, "yaw_rad": x, "gripper_width_m": x}
    elif tag == "WorldState":
        fields |= {"objects": [{"id": "c", "position_m": vec, "yaw_rad": x}], "version": n}
    else:
        fields |= {"positions_rad": vec, "gripper_opening_m": x}
    try:
        msg: Message = Codec().decode(frames(tag, **fields))
    except OutOfRangeError:
        return
    values = _numbers(msg)
    assert all(math.isfinite(v) for v in values)
    assert 0 <= msg.seq <= INT64_MAX and 0 <= msg.t_ns <= INT64_MAX


frame_like = st.one_of(st.binary(max_size=40), st.binary(max_size=40).map(lambda b: PREFIX + b),
                       st.text(max_size=10), st.integers(), st.none(), st.floats(),
                       st.binary(max_size=40).map(bytearray), st.binary(max_size=40).map(memoryview))


@settings(max_examples=300, deadline=None)
@given(frames=st.one_of(st.lists(frame_like, max_size=4), frame_like))
def test_decode_of_anything_raises_only_codec_errors(frames: Any) -> None:
    try:
        Codec().decode(frames)
    except CodecError as exc:
        assert exc.reason in {"malformed", "truncated", "oversized", "wrong_version",
                              "unknown_type", "out_of_range"}


def test_the_audio_rate_type_lists_the_supported_rates() -> None:
    from typing import get_args

    from realtime.bounds import AUDIO_RATES_HZ, AudioRate

    assert get_args(AudioRate) == AUDIO_RATES_HZ
    for rate in AUDIO_RATES_HZ:
        assert Codec().decode(frames("AudioChunk", sample_rate_hz=rate)).sample_rate_hz == rate  # type: ignore[attr-defined]
