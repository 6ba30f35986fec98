"""The tools a decoder can offer the model: those whose schema the compact call format
decodes (:mod:`models.callschema`); each other tool is reported once, with the reason,
and left out, so one inexpressible tool does not stop the rest."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from control.tools import ToolSpec
from models.callschema import UnsupportedSchemaError, split_expressible
from models.decoder import DecodeError

__all__ = ["NoDecodableToolError", "decodable_tools"]

log = logging.getLogger("rtagent.models")
_reported: set[str] = set()


class NoDecodableToolError(DecodeError, UnsupportedSchemaError):
    """Every tool offered has a schema the format cannot decode (the messages say why)."""


def decodable_tools(tools: Sequence[ToolSpec]) -> list[ToolSpec]:
    """``tools`` less those the format cannot decode (logged once per message);
    raises :class:`NoDecodableToolError` where none is left."""
    ok, skipped = split_expressible(tools)
    for reason in skipped.values():
        if reason not in _reported:
            _reported.add(reason)
            log.warning("tool left out: %s", reason)
    if not ok and skipped:
        raise NoDecodableToolError("no tool can be decoded: " + "; ".join(skipped.values()))
    return ok
