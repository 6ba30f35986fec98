"""The one message vocabulary shared by every rtagent process.

Every message is a ``msgspec.Struct`` in one tagged union (:data:`AnyMessage`,
tag field ``"type"`` = the class name), so a receiver decodes bytes straight
into the right class and rejects anything else. No pickle. Every message has:

- ``source``: the sending node's name (stamped by the publisher when empty),
- ``seq``: a per-sender sequence number (stamped by the publisher),
- ``t_ns``: ``time.monotonic_ns()`` *at the source*, i.e. when the data was
  captured or decided (stamped at send time when the producer left it 0).
  Monotonic clocks are per host: compare ``t_ns`` across hosts only after
  offset estimation (the bus gives receive-side ages for that case).

The schema version (:data:`SCHEMA_VERSION`) travels in every message's
header on the wire (see :mod:`realtime.codec`) and is readable as
``msg.schema_version``. Bump it on any incompatible change.

numpy arrays (camera frames, audio) are plain ``numpy.ndarray`` fields here;
the codec sends each as its own zero-copy frame with dtype and shape in the
header. Arrays decoded from the wire are read-only views of the received
buffer. Units are in field names (``_m``, ``_rad``, ``_ns``, ``_hz``, ``_px``).

Every number is bounded (:mod:`realtime.bounds`): finite, and within its
physical range where it has one, checked by the decoder itself, so a NaN
target or a negative timestamp never reaches a handler.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

import msgspec
import numpy.typing as npt

from realtime.bounds import (
    Angle,
    AudioRate,
    Channels,
    Count,
    Finite,
    FocalLength,
    GripperWidth,
    Int64,
    LogProb,
    NonNegative,
    Position,
    QuatPart,
    Reach,
    WordsPerMinute,
)

__all__ = [
    "SCHEMA_VERSION",
    "Ack",
    "AnyMessage",
    "Array",
    "AudioChunk",
    "CameraFrame",
    "CameraIntrinsics",
    "Command",
    "GripperState",
    "Heartbeat",
    "JointState",
    "JointTargets",
    "LogEvent",
    "Message",
    "ObjectState",
    "PlaybackControl",
    "SpeechOut",
    "ToolReply",
    "ToolRequest",
    "TraceEvent",
    "Transcript",
    "WorldState",
    "message_types",
]

#: Version of this vocabulary on the wire. Receivers drop other versions.
#: 2: every number bounded (:mod:`realtime.bounds`); version 1 took NaN and uint64.
SCHEMA_VERSION = 2

#: A numpy array field; sent as a separate zero-copy frame.
Array: TypeAlias = npt.NDArray[Any]

Vec3: TypeAlias = tuple[Position, Position, Position]  # something sensed
Target3: TypeAlias = tuple[Reach, Reach, Reach]  # something commanded
Size3: TypeAlias = tuple[NonNegative, NonNegative, NonNegative]
Quat: TypeAlias = tuple[QuatPart, QuatPart, QuatPart, QuatPart]
Scalar: TypeAlias = str | Int64 | Finite | bool | None


class Message(msgspec.Struct, tag_field="type", tag=True, kw_only=True):
    """Base of every message: who sent it, its sequence number, when (monotonic ns)."""

    source: str = ""
    seq: Count = 0
    t_ns: Count = 0

    schema_version: ClassVar[int] = SCHEMA_VERSION


# ----------------------------------------------------------------------------- robot


class JointState(Message):
    """The arm's measured joint state (sim or hardware -> everyone)."""

    names: list[str] = []
    positions_rad: list[Angle] = []
    velocities_rad_s: list[Finite] = []
    efforts_nm: list[Finite] = []
    gripper_opening_m: GripperWidth = 0.0
    sim_time_s: NonNegative = 0.0  # the simulator's clock (0 on hardware)


class CameraIntrinsics(msgspec.Struct, kw_only=True):
    """Pinhole intrinsics in pixels."""

    fx_px: FocalLength
    fy_px: FocalLength
    cx_px: Finite
    cy_px: Finite


class CameraFrame(Message):
    """One camera capture. Arrays are optional so a camera can send only what it has.

    ``rgb``: (H, W, 3) uint8. ``depth_m``: (H, W) float32, metres along the
    optical axis (already linearised). ``segmentation``: (H, W) int32 object ids.
    ``view_matrix`` and ``projection_matrix``: 16 floats, column-major (PyBullet/OpenGL).
    """

    camera: str = "main"
    width_px: Count = 0
    height_px: Count = 0
    rgb: Array | None = None
    depth_m: Array | None = None
    segmentation: Array | None = None
    intrinsics: CameraIntrinsics | None = None
    view_matrix: list[Finite] = []
    projection_matrix: list[Finite] = []
    camera_position_m: Vec3 | None = None
    near_m: NonNegative = 0.0
    far_m: NonNegative = 0.0
    sim_time_s: NonNegative = 0.0


class ObjectState(msgspec.Struct, kw_only=True):
    """One perceived object."""

    id: str
    colour: str = ""
    shape: str = ""
    position_m: Vec3 = (0.0, 0.0, 0.0)
    orientation_xyzw: Quat | None = None
    size_m: Size3 = (0.0, 0.0, 0.0)
    visible: bool = True
    yaw_rad: Angle = 0.0  # rotation about the vertical axis
    held: bool = False  # in the gripper
    pixels: Count = 0  # how many image pixels it covered (0: not seen in the last frame)
    seen_s: NonNegative = 0.0  # when it was last seen (sim time)


class GripperState(msgspec.Struct, kw_only=True):
    position_m: Vec3 = (0.0, 0.0, 0.0)
    opening_m: GripperWidth = 0.0
    holding: str | None = None  # id of the held object


