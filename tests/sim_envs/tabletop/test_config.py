"""RobotDemoConfig: refused in the front-end when wrong, the same on the far side of JSON."""

from __future__ import annotations

import pytest

from realtime.errors import ConfigError
from sim_envs.tabletop.config import RobotDemoConfig


def test_round_trips_through_json() -> None:
    cfg = RobotDemoConfig(seed=3, hz=12.0, lora=None, speculation=False, trace_label="direct")
    assert RobotDemoConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hz": 0.5}, "hz: expected 1..60, got 0.5"),
    ({"camera_hz": 100.0}, "camera_hz: expected 0.5..60, got 100.0"),
    ({"physics_wake_hz": 480.0}, "physics_wake_hz: expected 1..240, got 480.0"),
    ({"actuation_hz": 0.0}, "actuation_hz: expected 1..240, got 0.0"),
    ({"watchdog_ms": 50.0}, "more than one decision period (62.5 ms at 16 Hz)"),
    ({"seed": -1}, "seed: expected an int >= 0, got -1"),
    ({"decoder_threads": 0}, "decoder_threads: expected 1..64, got 0"),
])
def test_bad_values_say_what_was_expected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RobotDemoConfig(**kwargs)  # type: ignore[arg-type]


def test_a_config_from_another_version_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['extra'\]"):
        RobotDemoConfig.from_json('{"hz": 16.0, "extra": {}}')
