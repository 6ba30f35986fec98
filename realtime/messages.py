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
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

import msgspec
import numpy.typing as npt

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
SCHEMA_VERSION = 1

#: A numpy array field; sent as a separate zero-copy frame.
Array: TypeAlias = npt.NDArray[Any]

Vec3: TypeAlias = tuple[float, float, float]
Quat: TypeAlias = tuple[float, float, float, float]
Scalar: TypeAlias = str | int | float | bool | None


class Message(msgspec.Struct, tag_field="type", tag=True, kw_only=True):
    """Base of every message: who sent it, its sequence number, when (monotonic ns)."""

    source: str = ""
    seq: int = 0
    t_ns: int = 0

    schema_version: ClassVar[int] = SCHEMA_VERSION


# ----------------------------------------------------------------------------- robot


class JointState(Message):
    """The arm's measured joint state (sim or hardware -> everyone)."""

    names: list[str] = []
    positions_rad: list[float] = []
    velocities_rad_s: list[float] = []
    efforts_nm: list[float] = []
    gripper_opening_m: float = 0.0
    sim_time_s: float = 0.0  # the simulator's clock (0 on hardware)


class CameraIntrinsics(msgspec.Struct, kw_only=True):
    """Pinhole intrinsics in pixels."""

    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float


class CameraFrame(Message):
    """One camera capture. Arrays are optional so a camera can send only what it has.

    ``rgb``: (H, W, 3) uint8. ``depth_m``: (H, W) float32, metres along the
    optical axis (already linearised). ``segmentation``: (H, W) int32 object ids.
    ``view_matrix`` and ``projection_matrix``: 16 floats, column-major (PyBullet/OpenGL).
    """

    camera: str = "main"
    width_px: int = 0
    height_px: int = 0
    rgb: Array | None = None
    depth_m: Array | None = None
    segmentation: Array | None = None
    intrinsics: CameraIntrinsics | None = None
    view_matrix: list[float] = []
    projection_matrix: list[float] = []
    camera_position_m: Vec3 | None = None
    near_m: float = 0.0
    far_m: float = 0.0
    sim_time_s: float = 0.0


class ObjectState(msgspec.Struct, kw_only=True):
    """One perceived object."""

    id: str
    colour: str = ""
    shape: str = ""
    position_m: Vec3 = (0.0, 0.0, 0.0)
    orientation_xyzw: Quat | None = None
    size_m: Vec3 = (0.0, 0.0, 0.0)
    visible: bool = True
    yaw_rad: float = 0.0  # rotation about the vertical axis
    held: bool = False  # in the gripper
    pixels: int = 0  # how many image pixels it covered (0: not seen in the last frame)
    seen_s: float = 0.0  # when it was last seen (sim time)


class GripperState(msgspec.Struct, kw_only=True):
    position_m: Vec3 = (0.0, 0.0, 0.0)
    opening_m: float = 0.0
    holding: str | None = None  # id of the held object


class WorldState(Message):
    """Perception's view of the world. ``version`` increases whenever it changes
    (speculation keys results on it); ``frame_seq`` is the camera frame it came from."""

    version: int = 0
    frame_seq: int = 0
    objects: list[ObjectState] = []
    gripper: GripperState = msgspec.field(default_factory=GripperState)
    arm_q_rad: list[float] = []  # the joint angles the world state was computed with
    sim_time_s: float = 0.0


CommandMode = Literal["hold", "move", "safe_stop"]


class Command(Message):
    """Decision -> actuation, every tick.

    ``mode``: ``move`` toward the target, ``hold`` the current pose, ``safe_stop``
    (stop and stay stopped until a later ``move``). ``deadline_ns``: sender's
    monotonic clock; actuation ignores the command after it (0 = no deadline).
    """

    mode: CommandMode = "hold"
    target_position_m: Vec3 | None = None
    target_orientation_xyzw: Quat | None = None
    gripper: Literal["open", "close"] | None = None
    gripper_width_m: float | None = None  # finger opening; overrides ``gripper`` when set
    yaw_rad: float = 0.0  # gripper rotation about the vertical (top-down grasps)
    joint_target_rad: list[float] | None = None  # a joint-space target instead of a position
    max_speed_m_s: float | None = None
    deadline_ns: int = 0
    tick: int = 0
    reason: str = ""


class JointTargets(Message):
    """Actuation -> sim: what the arm is actually told to do (after IK and limits)."""

    positions_rad: list[float] = []
    gripper_opening_m: float | None = None
    max_velocity_rad_s: float | None = None
    command_seq: int = 0  # seq of the Command this came from (0: none)
    held: bool = False  # True when this is a hold (watchdog or mode=hold)


# ----------------------------------------------------------------------------- voice


class AudioChunk(Message):
    """A block of PCM audio. ``pcm``: (n,) or (n, channels), int16 or float32 in [-1, 1].

    ``start_sample`` is the index of the first sample in the stream, so gaps
    (dropped chunks) are visible.
    """

    stream: str = "mic"
    pcm: Array | None = None
    sample_rate_hz: int = 16000
    channels: int = 1
    start_sample: int = 0


class Transcript(Message):
    """Speech-to-text output, partial or final, for one utterance."""

    text: str = ""
    is_final: bool = False
    utterance_id: int = 0
    audio_start_ns: int = 0
    audio_end_ns: int = 0
    avg_logprob: float | None = None


class SpeechOut(Message):
    """A request to speak (TTS). ``interrupt`` cuts what is playing now."""

    text: str = ""
    reply_id: int = 0
    voice: str = ""
    words_per_minute: int | None = None
    interrupt: bool = False


class PlaybackControl(Message):
    """Control of audio playback; ``stop`` is sent on barge-in."""

    action: Literal["stop", "pause", "resume"] = "stop"
    reply_id: int = 0  # 0: whatever is playing
    reason: str = ""


# ----------------------------------------------------------------------------- shared


class ToolRequest(Message):
    """A tool call to be served by another process (JSON text arguments)."""

    call_id: str = ""
    name: str = ""
    arguments_json: str = "{}"
    speculative: bool = False
    state_version: int = 0
    deadline_ns: int = 0


class ToolReply(Message):
    """The result of a :class:`ToolRequest`: ``value_json`` when ``ok``, else ``error``."""

    call_id: str = ""
    ok: bool = True
    value_json: str = "null"
    error: str = ""
    duration_ns: int = 0


class Ack(Message):
    """Acknowledges the message ``ack_seq`` from ``ack_source``; ``detail`` says what was done."""

    ack_seq: int = 0
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
    pid: int = 0
    state: Literal["starting", "running", "degraded", "stopping"] = "running"
    counters: dict[str, int] = {}
    ticks: int | None = None
    turn_started_ns: int = 0
    turns_ended: int = 0


class LogEvent(Message):
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    logger: str = ""
    text: str = ""


class TraceEvent(Message):
    """One Chrome trace event (phases ``B``/``E``/``X``/``i``/``C``); times in ns,
    the exporter converts to µs. ``track`` names the row (process/concern)."""

    name: str = ""
    ph: Literal["B", "E", "X", "i", "C"] = "i"
    ts_ns: int = 0
    dur_ns: int = 0
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

