"""Errors from the audio stack; each says what happened and what to do next."""

from __future__ import annotations

from realtime.errors import RtAgentError

__all__ = ["AudioDeviceError", "AudioError", "AudioFormatError", "SpeechModelError"]


class AudioError(RtAgentError):
    """Something about audio input or output went wrong."""


class AudioFormatError(AudioError, ValueError):
    """Audio data or a file is empty, truncated or in a format we cannot read."""


class AudioDeviceError(AudioError):
    """An audio device is missing, busy or refused the requested format."""


class SpeechModelError(AudioError):
    """A speech model (VAD, STT, TTS engine) could not be loaded or run."""
