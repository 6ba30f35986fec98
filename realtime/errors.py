"""The one exception root of rtagent.

Every error a user can cause derives from :class:`RtAgentError` and says what
to do next. Lower layers (``realtime``) define it so every package can import it.
"""

from __future__ import annotations

__all__ = ["ConfigError", "RtAgentError"]


class RtAgentError(Exception):
    """Root of every error rtagent raises on purpose."""


class ConfigError(RtAgentError, ValueError):
    """An option or argument has an invalid value ("expected X, got Y")."""
