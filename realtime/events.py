"""Events a node publishes for whoever drives it: a :class:`~realtime.messages.LogEvent`
whose ``text`` is a JSON object, on topic ``"event"``.

The voice demo's processes say what happened this way (speech detected, a turn
done, a reply played) and its session follows them. Events are not conflated,
so :data:`EVENT_OPTIONS` gives the publisher a deep queue.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from realtime.bus import BusOptions, Publisher
from realtime.messages import LogEvent

__all__ = ["EVENT_OPTIONS", "EVENT_TOPIC", "publish_event"]

EVENT_TOPIC = "event"
EVENT_OPTIONS = BusOptions(sndhwm=4096)

Level = Literal["debug", "info", "warning", "error", "critical"]


def publish_event(pub: Publisher, logger: str, level: Level = "info", **data: Any) -> None:
    """Publish ``data`` as JSON under ``logger`` (the event's kind, e.g. ``"turn"``)."""
    pub.publish(LogEvent(logger=logger, level=level, text=json.dumps(data)), topic=EVENT_TOPIC)
