"""The contexts the miner counts next calls under: recent tool names, features of the last
result (top-level and nested) and of the observation, from most to least specific."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from speculation.context import UNKNOWN, Context, leaves
from speculation.traces import Step

__all__ = ["context_keys", "feature_keys", "features", "lower_bound", "nested_features"]

_MAX_NESTED = 12
_MAX_FEATURE_CHARS = 24


def _scalar_features(prefix: str, obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, Mapping):
        for k, v in list(obj.items())[:16]:
            if isinstance(v, bool) or (isinstance(v, str) and len(v) <= _MAX_FEATURE_CHARS):
                out.append(f"{prefix}{k}={v}")
            elif isinstance(v, list):
                out.append(f"{prefix}len({k})={min(len(v), 4)}")
    elif isinstance(obj, list):
        out.append(f"{prefix}len={min(len(obj), 4)}")
    elif isinstance(obj, bool | str) and len(str(obj)) <= _MAX_FEATURE_CHARS:
        out.append(f"{prefix}={obj}")
    return out


def features(step: Step | None) -> list[str]:
    """Categorical features of a call's result: failure, small string/bool fields, list sizes."""
    if step is None or step.result is UNKNOWN:
        return []
    if not step.ok:
        return ["error"]
    return _scalar_features("", step.result)


def nested_features(step: Step | None) -> list[str]:
    """Small string and bool fields deeper in a result (``data.order.status=open``), first
    list items only: what a branch on a nested field depends on."""
    if step is None or step.result is UNKNOWN or not step.ok:
        return []
    out = []
    for path, v in leaves(step.result):
        if len(path) < 2 or any(isinstance(p, int) and p != 0 for p in path):
            continue
        if isinstance(v, bool) or (isinstance(v, str) and len(v) <= _MAX_FEATURE_CHARS):
            out.append(".".join(str(p) for p in path) + f"={v}")
            if len(out) >= _MAX_NESTED:
                break
    return out


def _key(parts: list[str]) -> str:
    return json.dumps(parts, separators=(",", ":"))


def context_keys(ctx: Context) -> list[str]:
    """Context keys from most to least specific (recent tool names, result and observation
    features); the miner counts next calls and argument derivations under each."""
    names = [s.name for s in ctx.history]
    pad = ["^", "^", "^", *names]
    p3, p2, p1 = pad[-3], pad[-2], pad[-1]
    last = ctx.history[-1] if ctx.history else None
    keys = [["L3", p3, p2, p1], ["L2", p2, p1]]
    keys += [["F", p2, p1, f] for f in features(last)]
    keys += [["O", p1, f] for f in _scalar_features("", ctx.observation)]
    keys += [["L1", p1], ["L0"]]
    return [_key(k) for k in keys]


def feature_keys(ctx: Context) -> list[str]:
    """Keys from nested fields of the last result; the miner counts next tools under them
    (not argument derivations: those rarely depend on such a field)."""
    last = ctx.history[-1] if ctx.history else None
    return [_key(["N", last.name, f]) for f in nested_features(last)] if last else []


def lower_bound(successes: int, n: int, z: float = 1.0) -> float:
    """Wilson score lower bound of a proportion: how decisive a context is, discounting
    contexts seen only a few times."""
    if n <= 0:
        return 0.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / denom
