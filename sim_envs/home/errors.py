"""Errors from the home and its services; each says what the home has instead."""

from __future__ import annotations

from realtime.errors import RtAgentError

__all__ = ["HomeError"]


class HomeError(RtAgentError):
    """A request to the home or one of its services cannot be served."""
