"""The wire format of :mod:`realtime.messages`: encode to frames, decode from frames.

A message is one *header* frame followed by zero or more *array* frames::

    header = b"RTA" + bytes([SCHEMA_VERSION]) + msgpack(message)
    array k = the raw bytes of the k-th numpy array, C order

In the msgpack body each array field is a placeholder ``{"nd": k, "dt":
"<f4", "sh": [480, 640]}``. Arrays are never copied when they are already
C-contiguous: :meth:`Codec.encode` returns ``memoryview``s of them, for
``send_multipart(..., copy=False)``; :meth:`Codec.decode` wraps the received
buffers with ``numpy.frombuffer`` (read-only views, no copy).

Anything that is not a well-formed message of this vocabulary and version
raises a :class:`CodecError` subclass with a short ``reason`` that receivers
use as a counter key: ``malformed``, ``truncated``, ``oversized``,
``wrong_version``, ``unknown_type``, ``out_of_range`` (a number outside its
bound in :mod:`realtime.bounds`: NaN, infinity, a negative timestamp, a
target beyond reach). Decoding never raises anything else, not even for
frames of the wrong Python type (a ``str`` header, an ``int`` frame).

A :class:`Codec` is not thread-safe; give each socket its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from realtime.errors import ConfigError, RtAgentError
from realtime.messages import SCHEMA_VERSION, AnyMessage, Message, message_types

__all__ = [
    "MAGIC",
    "Codec",
    "CodecError",
    "CodecLimits",
    "MalformedMessageError",
    "OutOfRangeError",
    "OversizedMessageError",
    "TruncatedMessageError",
    "UnknownMessageError",
    "WrongVersionError",
]

MAGIC = b"RTA"
_PREFIX = MAGIC + bytes([SCHEMA_VERSION])
_PREFIX_LEN = len(_PREFIX)

#: dtypes allowed on the wire (little-endian or byte-order-free, numeric only).
_ALLOWED_DTYPES = frozenset(
    ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"]
)

Buffer = bytes | bytearray | memoryview

# msgspec's wording for a failed numeric constraint (Meta ge/le) or a number outside a Literal
_RANGE = re.compile(r"Expected `(?:int|float)` [<>]=? |Invalid enum value -?[0-9]")
_FINITE = re.compile(r"Expected `float` [<>]=? -?1\.7976931348623157e\+308")


class CodecError(RtAgentError):
    """A message could not be encoded or decoded. ``reason`` is a counter key."""

    reason = "malformed"


class MalformedMessageError(CodecError):
    """Not a well-formed rtagent message (bad magic, bad msgpack, bad fields, extra frames)."""

    reason = "malformed"


class OutOfRangeError(MalformedMessageError):
    """A number is not finite or outside its physical range (see :mod:`realtime.bounds`)."""

    reason = "out_of_range"


class TruncatedMessageError(CodecError):
    """Frames are missing or shorter than the header says."""

    reason = "truncated"


class OversizedMessageError(CodecError):
    """The message is larger than the configured limits."""

    reason = "oversized"


class WrongVersionError(CodecError):
    """The message was written with another schema version."""

    reason = "wrong_version"


class UnknownMessageError(CodecError):
    """The header names a message type this vocabulary does not have."""

    reason = "unknown_type"


@dataclass(frozen=True)
class CodecLimits:
    """Size limits a decoder enforces (and an encoder checks before sending)."""

    max_header_bytes: int = 1 << 20  # msgpack body without arrays
    max_total_bytes: int = 64 << 20  # header + all array frames
    max_frames: int = 16  # header + arrays
    max_ndim: int = 8

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "max_total_bytes", "max_frames", "max_ndim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"CodecLimits.{name}: expected an int >= 1, got {value!r}")


def _nbytes(frame: Buffer) -> int:
    return frame.nbytes if isinstance(frame, memoryview) else len(frame)


def _checked_frames(frames: object) -> list[Buffer]:
    """``frames`` as a list of byte buffers, or a :class:`MalformedMessageError` saying what
    was passed instead (a caller's bug, e.g. a ``str`` header: name it, don't crash in here)."""
    if isinstance(frames, bytes | bytearray | memoryview | str) or not isinstance(frames, Sequence):
        raise MalformedMessageError(
            "decode takes a list of frames (bytes, bytearray or memoryview), not one of type "
            f"{type(frames).__name__!r}; wrap a lone header as [header]")
    out: list[Buffer] = []
    for i, frame in enumerate(frames):
        if isinstance(frame, memoryview) and (frame.ndim != 1 or frame.format != "B"):
            try:
                frame = frame.cast("B")
            except TypeError as exc:
                raise MalformedMessageError(f"frame {i}: a memoryview that is not "
                                            f"contiguous bytes ({exc})") from exc
        elif not isinstance(frame, bytes | bytearray | memoryview):
            raise MalformedMessageError(
                f"frame {i} is of type {type(frame).__name__!r}, expected bytes, bytearray or "
                "memoryview (what a bus socket receives); encode text before sending")
        out.append(frame)
    return out


class Codec:
    """Encodes messages to frames and decodes frames to messages, within ``limits``."""

    def __init__(self, limits: CodecLimits | None = None) -> None:
        self.limits = limits or CodecLimits()
        self._out: list[memoryview] = []
        self._in: Sequence[Buffer] = ()
        self._used: list[bool] = []
        self._encoder = msgspec.msgpack.Encoder(enc_hook=self._enc_hook)
        self._decoder = msgspec.msgpack.Decoder(AnyMessage, dec_hook=self._dec_hook)
        self._raw = msgspec.msgpack.Decoder()
        self._types = message_types()
        #: arrays that had to be copied to become C-contiguous (0 on the zero-copy path)
        self.copies = 0

    # ------------------------------------------------------------------ encode

    def encode(self, msg: Message) -> list[Buffer]:
        """``[header, *array_frames]``; array frames are memoryviews (no copy)."""
        self._out = []
        try:
            header = _PREFIX + self._encoder.encode(msg)
        except CodecError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise MalformedMessageError(f"cannot encode {type(msg).__name__}: {exc}") from exc
        if not self._out:  # the common case: no arrays
            if len(header) > self.limits.max_header_bytes + _PREFIX_LEN:
                self._check_sizes([header], what="outgoing")
            return [header]
        frames: list[Buffer] = [header]
        frames.extend(self._out)
        self._out = []
        self._check_sizes(frames, what="outgoing")
        return frames

    def _enc_hook(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            dtype = obj.dtype.newbyteorder("<") if obj.dtype.byteorder == "=" else obj.dtype
            if dtype.str not in _ALLOWED_DTYPES:
                raise MalformedMessageError(
                    f"array dtype {obj.dtype.str!r} is not allowed on the bus; "
                    f"use one of {sorted(_ALLOWED_DTYPES)}"
                )
            if not obj.flags.c_contiguous:
                obj = np.ascontiguousarray(obj)
                self.copies += 1
            self._out.append(memoryview(obj.reshape(-1).view(np.uint8)))
            return {"nd": len(self._out) - 1, "dt": dtype.str, "sh": list(obj.shape)}
        raise TypeError(f"type {type(obj).__name__} cannot go on the bus")

    # ------------------------------------------------------------------ decode

    def decode(self, frames: Sequence[Buffer]) -> Message:
        """The message in ``frames`` (header first), or a :class:`CodecError`."""
        frames = _checked_frames(frames)
        if not frames:
            raise TruncatedMessageError("no frames")
        header = frames[0]
        if len(frames) > 1 or _nbytes(header) > self.limits.max_header_bytes + _PREFIX_LEN:
            self._check_sizes(frames, what="incoming")
        if _nbytes(header) < _PREFIX_LEN:
            raise MalformedMessageError(f"header of {_nbytes(header)} bytes is too short")
        if header[:3] != MAGIC:
            raise MalformedMessageError(f"not an rtagent message (starts with {bytes(header[:4])!r})")
        if header[3] != SCHEMA_VERSION:
            raise WrongVersionError(
                f"message has schema version {header[3]}, this build speaks {SCHEMA_VERSION}; "
                "run the same rtagent version on every node"
            )
        body = header[_PREFIX_LEN:]
        self._in = frames
        if len(frames) > 1:
            self._used = [False] * len(frames)
        try:
            msg: Message = self._decoder.decode(body)
        except CodecError:
            raise
        except msgspec.ValidationError as exc:
            self._raise_validation(body, exc)
        except (msgspec.DecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise MalformedMessageError(f"bad message body: {exc}") from exc
        finally:
            self._in = ()
        if len(frames) > 1 and not all(self._used[1:]):
            raise MalformedMessageError(
                f"{len(frames) - 1} array frame(s) but only "
                f"{sum(self._used[1:])} referenced by the header"
            )
        return msg

    def _raise_validation(self, body: Buffer, exc: Exception) -> None:
        tag: object = None
        try:
            raw = self._raw.decode(body)
            if isinstance(raw, dict):
                tag = raw.get("type")
        except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
            pass
        if tag is not None and (not isinstance(tag, str) or tag not in self._types):
            raise UnknownMessageError(f"unknown message type {tag!r:.60}") from exc
        text = str(exc)
        if _RANGE.match(text):
            text = _FINITE.sub("Expected a finite `float`", text)
            raise OutOfRangeError(f"{tag or 'message'}: number out of range (NaN and infinity "
                                  f"are refused too): {text}") from exc
        raise MalformedMessageError(f"invalid message: {text}") from exc

    def _dec_hook(self, typ: type, obj: Any) -> Any:
        if not (isinstance(obj, dict) and set(obj) == {"nd", "dt", "sh"}):
            raise MalformedMessageError(f"expected an array placeholder, got {str(obj)[:80]}")
        index, dt, shape = obj["nd"], obj["dt"], obj["sh"]
        if not isinstance(index, int) or index < 0:
            raise MalformedMessageError(f"bad array frame index {index!r}")
        if dt not in _ALLOWED_DTYPES:
            raise MalformedMessageError(f"array dtype {dt!r} is not allowed on the bus")
        if (
            not isinstance(shape, list)
            or len(shape) > self.limits.max_ndim
            or not all(isinstance(n, int) and 0 <= n < (1 << 40) for n in shape)
        ):
            raise MalformedMessageError(f"bad array shape {str(shape)[:80]}")
        frame_index = index + 1
        if frame_index >= len(self._in):
            raise TruncatedMessageError(
                f"array {index} is missing: the message has {len(self._in) - 1} array frame(s)"
            )
        if self._used[frame_index]:
            raise MalformedMessageError(f"array frame {index} referenced twice")
        self._used[frame_index] = True
        dtype = np.dtype(dt)
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        frame = self._in[frame_index]
        got = _nbytes(frame)
        if got < expected:
            raise TruncatedMessageError(f"array {index}: expected {expected} bytes, got {got}")
        if got > expected:
            raise MalformedMessageError(f"array {index}: expected {expected} bytes, got {got}")
        return np.frombuffer(frame, dtype=dtype).reshape(shape)

    def _check_sizes(self, frames: Sequence[Buffer], what: str) -> None:
        lim = self.limits
        if len(frames) > lim.max_frames:
            raise OversizedMessageError(
                f"{what} message has {len(frames)} frames, the limit is {lim.max_frames}"
            )
        header = _nbytes(frames[0])
        if header > lim.max_header_bytes + _PREFIX_LEN:
            raise OversizedMessageError(
                f"{what} header is {header} bytes, the limit is {lim.max_header_bytes}"
            )
        total = sum(_nbytes(f) for f in frames)
        if total > lim.max_total_bytes:
            raise OversizedMessageError(
                f"{what} message is {total} bytes, the limit is {lim.max_total_bytes}; "
                "raise CodecLimits.max_total_bytes on both ends if this is intended"
            )
