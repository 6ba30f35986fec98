"""Examples -> token ids, with the decoder's own prompt and llama.cpp's tokenizer.

The adapter must see at training time exactly the tokens the decoder feeds it:
the same messages (:func:`models.prompts.build_messages`: system prompt, tool
list, the built-in few-shot turns, the request with its scene), the same chat
template rendered by llama.cpp, the same tokenizer. So the prompt is built here
with llama.cpp (vocabulary only), and torch only ever sees token ids.

The answer is the compact call text in the pieces the SimpleTool decoder
appends them (:func:`answer_pieces`: ``name(``, each argument name with its
separator, each value from its ``=``, the closing structure), each piece
tokenized on its own, then the template's end-of-turn token. So the adapter
learns the very token sequence the decoder forces and chooses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from control.tools import ToolCall, ToolSpec
from models.callformat import NONE_CALL, ArgKind, arg_specs, render_value
from models.gguf_meta import read_gguf_metadata
from models.prompts import build_messages, fallback_template
from models.tune.data import Example

__all__ = ["Encoded", "PromptEncoder", "answer_pieces"]


@dataclass(frozen=True)
class Encoded:
    """One example as token ids: the prompt and the answer (end-of-turn included)."""

    toolset: str
    prompt: tuple[int, ...]
    answer: tuple[int, ...]
    group: str = ""
    """Examples of one group share their prompt up to the request (same tool set and scene)."""


def answer_pieces(calls: Sequence[ToolCall], tools: Sequence[ToolSpec]) -> list[str]:
    """The answer split as the sequential decoder builds it (end-of-turn not included).

    ``grasp(object=red_cube)`` -> ``["grasp(", "object", "=red_cube", ")"]``;
    a string's closing quote opens the next piece (``'", y'``, ``'")'``), and a
    call followed by another ends in ``")\n"``; no call is ``none()``.
    """
    if not calls:
        return [NONE_CALL]
    by_name = {t.name: t for t in tools}
    out: list[str] = []
    for i, call in enumerate(calls):
        last = i == len(calls) - 1
        args = arg_specs(by_name[call.name])
        if not args:
            out.append(f"{call.name}()")
            if not last:
                out.append("\n")
            continue
        out.append(f"{call.name}(")
        close, first = "", True
        for arg in args:
            if arg.name not in call.arguments:
                continue
            out.append(arg.name if first else f"{close}, {arg.name}")
            value = "=" + render_value(call.arguments[arg.name], arg)
            close = '"' if arg.kind is ArgKind.STRING and value.startswith('="') else ""
            out.append(value[:-1] if close else value)
            first = False
        out.append(close + (")" if last else ")\n"))
    return out


class PromptEncoder:
    """Builds prompts as the decoder does; owns a vocabulary-only llama.cpp model."""

    def __init__(self, gguf_path: str | Path) -> None:
        from models.llama_backend import BackendOptions, LlamaModel

        self.path = Path(gguf_path)
        self.info = read_gguf_metadata(self.path)
        self.model = LlamaModel(self.path, BackendOptions(n_ctx_tokens=2048, n_seq_max=1))
        self.template = self.model.chat_template() or fallback_template(self.info.architecture)
        self.end_token = self._end_token()

    def prompt_text(self, tools: Sequence[ToolSpec], messages: Sequence[dict[str, str]]) -> str:
        msgs = build_messages(tools, messages)
        return self.model.apply_chat_template(self.template, msgs, add_assistant=True)

    def _end_token(self) -> int:
        marker = "MARKER_ANSWER_END"
        msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
        text = self.model.apply_chat_template(self.template, msgs, add_assistant=False)
        tail = text.split(marker, 1)[1]
        toks = self.model.tokenize(tail, add_special=False, parse_special=True)
        if toks and self.model.is_eog(toks[0]):
            return toks[0]
        eog = self.model.eog_tokens()
        return eog[0]

    def tokenize_prompt(self, text: str) -> list[int]:
        return self.model.tokenize(text, add_special=self.model.add_bos, parse_special=True)

    def answer_tokens(self, calls: Sequence[ToolCall], tools: Sequence[ToolSpec]) -> list[int]:
        """The answer's tokens as the decoder appends them (end-of-turn not included)."""
        return [t for piece in answer_pieces(calls, tools)
                for t in self.model.tokenize(piece, add_special=False, parse_special=False)]

    def encode(self, ex: Example) -> Encoded:
        prompt = self.tokenize_prompt(self.prompt_text(ex.toolset.tools, ex.messages()))
        answer = self.answer_tokens(ex.calls, ex.toolset.tools)
        return Encoded(ex.toolset.name, tuple(prompt), (*answer, self.end_token),
                       f"{ex.toolset.name}|{ex.scene or ''}")

    def prompt_sha256(self, examples: Sequence[Example]) -> str:
        """A fingerprint of the prompt prefixes used (to notice a changed prompt format)."""
        h = hashlib.sha256()
        seen: set[str] = set()
        for ex in examples:
            if ex.toolset.name not in seen:
                seen.add(ex.toolset.name)
                h.update(self.prompt_text(ex.toolset.tools, [{"role": "user", "content": ""}]).encode())
        return h.hexdigest()

    def close(self) -> None:
        self.model.close()

    def __enter__(self) -> PromptEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
