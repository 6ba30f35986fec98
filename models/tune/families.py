"""Template families and the held-out split by family.

A *family* is one whole phrasing pattern: a single-call template ("turn off the {room}
lights"), a way of joining requests ("{a}, then {b}"), a quantifier ("put every cube in
the bin"), a way of taking a request back ("{a}... actually, never mind"). Its id is its
kind and text, so it does not move when templates are added or reordered.

The split is deterministic and balanced: within each group (a tool's templates, the
joiners, the quantifiers...) the families are ordered by a hash of their id and the
first :data:`HELDOUT_SHARE` of them (at least one of three or more) are held out.
Held-out examples use only held-out families (and held-out values): requests whose
whole phrasing training never saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["HELDOUT_SHARE", "Family", "family_id", "heldout_ids", "split"]

HELDOUT_SHARE = 0.2
T = TypeVar("T")


def family_id(kind: str, text: str) -> str:
    """``kind:text``: the id of the family a template is."""
    return f"{kind}:{text}"


def _rank(fid: str) -> bytes:
    return hashlib.sha1(fid.encode()).digest()


def heldout_ids(ids: Sequence[str], share: float = HELDOUT_SHARE) -> frozenset[str]:
    """The ids of one group held out: the first ``share`` of them by hash, at least one
    where the group has three or more (so every group is tested), never all of them."""
    unique = sorted(set(ids), key=_rank)
    n = round(len(unique) * share)
    if len(unique) >= 3:
        n = max(n, 1)
    n = min(n, len(unique) - 1)
    return frozenset(unique[:max(n, 0)])


@dataclass(frozen=True)
class Family(Generic[T]):
    """One family: its id and what it holds (a template, a pattern...)."""

    id: str
    item: T


def split(families: Sequence[Family[T]], heldout: bool) -> list[Family[T]]:
    """The families of one group on one side of the split (the whole group if that side
    would be empty)."""
    held = heldout_ids([f.id for f in families])
    side = [f for f in families if (f.id in held) == heldout]
    return side or list(families)
