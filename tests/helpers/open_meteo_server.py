"""A local stand-in for Open-Meteo's forecast API on loopback, for the real client's tests.

It answers ``GET /v1/forecast`` the way the service does with ``format=flatbuffers``:
length-prefixed ``WeatherApiResponse`` FlatBuffers with the ``current`` and ``daily``
variables asked for, in the order asked; ``mode`` makes it slow, fail, refuse or
send garbage. ``requests`` records each query.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import flatbuffers
from openmeteo_sdk.Aggregation import Aggregation
from openmeteo_sdk.Unit import Unit
from openmeteo_sdk.Variable import Variable

# name -> (variable, unit, aggregation)
_VARIABLES = {"temperature_2m": (Variable.temperature, Unit.celsius, Aggregation.none),
              "weather_code": (Variable.weather_code, Unit.wmo_code, Aggregation.none),
              "temperature_2m_max": (Variable.temperature, Unit.celsius, Aggregation.maximum),
              "temperature_2m_min": (Variable.temperature, Unit.celsius, Aggregation.minimum)}


def _variable(b: flatbuffers.Builder, name: str, value: float | None,
              values: list[float] | None) -> int:
    var, unit, agg = _VARIABLES[name]
    vec = None
    if values is not None:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(v)
        vec = b.EndVector()
    b.StartObject(16)
    b.PrependUint8Slot(0, var, 0)
    b.PrependUint8Slot(1, unit, 0)
    if value is not None:
        b.PrependFloat32Slot(2, value, 0.0)
    if vec is not None:
        b.PrependUOffsetTRelativeSlot(3, vec, 0)
    b.PrependUint8Slot(6, agg, 0)
    return int(b.EndObject())


def _block(b: flatbuffers.Builder, start_s: int, interval_s: int, variables: list[int]) -> int:
    b.StartVector(4, len(variables), 4)
    for v in reversed(variables):
        b.PrependUOffsetTRelative(v)
    vec = b.EndVector()
    b.StartObject(4)
    b.PrependInt64Slot(0, start_s, 0)
    b.PrependInt64Slot(1, start_s + interval_s, 0)
    b.PrependInt32Slot(2, interval_s, 0)
    b.PrependUOffsetTRelativeSlot(3, vec, 0)
    return int(b.EndObject())


def forecast_message(query: dict[str, str], weather: dict[str, float]) -> bytes:
    """One length-prefixed WeatherApiResponse answering ``query`` with ``weather``'s values."""
    b = flatbuffers.Builder(1024)
    tz = b.CreateString(query.get("timezone", "GMT"))
    day = dt.date.fromisoformat(query["start_date"])
    start = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
    current = None
    if query.get("current"):
        names = query["current"].split(",")
        current = _block(b, int(time.time()), 900,
                         [_variable(b, n, weather[n], None) for n in names])
    names = query["daily"].split(",")
    daily = _block(b, start, 86400, [_variable(b, n, None, [weather[n]]) for n in names])
    b.StartObject(16)
    b.PrependFloat32Slot(0, float(query["latitude"]), 0.0)
    b.PrependFloat32Slot(1, float(query["longitude"]), 0.0)
    b.PrependUOffsetTRelativeSlot(7, tz, 0)
    if current is not None:
        b.PrependUOffsetTRelativeSlot(9, current, 0)
    b.PrependUOffsetTRelativeSlot(10, daily, 0)
    b.Finish(b.EndObject())
    buf = bytes(b.Output())
    return len(buf).to_bytes(4, "little") + buf


class OpenMeteoServer:
    """``with OpenMeteoServer() as srv:`` -> ``srv.url``; set ``srv.mode`` to one of
    "ok", "slow", "http500", "http400", "garbage"."""

    WEATHER = {"temperature_2m": 3.4, "weather_code": 61.0, "temperature_2m_max": 5.2,
               "temperature_2m_min": -1.6}

    def __init__(self, mode: str = "ok", *, slow_s: float = 2.0) -> None:
        self.mode, self.slow_s = mode, slow_s
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.requests.append(query)
                outer.answer(self, url.path, query)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1/forecast"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        if self.mode == "slow":
            time.sleep(self.slow_s)
        if self.mode == "http500":
            self._send(h, 500, b"internal error", "text/plain")
        elif self.mode == "http400":
            body = json.dumps({"error": True, "reason": "Latitude must be in range of -90 to 90"})
            self._send(h, 400, body.encode(), "application/json")
        elif self.mode == "garbage":
            self._send(h, 200, b"\x10\x00\x00\x00" + b"\xff" * 16, "application/octet-stream")
        elif path != "/v1/forecast" or query.get("format") != "flatbuffers":
            self._send(h, 404, b"not found", "text/plain")
        else:
            self._send(h, 200, forecast_message(query, self.WEATHER), "application/octet-stream")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", kind)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
            pass

    def __enter__(self) -> OpenMeteoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
