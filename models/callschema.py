"""A tool's JSON Schema as the compact call format sees it: a tree of :class:`ArgSpec`.

:func:`arg_specs` reads an OpenAI-style spec's ``parameters`` into one :class:`ArgSpec`
per argument; :mod:`models.callformat` renders and parses values by it, the SimpleTool
decoder builds its constraints from it and the JSON baseline its grammar
(:func:`json_schema`), so both decoders see the same specs.

Read from JSON Schema:

- scalars: ``string`` (``minLength``/``maxLength``), ``number``/``integer``
  (``minimum``/``maximum``, their exclusive forms, ``multipleOf``), ``boolean``,
  ``null``; ``enum``/``const`` of scalars (a ``null`` member makes the enum nullable);
- ``array`` (``items``, ``minItems``/``maxItems``, ``uniqueItems``), ``object`` with
  ``properties`` (their ``required``), an object without ``properties`` as a map with
  string keys (values by ``additionalProperties``, or any scalar), keys listed in
  ``required`` but not in ``properties`` as fields of any type;
- a schema without ``type`` is *any*: a string, number, boolean, null or a list of
  those;
- ``anyOf``/``oneOf`` and type lists (``["string", "null"]``, OpenAPI's ``nullable``)
  where the options can be told apart by their first character: any scalars, at most
  one array and one object;
- local ``$ref`` (``#/$defs/...``, ``#/definitions/...``) unless recursive, ``allOf``
  of object schemas (merged);
- ``default`` (an omitted optional argument takes it: :func:`apply_defaults`);
  annotations (``title``, ``format``, ``examples``...) are ignored.

Anything else that constrains a value (``pattern``, ``not``, ``if``, ``prefixItems``,
recursive ``$ref`` ...) raises :class:`UnsupportedSchemaError` naming the tool, the
argument (a path such as ``points[].x``) and the keyword; :func:`split_expressible`
sets such tools aside with that message so the rest can still be decoded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from models.argspec import (
    ANY,
    RESERVED_WORDS,
    TOOL_NAME,
    ArgKind,
    ArgSpec,
    UnsupportedSchemaError,
    any_spec,
)

__all__ = [
    "apply_defaults",
    "arg_specs",
    "check_expressible",
    "json_schema",
    "object_schema",
    "split_expressible",
]

# Keywords that constrain a value in ways the format cannot decode.
_UNSUPPORTED = ("not", "if", "then", "else", "pattern", "prefixItems", "contains",
                "patternProperties", "propertyNames", "dependentSchemas", "dependentRequired",
                "unevaluatedItems", "unevaluatedProperties", "minProperties", "maxProperties",
                "minContains", "maxContains", "dependencies")


class _Reader:
    """JSON Schema -> :class:`ArgSpec` for one tool (``root`` resolves local ``$ref``)."""

    def __init__(self, tool: str, root: Mapping[str, Any]) -> None:
        self.tool, self.root = tool, root

    def fail(self, path: str, what: str) -> UnsupportedSchemaError:
        return UnsupportedSchemaError(f"tool {self.tool!r}, argument {path!r}: {what}")

    def resolve(self, schema: Mapping[str, Any], path: str, refs: tuple[str, ...]
                ) -> tuple[Mapping[str, Any], tuple[str, ...]]:
        """``schema`` with its ``$ref`` and ``allOf`` folded in."""
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise self.fail(path, f"'$ref' {ref!r} is not a local reference (#/$defs/...)")
            if ref in refs:
                raise self.fail(path, f"'$ref' {ref!r} is recursive; the format decodes "
                                "values of bounded depth only")
            target: Any = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    raise self.fail(path, f"'$ref' {ref!r} points to nothing")
                target = target[part]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema, refs = {**target, **rest}, (*refs, ref)
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part, refs = self.resolve(part, path, refs)
                for key, value in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *value]
                    elif key in merged and merged[key] != value and key != "description":
                        raise self.fail(path, f"'allOf' parts disagree on {key!r}; only object "
                                        "schemas whose parts add properties can be merged")
                    else:
                        merged.setdefault(key, value)
            schema = merged
        return schema, refs

    def read(self, schema: Any, path: str, name: str, required: bool,
             refs: tuple[str, ...] = ()) -> ArgSpec:
        if schema is True or schema == {}:
            return replace(any_spec(name), required=required)
        if not isinstance(schema, Mapping):
            raise self.fail(path, f"expected a schema object, got {schema!r}")
        schema, refs = self.resolve(schema, path, refs)
        for key in _UNSUPPORTED:
            if key in schema:
                raise self.fail(path, f"'{key}' is not supported by the compact call format's "
                                "decoder (it constrains a value in a way no token mask here can)")
        spec = self._read(schema, path, name, required, refs)
        extra: dict[str, Any] = {"description": str(schema.get("description", ""))}
        if "default" in schema:
            extra["default"] = schema["default"]
        if schema.get("nullable") is True and not spec.nullable:
            spec = self._union(path, name, required, [spec, ArgSpec(name, ArgKind.NULL, True)])
        return replace(spec, **extra)

    def _read(self, schema: Mapping[str, Any], path: str, name: str, required: bool,
              refs: tuple[str, ...]) -> ArgSpec:
        for key in ("anyOf", "oneOf"):
            if key in schema:
                base = {k: v for k, v in schema.items() if k not in (key, "description", "default")}
                opts = [self.read({**base, **o} if isinstance(o, Mapping) else o, path, name,
                                  True, refs) for o in schema[key]]
                return self._union(path, name, required, opts)
        if "const" in schema:
            schema = {**schema, "enum": [schema["const"]]}
        if "enum" in schema:
            values = list(schema["enum"])
            if not values or any(isinstance(v, list | dict) for v in values):
                raise self.fail(path, "enum must be a non-empty list of strings, numbers, "
                                "booleans or null")
            members = tuple(v for v in values if v is not None)
            spec = ArgSpec(name, ArgKind.ENUM, required, enum=members)
            if len(members) == len(values):
                return spec
            if not members:
                return ArgSpec(name, ArgKind.NULL, required)
            return self._union(path, name, required, [spec, ArgSpec(name, ArgKind.NULL, True)])
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise self.fail(path, "an empty type list allows no value")
            opts = [self._read({**schema, "type": k}, path, name, True, refs) for k in kind]
            return self._union(path, name, required, opts)
        if kind is None:
            kind = ("object" if "properties" in schema or "additionalProperties" in schema
                    else "array" if "items" in schema else None)
        if kind is None:
            return replace(any_spec(name), required=required)
        if kind in ("number", "integer"):
            return self._number(schema, path, name, required, ArgKind(kind))
        if kind == "boolean":
            return ArgSpec(name, ArgKind.BOOLEAN, required)
        if kind == "null":
            return ArgSpec(name, ArgKind.NULL, required)
        if kind == "string":
            ml = schema.get("maxLength")
            return ArgSpec(name, ArgKind.STRING, required, min_length=int(schema.get("minLength", 0)),
                           max_length=None if ml is None else int(ml))
        if kind == "array":
            items = schema.get("items", True)
            if isinstance(items, list):
                raise self.fail(path, "'items' as a list (a tuple schema) is not supported; "
                                "give one schema for every element")
            if items is False:
                return ArgSpec(name, ArgKind.ARRAY, required, items=ANY, max_items=0)
            hi = schema.get("maxItems")
            return ArgSpec(name, ArgKind.ARRAY, required,
                           items=self.read(items, f"{path}[]", name, True, refs),
                           min_items=int(schema.get("minItems", 0)),
                           max_items=None if hi is None else int(hi),
                           unique=bool(schema.get("uniqueItems", False)))
        if kind == "object":
            return self._object(schema, path, name, required, refs)
        raise self.fail(path, f"type {kind!r} is not a JSON Schema type")

    def _number(self, schema: Mapping[str, Any], path: str, name: str, required: bool,
                kind: ArgKind) -> ArgSpec:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        excl = [False, False]
        for i, ex in enumerate((ex_lo, ex_hi)):
            if isinstance(ex, bool):  # draft 4: a flag on minimum / maximum
                excl[i] = ex
            elif isinstance(ex, int | float):
                cur = lo if i == 0 else hi
                if cur is None or (ex >= cur if i == 0 else ex <= cur):
                    lo, hi = (ex, hi) if i == 0 else (lo, ex)
                    excl[i] = True
        step = schema.get("multipleOf")
        if lo is not None and hi is not None and lo > hi:
            raise self.fail(path, f"minimum {lo} is above maximum {hi}: no value is allowed")
        return ArgSpec(name, kind, required, minimum=None if lo is None else float(lo),
                       maximum=None if hi is None else float(hi), exclusive_minimum=excl[0],
                       exclusive_maximum=excl[1], multiple_of=None if step is None else float(step))

    def _object(self, schema: Mapping[str, Any], path: str, name: str, required: bool,
                refs: tuple[str, ...]) -> ArgSpec:
        props = schema.get("properties") or {}
        needed = [r for r in schema.get("required", []) if isinstance(r, str)]
        names = [*props, *(r for r in needed if r not in props)]
        if not names:
            extra = schema.get("additionalProperties", True)
            if extra is False:
                return ArgSpec(name, ArgKind.OBJECT, required)
            value = self.read(extra, f"{path}{{}}", name, True, refs)
            return ArgSpec(name, ArgKind.MAP, required, items=value)
        fields = tuple(self.read(props.get(k, True), f"{path}.{k}" if path else k, k,
                                 k in needed, refs)
                       for k in names)
        return ArgSpec(name, ArgKind.OBJECT, required, fields=fields)

    def _union(self, path: str, name: str, required: bool, opts: Sequence[ArgSpec]) -> ArgSpec:
        flat: list[ArgSpec] = []
        for o in opts:
            flat += list(o.options) if o.kind is ArgKind.UNION else [o]
        arrays = [o for o in flat if o.kind is ArgKind.ARRAY]
        objects = [o for o in flat if o.kind in (ArgKind.OBJECT, ArgKind.MAP)]
        if len(arrays) > 1 or len(objects) > 1:
            raise self.fail(path, "'anyOf'/'oneOf' of several array (or object) schemas can't "
                            "be told apart as the value is decoded; merge them into one")
        if any(o.kind is ArgKind.NULL for o in flat):  # one null, last
            flat = [o for o in flat if o.kind is not ArgKind.NULL] + [ArgSpec(name, ArgKind.NULL, True)]
        if len(flat) == 1:
            return replace(flat[0], required=required)
        return ArgSpec(name, ArgKind.UNION, required, options=tuple(flat))


def arg_specs(spec: Any) -> list[ArgSpec]:
    """The arguments of ``spec`` (a :class:`~control.tools.ToolSpec`) in call order;
    raises :class:`UnsupportedSchemaError` saying which tool, argument and keyword."""
    if spec.name in RESERVED_WORDS:
        raise UnsupportedSchemaError(f"tool name {spec.name!r} is reserved by the call format")
    if not TOOL_NAME.match(spec.name):
        raise UnsupportedSchemaError(
            f"tool {spec.name!r}: names must be identifiers (letters, digits, '_'), "
            "optionally dotted (math.hypot), in the compact call format")
    root = dict(spec.parameters)
    reader = _Reader(spec.name, root)
    merged, _ = reader.resolve(root, "(parameters)", ())
    obj = reader.read({**merged, "type": "object"}, "", "", True)
    # no 'properties': no arguments (free keyword arguments are not offered to the model)
    return [] if obj.kind is ArgKind.MAP else list(obj.fields)


def check_expressible(specs: Sequence[Any]) -> None:
    """Raise :class:`UnsupportedSchemaError` naming the first inexpressible part."""
    for spec in specs:
        arg_specs(spec)


def split_expressible(specs: Sequence[Any]) -> tuple[list[Any], dict[str, str]]:
    """The tools the format can decode, and for each other tool why not (its message)."""
    ok, skipped = [], {}
    for spec in specs:
        try:
            arg_specs(spec)
        except UnsupportedSchemaError as exc:
            skipped[spec.name] = str(exc)
        else:
            ok.append(spec)
    return ok, skipped


def apply_defaults(arguments: Mapping[str, Any], args: Sequence[ArgSpec]) -> dict[str, Any]:
    """``arguments`` with every omitted argument that has a ``default`` set to it."""
    out = dict(arguments)
    for a in args:
        if a.name not in out and a.has_default:
            out[a.name] = a.default
    return out


def _bound(value: float | None) -> int | float | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else value


def json_schema(arg: ArgSpec) -> dict[str, Any]:
    """The JSON Schema of exactly what the format decodes for ``arg`` (no annotations):
    the baseline's grammar, so both decoders are held to the same constraints."""
    k = arg.kind
    if k is ArgKind.ENUM:
        return {"enum": list(arg.enum)}
    if k in (ArgKind.NUMBER, ArgKind.INTEGER):
        out: dict[str, Any] = {"type": str(k)}
        lo, hi = _bound(arg.minimum), _bound(arg.maximum)
        if lo is not None:
            out["exclusiveMinimum" if arg.exclusive_minimum else "minimum"] = lo
        if hi is not None:
            out["exclusiveMaximum" if arg.exclusive_maximum else "maximum"] = hi
        if arg.multiple_of:
            out["multipleOf"] = arg.multiple_of
        return out
    if k is ArgKind.STRING:
        out = {"type": "string"}
        if arg.min_length:
            out["minLength"] = arg.min_length
        if arg.max_length is not None:
            out["maxLength"] = arg.max_length
        return out
    if k in (ArgKind.BOOLEAN, ArgKind.NULL):
        return {"type": str(k)}
    if k is ArgKind.ARRAY:
        assert arg.items is not None
        out = {"type": "array", "items": json_schema(arg.items)}
        if arg.min_items:
            out["minItems"] = arg.min_items
        if arg.max_items is not None:
            out["maxItems"] = arg.max_items
        if arg.unique:
            out["uniqueItems"] = True
        return out
    if k is ArgKind.MAP:
        assert arg.items is not None
        return {"type": "object", "additionalProperties": json_schema(arg.items)}
    if k is ArgKind.OBJECT:
        return object_schema(arg.fields)
    return {"anyOf": [json_schema(o) for o in arg.options]}


def object_schema(fields: Sequence[ArgSpec]) -> dict[str, Any]:
    """The JSON Schema of an object (a call's arguments) with ``fields``."""
    return {"type": "object", "properties": {f.name: json_schema(f) for f in fields},
            "required": [f.name for f in fields if f.required], "additionalProperties": False}
