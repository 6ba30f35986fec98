"""The baseline: what users do today — llama-cpp-python generating a JSON tool call
under a grammar built from the tools' JSON Schema.

The high-level ``llama_cpp.Llama`` generates the answer token by token with
llama.cpp's grammar sampler over the whole vocabulary, as
``[{"name": ..., "arguments": {...}}, ...]`` (``[]`` for no tool). Same system
prompt, tool list and few-shot examples as the SimpleTool decoder (answers in
JSON), same chat template, greedy decoding. ``Llama`` reuses the KV cache of
the longest common prompt prefix between calls, like the SimpleTool decoder.

Same specs as the SimpleTool decoder, too: the grammar comes from the schema as the
compact format reads it (:func:`models.callschema.json_schema`: arrays, objects, maps,
unions, bounds; annotations such as ``format`` dropped), and a tool the format cannot
decode is left out of both, so the comparison stays fair.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema

from control.tools import ToolCall, ToolSpec
from models.argspec import ArgKind
from models.artifacts import describe_gguf
from models.callformat import arg_specs
from models.callschema import object_schema
from models.decoder import DecodeContext, DecodeError, DecodeResult
from models.llama_lib import BackendError, ContextOverflowError, _lib, apply_chat_template
from models.llama_lib import default_threads as _default_threads
from models.prompts import Example, build_messages, fallback_template, render_answer
from models.resolve import ResolvedModel
from models.usable import decodable_tools
from realtime.errors import ConfigError

__all__ = ["JsonBaselineDecoder", "calls_schema"]


def calls_schema(tools: Sequence[ToolSpec], enums: Mapping[str, Sequence[Any]],
                 max_calls: int) -> dict[str, Any]:
    """JSON Schema of the answer: a list of up to ``max_calls`` calls of ``tools``.

    Each tool's arguments are the schema the compact format decodes (its bounds and
    structure). A run-time enum restricts an argument (an array's elements); one with no
    values drops an optional argument, and a tool whose required argument it is (as the
    SimpleTool decoder does): llama.cpp's grammar for an empty enum crashes the process.
    """
    variants = []
    for spec in tools:
        args = {a.name: a for a in arg_specs(spec)}
        params = object_schema(list(args.values()))
        props, required = params["properties"], params["required"]
        if any(arg in required and not list(values) for arg, values in enums.items()):
            continue
        for arg, values in enums.items():
            if arg not in props:
                continue
            if not list(values):
                del props[arg]
            elif args[arg].kind is ArgKind.ARRAY:
                props[arg] = {**props[arg], "items": {"enum": list(values)}}
            else:
                props[arg] = {"enum": list(values)}
        variants.append({
            "type": "object",
            "properties": {"name": {"const": spec.name}, "arguments": params},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })
    if not variants:
        return {"type": "array", "maxItems": 0}
    return {"type": "array", "items": {"oneOf": variants}, "minItems": 0, "maxItems": max_calls}


class JsonBaselineDecoder:
    """JSON tool calls under a JSON-Schema grammar, through ``llama_cpp.Llama``."""

    name = "baseline"

    def __init__(self, model: ResolvedModel, *, n_threads: int | None = None,
                 n_gpu_layers: int = 0, max_calls: int = 4, n_ctx_tokens: int = 2048,
                 examples: Sequence[Example] | None = None, max_tokens: int = 256,
                 verbose: bool = False, schedule: str | None = None) -> None:
        del schedule  # accepted so both decoders take the same options
        _lib()  # its OpenMP wait policy, before llama_cpp loads libgomp
        from llama_cpp import Llama

        threads = n_threads or _default_threads()
        lora = model.runtime_adapter  # the same file the SimpleTool decoder runs
        try:
            self.llm = Llama(model_path=str(model.run_file.path), n_ctx=n_ctx_tokens,
                             n_threads=threads, n_threads_batch=threads,
                             n_gpu_layers=n_gpu_layers,
                             lora_path=None if lora is None else str(lora), verbose=verbose)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama-cpp-python could not load {model.gguf}: {exc}") from exc
        info = describe_gguf(model.gguf)
        self.template = info.chat_template or fallback_template(info.architecture)
        self.max_calls, self.max_tokens, self.examples = max_calls, max_tokens, examples
        self.n_batch = self.llm.n_batch
        self._grammars: dict[str, Any] = {}

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            # in the schema's own order (llama.cpp keeps it): the tool's name before its
            # arguments, the arguments as listed (sorted keys put "arguments" first)
            self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(schema),
                                                                verbose=False)
        return self._grammars[key]

    def decode(self, context: DecodeContext | Sequence[Mapping[str, str]],
               tools: Sequence[ToolSpec]) -> DecodeResult:
        ctx = DecodeContext.coerce(context)
        if not tools:
            raise ConfigError("decode: expected at least one tool, got none")
        tools = decodable_tools(tools)  # the same tools the SimpleTool decoder offers
        t0 = time.perf_counter()
        max_calls = ctx.max_calls or self.max_calls
        schema = calls_schema(tools, ctx.enums, max_calls)
        msgs = build_messages(tools, ctx.messages, "json", self.examples)
        text = apply_chat_template(self.template, msgs, True)
        prompt = self.llm.tokenize(text.encode(), add_bos=True, special=True)
        if len(prompt) + self.max_tokens > self.llm.n_ctx():
            raise ContextOverflowError(
                f"the prompt is {len(prompt)} tokens; with {self.max_tokens} for the answer it "
                f"exceeds the context window of {self.llm.n_ctx()}; shorten the prompt")
        cached = 0
        old = list(self.llm._input_ids[: self.llm.n_tokens])
        while cached < min(len(old), len(prompt) - 1) and old[cached] == prompt[cached]:
            cached += 1
        out = self.llm.create_completion(prompt=prompt, max_tokens=self.max_tokens,
                                         temperature=0.0, grammar=self._grammar(schema))
        latency = (time.perf_counter() - t0) * 1e3
        choice = out["choices"][0]  # type: ignore[index]
        answer = choice["text"]
        n_gen = out["usage"]["completion_tokens"]  # type: ignore[index]
        if choice.get("finish_reason") == "length":
            raise DecodeError(f"the JSON answer did not finish within {self.max_tokens} tokens: "
                              f"{answer[:80]!r}...; nothing was returned")
        try:
            data = json.loads(answer)
            jsonschema.validate(data, schema)
        except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
            raise DecodeError(f"the JSON answer is not valid ({exc}); nothing was returned") \
                from None
        calls = [ToolCall(c["name"], c["arguments"], id=str(i + 1)) for i, c in enumerate(data)]
        json_text = render_answer(calls, tools, "json")
        evaluated = len(prompt) - cached
        return DecodeResult(
            calls=calls, latency_ms=latency, prompt_tokens=len(prompt),
            forward_passes=math.ceil(evaluated / self.n_batch) + n_gen,
            sampled_tokens=n_gen, json_tokens=len(self.llm.tokenize(json_text.encode(),
                                                                     add_bos=False)),
            text=answer, prompt_tokens_evaluated=evaluated, first_call_ms=latency)

    def decode_stream(self, context: DecodeContext | Sequence[Mapping[str, str]],
                      tools: Sequence[ToolSpec]) -> Iterator[ToolCall]:
        """The JSON list is parsed at its end, so every call comes at once."""
        yield from self.decode(context, tools).calls

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None  # type: ignore[assignment]

    def __enter__(self) -> JsonBaselineDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
