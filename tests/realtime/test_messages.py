"""The message vocabulary: one tagged union, stamped fields, every type round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.codec import Codec
from realtime.messages import (
    SCHEMA_VERSION,
    Ack,
    AudioChunk,
    CameraFrame,
    CameraIntrinsics,
    Command,
    GripperState,
    Heartbeat,
    JointState,
    JointTargets,
    LogEvent,
    Message,
    ObjectState,
    PlaybackControl,
    SpeechOut,
    ToolReply,
    ToolRequest,
    TraceEvent,
    Transcript,
    WorldState,
    message_types,
)

EXAMPLES: list[Message] = [
    JointState(names=["j1", "j2"], positions_rad=[0.1, -0.2], velocities_rad_s=[0.0, 0.5],
               gripper_opening_m=0.04),
    CameraFrame(
        width_px=4, height_px=3,
        rgb=np.arange(36, dtype=np.uint8).reshape(3, 4, 3),
        depth_m=np.linspace(0.2, 2.0, 12, dtype=np.float32).reshape(3, 4),
        segmentation=np.arange(12, dtype=np.int32).reshape(3, 4),
        intrinsics=CameraIntrinsics(fx_px=500.0, fy_px=500.0, cx_px=2.0, cy_px=1.5),
        view_matrix=[float(i) for i in range(16)], near_m=0.1, far_m=5.0,
        camera_position_m=(1.0, 0.0, 1.0),
    ),
    WorldState(version=7, frame_seq=3, objects=[
        ObjectState(id="cube_red", colour="red", shape="cube", position_m=(0.5, 0.1, 0.02),
                    size_m=(0.04, 0.04, 0.04), visible=True),
        ObjectState(id="ball", colour="blue", visible=False),
    ], gripper=GripperState(position_m=(0.4, 0.0, 0.3), opening_m=0.08, holding="cube_red")),
    Command(mode="move", target_position_m=(0.5, 0.1, 0.2),
            target_orientation_xyzw=(0.0, 1.0, 0.0, 0.0), gripper="close", deadline_ns=123),
    JointTargets(positions_rad=[0.0] * 7, gripper_opening_m=0.0, command_seq=4, held=True),
    AudioChunk(pcm=np.zeros(320, np.int16), sample_rate_hz=16000, start_sample=640),
    AudioChunk(pcm=np.zeros((160, 2), np.float32), channels=2),
    Transcript(text="pick up the red cube", is_final=True, utterance_id=2,
               audio_start_ns=10, audio_end_ns=20, avg_logprob=-0.3),
    SpeechOut(text="done", reply_id=1, interrupt=True),
    PlaybackControl(action="stop", reason="barge-in"),
    ToolRequest(call_id="c1", name="pick", arguments_json='{"object":"cube_red"}'),
    ToolReply(call_id="c1", ok=False, error="unreachable"),
    Ack(ack_seq=9, ack_source="decision", detail="holding"),
    Heartbeat(node="perception", pid=42, state="degraded", counters={"frames": 10}),
    LogEvent(level="warning", logger="rtagent.bus", text="dropped"),
    TraceEvent(name="tick", ph="X", ts_ns=5, dur_ns=60_000_000, track="decision",
               args={"late": False, "k": 1, "s": "x", "f": 0.5, "n": None}),
]


def test_every_message_type_has_an_example_and_a_unique_tag() -> None:
    types = message_types()
    assert set(types) == {type(m).__name__ for m in EXAMPLES}
    assert all(issubclass(t, Message) for t in types.values())


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_preserves_every_field(msg: Message) -> None:
    msg.source, msg.seq, msg.t_ns = "test", 5, 123_456_789
    codec = Codec()
    back = codec.decode(codec.encode(msg))
    assert type(back) is type(msg)
    for name in msg.__struct_fields__:
        a, b = getattr(msg, name), getattr(back, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b, name
    assert back.schema_version == SCHEMA_VERSION


def test_defaults_and_stamp_fields() -> None:
    msg = WorldState()
    assert (msg.source, msg.seq, msg.t_ns) == ("", 0, 0)
    assert WorldState().objects is not msg.objects  # no shared mutable defaults
    assert msg.schema_version == SCHEMA_VERSION
