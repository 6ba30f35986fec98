"""The wire format: zero-copy arrays, limits, and one specific error per kind of bad input."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from realtime.codec import (
    MAGIC,
    Codec,
    CodecError,
    CodecLimits,
    MalformedMessageError,
    OversizedMessageError,
    TruncatedMessageError,
    UnknownMessageError,
    WrongVersionError,
)
from realtime.errors import ConfigError, RtAgentError
from realtime.messages import SCHEMA_VERSION, AudioChunk, CameraFrame, Heartbeat

PREFIX = MAGIC + bytes([SCHEMA_VERSION])


def frame_msg() -> CameraFrame:
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    depth = np.ones((480, 640), np.float32)
    return CameraFrame(rgb=rgb, depth_m=depth, width_px=640, height_px=480)


def test_encode_does_not_copy_arrays() -> None:
    msg, codec = frame_msg(), Codec()
    frames = codec.encode(msg)
    assert len(frames) == 3
    assert isinstance(frames[1], memoryview) and isinstance(frames[2], memoryview)
    assert np.shares_memory(np.frombuffer(frames[1], np.uint8), msg.rgb)
    assert np.shares_memory(np.frombuffer(frames[2], np.uint8), msg.depth_m)
    assert codec.copies == 0


def test_decode_does_not_copy_arrays_and_returns_read_only_views() -> None:
    codec = Codec()
    frames = [bytes(f) for f in codec.encode(frame_msg())]
    back = codec.decode(frames)
    assert isinstance(back, CameraFrame) and back.rgb is not None
    assert np.shares_memory(back.rgb, np.frombuffer(frames[1], np.uint8))
    assert not back.rgb.flags.writeable
    np.testing.assert_array_equal(back.rgb, frame_msg().rgb)


def test_non_contiguous_arrays_are_copied_once_and_counted() -> None:
    codec = Codec()
    pcm = np.zeros((100, 4), np.float32)[:, ::2]
    back = codec.decode(codec.encode(AudioChunk(pcm=pcm, channels=2)))
    assert isinstance(back, AudioChunk) and back.pcm is not None
    assert back.pcm.shape == (100, 2) and codec.copies == 1


@pytest.mark.parametrize("arr", [np.zeros(3, object), np.zeros(3, ">f4"), np.zeros(3, "U2")])
def test_unsafe_or_big_endian_dtypes_are_refused_on_encode(arr: np.ndarray) -> None:
    with pytest.raises(MalformedMessageError, match="not allowed"):
        Codec().encode(AudioChunk(pcm=arr))


def body(obj: object) -> bytes:
    return PREFIX + msgspec.msgpack.encode(obj)


GOOD = Codec().encode(CameraFrame(rgb=np.zeros((2, 2, 3), np.uint8)))
ARR = {"nd": 0, "dt": "|u1", "sh": [2]}

BAD: list[tuple[list[bytes], type[CodecError]]] = [
    ([], TruncatedMessageError),
    ([b""], MalformedMessageError),
    ([b"XYZ\x01" + bytes(GOOD[0])[4:]], MalformedMessageError),
    ([MAGIC + bytes([SCHEMA_VERSION + 1]) + bytes(GOOD[0])[4:]], WrongVersionError),
    ([bytes(GOOD[0])], TruncatedMessageError),
    ([bytes(GOOD[0]), bytes(GOOD[1])[:-1]], TruncatedMessageError),
    ([bytes(GOOD[0]), bytes(GOOD[1]) + b"x"], MalformedMessageError),
    ([bytes(GOOD[0]), bytes(GOOD[1]), b"extra"], MalformedMessageError),
    ([body({"type": "Teleport"})], UnknownMessageError),
    ([body({"type": 5})], UnknownMessageError),
    ([body({"no_type": 1})], MalformedMessageError),
    ([body([1, 2, 3])], MalformedMessageError),
    ([PREFIX + b"\xc1"], MalformedMessageError),
    ([PREFIX + b"\x92\x01"], MalformedMessageError),
    ([body({"type": "Heartbeat", "pid": "x"})], MalformedMessageError),
    ([body({"type": "CameraFrame", "rgb": 5})], MalformedMessageError),
    ([body({"type": "CameraFrame", "rgb": {**ARR, "dt": "|O"}}), b"xx"], MalformedMessageError),
    ([body({"type": "CameraFrame", "rgb": {**ARR, "sh": [-1]}}), b"xx"], MalformedMessageError),
    ([body({"type": "CameraFrame", "rgb": {**ARR, "sh": [1] * 9}}), b"x"], MalformedMessageError),
    ([body({"type": "CameraFrame", "rgb": {**ARR, "nd": 3}}), b"xx"], TruncatedMessageError),
    ([body({"type": "CameraFrame", "rgb": ARR, "depth_m": ARR}), b"xx"], MalformedMessageError),
    ([body({"type": "CameraFrame", "rgb": {**ARR, "extra": 1}}), b"xx"], MalformedMessageError),
]


@pytest.mark.parametrize(("frames", "error"), BAD)
def test_each_bad_input_raises_its_specific_error(
    frames: list[bytes], error: type[CodecError]
) -> None:
    with pytest.raises(error) as info:
        Codec().decode(frames)
    assert isinstance(info.value, RtAgentError)
    assert info.value.reason == error.reason


def test_size_limits_on_both_sides() -> None:
    small = Codec(CodecLimits(max_total_bytes=1000))
    with pytest.raises(OversizedMessageError, match="limit is 1000"):
        small.encode(AudioChunk(pcm=np.zeros(1000, np.int16)))
    big_frames = Codec().encode(AudioChunk(pcm=np.zeros(1000, np.int16)))
    with pytest.raises(OversizedMessageError):
        small.decode(big_frames)
    with pytest.raises(OversizedMessageError, match="header"):
        Codec(CodecLimits(max_header_bytes=10)).decode([body({"type": "Heartbeat", "node": "x" * 20})])
    with pytest.raises(OversizedMessageError, match="frames"):
        Codec(CodecLimits(max_frames=2)).decode([b"x"] * 3)
    with pytest.raises(ConfigError, match="expected an int >= 1"):
        CodecLimits(max_frames=0)


def test_wrong_version_says_what_to_do() -> None:
    with pytest.raises(WrongVersionError, match="same rtagent version"):
        Codec().decode([MAGIC + bytes([99]) + msgspec.msgpack.encode({"type": "Heartbeat"})])


def test_unencodable_values_are_a_codec_error() -> None:
    hb = Heartbeat(counters={"x": 1})
    hb.counters["y"] = object()  # type: ignore[assignment]
    with pytest.raises(MalformedMessageError, match="cannot encode"):
        Codec().encode(hb)
