"""The voice demo's actuation process on the real bus: home device actions over RPC (what
they did, clear errors), a spoken reply with espeak-ng, and barge-in stopping it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from realtime import messages as m
from realtime.bus import Publisher, Subscriber
from realtime.bus_rpc import RequestClient
from realtime.endpoints import RunDirectory
from realtime.node import Node
from sim_envs.home.nodes import ActuationConfig, run_actuation

LONG = ("You have four events today: the stand-up meeting at nine, lunch with Anna at half past "
        "twelve, the dentist at three, and football practice at half past six.")


def _call(client: RequestClient, name: str, **args: object) -> m.ToolReply:
    return client.call(m.ToolRequest(name=name, arguments_json=json.dumps(args)), timeout_ms=5000)


def _event(sub: Subscriber, logger: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = sub.recv(timeout_ms=100)
        if got is not None and got.message.logger == logger:  # type: ignore[attr-defined]
            return json.loads(got.message.text)  # type: ignore[attr-defined]
    raise AssertionError(f"no {logger!r} event in {timeout_s} s")


def test_device_actions_and_barge_in(tmp_path: Path) -> None:
    rd = RunDirectory(tmp_path / "run")
    node = Node("actuation", run_dir=rd)
    out = tmp_path / "replies.wav"
    worker = threading.Thread(target=run_actuation, args=(ActuationConfig(out_wav=str(out)), node))
    speech = Publisher(rd.endpoint("decision"), source="decision")
    perception = Publisher(rd.endpoint("perception"), source="perception")
    events = Subscriber(rd.endpoint("actuation"), ("event",))
    home = RequestClient(rd.endpoint("home"), source="test")
    worker.start()
    try:
        did = _call(home, "set_light", room="kitchen", on=False)
        assert did.ok and json.loads(did.value_json)["changed"] is True
        bad = _call(home, "set_light", room="garage", on=True)
        assert not bad.ok and "'room'" in bad.error and '"garage"' in bad.error  # the schema
        assert "unknown home request 'open_door'" in _call(home, "open_door").error
        snap = json.loads(_call(home, "snapshot").value_json)
        assert snap["lights"]["kitchen"]["on"] is False

        time.sleep(0.3)  # the subscriptions reach our publishers
        speech.publish(m.SpeechOut(text=LONG, reply_id=7), topic="speech")
        time.sleep(1.0)  # it speaks in real time; then the user talks over it
        perception.publish(m.PlaybackControl(action="stop", reason="barge-in"), topic="barge_in")
        assert _event(events, "barge_in")["reply_id"] == 7
        played = _event(events, "playback")
        assert played["reply_id"] == 7 and played["stopped"] is True
        assert 0 < played["played_ms"] < 4000  # the whole reply is ~9 s of speech
        assert played["first_audio_ns"] > 0
    finally:
        node.request_stop()
        worker.join(10)
        for sock in (speech, perception, events, home):
            sock.close()
        node.close()
    assert not worker.is_alive()
    assert out.stat().st_size > 44  # what was played went to the WAV sink