class WorldState(Message):
    """Perception's view of the world. ``version`` increases whenever it changes
    (speculation keys results on it); ``frame_seq`` is the camera frame it came from."""

    version: Count = 0
    frame_seq: Count = 0
    objects: list[ObjectState] = []
    gripper: GripperState = msgspec.field(default_factory=GripperState)
    arm_q_rad: list[Angle] = []  # the joint angles the world state was computed with
    sim_time_s: NonNegative = 0.0


CommandMode = Literal["hold", "move", "safe_stop"]


class Command(Message):
    """Decision -> actuation, every tick.

    ``mode``: ``move`` toward the target, ``hold`` the current pose, ``safe_stop``
    (stop and stay stopped until a later ``move``). ``deadline_ns``: sender's
    monotonic clock; actuation ignores the command after it (0 = no deadline).
    """

    mode: CommandMode = "hold"
    target_position_m: Target3 | None = None
    target_orientation_xyzw: Quat | None = None
    gripper: Literal["open", "close"] | None = None
    gripper_width_m: GripperWidth | None = None  # finger opening; overrides ``gripper`` when set
    yaw_rad: Angle = 0.0  # gripper rotation about the vertical (top-down grasps)
    joint_target_rad: list[Angle] | None = None  # a joint-space target instead of a position
    max_speed_m_s: NonNegative | None = None
    deadline_ns: Count = 0
    tick: Count = 0
    reason: str = ""


class JointTargets(Message):
    """Actuation -> sim: what the arm is actually told to do (after IK and limits)."""

    positions_rad: list[Angle] = []
    gripper_opening_m: GripperWidth | None = None
    max_velocity_rad_s: NonNegative | None = None
    command_seq: Count = 0  # seq of the Command this came from (0: none)
    held: bool = False  # True when this is a hold (watchdog or mode=hold)


# ----------------------------------------------------------------------------- voice


class AudioChunk(Message):
    """A block of PCM audio. ``pcm``: (n,) or (n, channels), int16 or float32 in [-1, 1].

    ``start_sample`` is the index of the first sample in the stream, so gaps
    (dropped chunks) are visible.
    """

    stream: str = "mic"
    pcm: Array | None = None
    sample_rate_hz: AudioRate = 16000
    channels: Channels = 1
    start_sample: Count = 0


class Transcript(Message):
    """Speech-to-text output, partial or final, for one utterance."""

    text: str = ""
    is_final: bool = False
    utterance_id: Count = 0
    audio_start_ns: Count = 0
    audio_end_ns: Count = 0
    avg_logprob: LogProb | None = None


class SpeechOut(Message):
    """A request to speak (TTS). ``interrupt`` cuts what is playing now."""

    text: str = ""
    reply_id: Count = 0
    voice: str = ""
    words_per_minute: WordsPerMinute | None = None
    interrupt: bool = False


class PlaybackControl(Message):
    """Control of audio playback; ``stop`` is sent on barge-in."""

    action: Literal["stop", "pause", "resume"] = "stop"
    reply_id: Count = 0  # 0: whatever is playing
    reason: str = ""


# ----------------------------------------------------------------------------- shared


class ToolRequest(Message):
    """A tool call to be served by another process (JSON text arguments)."""

    call_id: str = ""
    name: str = ""
    arguments_json: str = "{}"
    speculative: bool = False
    state_version: Count = 0
    deadline_ns: Count = 0


class ToolReply(Message):
    """The result of a :class:`ToolRequest`: ``value_json`` when ``ok``, else ``error``."""

    call_id: str = ""
    ok: bool = True
    value_json: str = "null"
    error: str = ""
    duration_ns: Count = 0


class Ack(Message):
    """Acknowledges the message ``ack_seq`` from ``ack_source``; ``detail`` says what was done."""

    ack_seq: Count = 0
    ack_source: str = ""
    ok: bool = True
    detail: str = ""


class Heartbeat(Message):
    """Sent by every node a few times a second; the supervisor watches them.

    Progress, not just life: ``ticks`` counts the node's loop iterations (None:
    not counted); ``turn_started_ns`` is when the agent's running turn started
    (the sender's clock, like ``t_ns``; 0: no turn running) and ``turns_ended``
    how many turns ended. ``state`` other than ``starting``: the node is ready.
    (Fields added at the end with defaults: older senders and receivers interoperate.)
    """

    node: str = ""
    pid: Count = 0
    state: Literal["starting", "running", "degraded", "stopping"] = "running"
    counters: dict[str, Int64] = {}
    ticks: Count | None = None
    turn_started_ns: Count = 0
    turns_ended: Count = 0


class LogEvent(Message):
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    logger: str = ""
    text: str = ""


class TraceEvent(Message):
    """One Chrome trace event (phases ``B``/``E``/``X``/``i``/``C``); times in ns,
    the exporter converts to µs. ``track`` names the row (process/concern)."""

    name: str = ""
    ph: Literal["B", "E", "X", "i", "C"] = "i"
    ts_ns: Int64 = 0
    dur_ns: Count = 0
    track: str = ""
    cat: str = ""
    args: dict[str, Scalar] = {}


AnyMessage: TypeAlias = (
    JointState
    | CameraFrame
    | WorldState
    | Command
    | JointTargets
    | AudioChunk
    | Transcript
    | SpeechOut
    | PlaybackControl
    | ToolRequest
    | ToolReply
    | Ack
    | Heartbeat
    | LogEvent
    | TraceEvent
)


def message_types() -> dict[str, type[Message]]:
    """Tag -> class for every message in the vocabulary."""
    return {cls.__name__: cls for cls in AnyMessage.__args__}

