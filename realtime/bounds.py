"""The numeric ranges of the message vocabulary, as ``msgspec`` constraints.

msgspec checks types at decode, not values: a ``float`` field takes NaN and
infinity, an ``int`` field takes 2**64 - 1. The aliases here bound every
number a message carries, so the decoder itself refuses a NaN target or a
negative timestamp, and the codec drops the message as ``out_of_range``.
A bounded float rejects NaN too (NaN fails every comparison), so "finite"
needs no check of its own.

Physical ranges are deliberately wider than any one robot's (the arm's own
reach and gripper are checked by actuation), but narrow enough that a value
outside them can only be a bug or an attack.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal, TypeAlias

import msgspec

__all__ = [
    "ANGLE_LIMIT_RAD",
    "AUDIO_RATES_HZ",
    "GRIPPER_LIMIT_M",
    "INT64_MAX",
    "REACH_LIMIT_M",
    "SCENE_LIMIT_M",
    "Angle",
    "AudioRate",
    "Channels",
    "Count",
    "Finite",
    "FocalLength",
    "GripperWidth",
    "Int64",
    "LogProb",
    "NonNegative",
    "Position",
    "QuatPart",
    "Reach",
    "WordsPerMinute",
]

INT64_MAX = 2**63 - 1
#: Largest coordinate of anything sensed (objects, camera, gripper): a room-sized scene.
SCENE_LIMIT_M = 50.0
#: Largest coordinate of a commanded target: no arm on this bus reaches further from its base.
REACH_LIMIT_M = 2.0
#: Widest gripper opening (the Panda's opens 0.08 m); measured openings may dip slightly below 0.
GRIPPER_LIMIT_M = 0.25
#: Largest angle (joint angle or yaw): two turns either way.
ANGLE_LIMIT_RAD = 4 * 3.141592653589793
#: Sample rates the audio path supports.
AUDIO_RATES_HZ = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)

_BIG = sys.float_info.max

#: Any finite float (NaN and +-inf refused).
Finite: TypeAlias = Annotated[float, msgspec.Meta(ge=-_BIG, le=_BIG)]
#: A finite float >= 0 (durations, distances, clock readings).
NonNegative: TypeAlias = Annotated[float, msgspec.Meta(ge=0.0, le=_BIG)]
#: An int that fits int64 (msgpack also carries uint64, which nothing here means).
Int64: TypeAlias = Annotated[int, msgspec.Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
#: A count, sequence number, id or monotonic timestamp: 0..int64 max.
Count: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
#: A sensed coordinate, metres.
Position: TypeAlias = Annotated[float, msgspec.Meta(ge=-SCENE_LIMIT_M, le=SCENE_LIMIT_M)]
#: A commanded coordinate, metres.
Reach: TypeAlias = Annotated[float, msgspec.Meta(ge=-REACH_LIMIT_M, le=REACH_LIMIT_M)]
#: A joint angle or yaw, radians.
Angle: TypeAlias = Annotated[float, msgspec.Meta(ge=-ANGLE_LIMIT_RAD, le=ANGLE_LIMIT_RAD)]
#: One component of a unit quaternion (a little slack for rounding).
QuatPart: TypeAlias = Annotated[float, msgspec.Meta(ge=-1.000001, le=1.000001)]
#: A gripper opening, metres (a measured one may read a hair below zero).
GripperWidth: TypeAlias = Annotated[float, msgspec.Meta(ge=-0.01, le=GRIPPER_LIMIT_M)]
#: A supported audio sample rate.
AudioRate: TypeAlias = Literal[8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]
#: Audio channels in one stream.
Channels: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=64)]
#: A speaking rate.
WordsPerMinute: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=1000)]
#: A log probability: finite and <= 0.
LogProb: TypeAlias = Annotated[float, msgspec.Meta(ge=-_BIG, le=0.0)]
#: A focal length in pixels: finite and > 0.
FocalLength: TypeAlias = Annotated[float, msgspec.Meta(gt=0.0, le=_BIG)]
