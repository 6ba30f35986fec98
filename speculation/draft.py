"""A small learned draft model (torch) that predicts the next call.

From the last two tool names and hashed features of the last result and of the
observation, a two-layer MLP predicts the next tool and, for each argument of
each tool, which derivation fills it (the derivations are those the miner would
consider: constants, earlier arguments and results, observation fields). It
trains on traces in seconds on a CPU and predicts in well under a millisecond.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from control.tools import ToolCall, canonical_json
from realtime.errors import ConfigError
from speculation.context_keys import features
from speculation.derive import (
    Context,
    Derivation,
    LeafCache,
    Prediction,
    candidates,
    combine_args,
)
from speculation.traces import Episode

__all__ = ["DraftPredictor"]

_RESULT_BUCKETS = 64
_OBS_BUCKETS = 32
_MAX_DERIVS = 32


def _bucket(text: str, n: int) -> int:
    return zlib.crc32(text.encode()) % n


class _Net(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_tools: int, n_derivs: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU())
        self.tool = nn.Linear(hidden, n_tools)
        self.deriv = nn.Linear(hidden, max(1, n_derivs))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        out: tuple[torch.Tensor, torch.Tensor] = (self.tool(h), self.deriv(h))
        return out


class DraftPredictor:
    """A trained draft model as a :class:`~speculation.predictors.Predictor`."""

    name = "draft"

    def __init__(self, tools: Sequence[str], slots: dict[str, list[Derivation]],
                 slot_args: dict[str, list[str]], hidden: int = 64, lookback: int = 64) -> None:
        self.tools = list(tools)
        self.index = {t: i for i, t in enumerate(self.tools)}
        self.slots = slots                 # "tool\targ" -> derivations
        self.slot_args = slot_args         # tool -> arguments usually given
        self.lookback = lookback
        self.offsets: dict[str, int] = {}
        n = 0
        for s, ds in slots.items():
            self.offsets[s] = n
            n += len(ds)
        self.n_in = 2 * (len(self.tools) + 1) + _RESULT_BUCKETS + _OBS_BUCKETS
        self.net = _Net(self.n_in, hidden, len(self.tools), n)

    def encode(self, ctx: Context) -> torch.Tensor:
        v = len(self.tools) + 1
        names = [s.name for s in ctx.history]
        idx = [j * v + self.index.get(name, len(self.tools))
               for j, name in enumerate(([*["^", "^"], *names])[-2:])]
        last = ctx.history[-1] if ctx.history else None
        idx += [2 * v + _bucket(f, _RESULT_BUCKETS) for f in features(last)]
        base = 2 * v + _RESULT_BUCKETS
        for k, val in list(ctx.observation.items())[:16]:
            idx.append(base + _bucket(k, _OBS_BUCKETS))
            if isinstance(val, str | bool) and len(str(val)) <= 24:
                idx.append(base + _bucket(f"{k}={val}", _OBS_BUCKETS))
        x = torch.zeros(self.n_in)
        x[torch.tensor(idx, dtype=torch.long)] = 1.0
        return x

    @classmethod
    def train(cls, episodes: Sequence[Episode], *, epochs: int = 150, hidden: int = 64,
              lr: float = 0.01, seed: int = 0, lookback: int = 64) -> DraftPredictor:
        """Fit on ``episodes`` (full-batch Adam; seconds on a CPU)."""
        if epochs < 1:
            raise ConfigError(f"epochs: expected >= 1, got {epochs}")
        examples: list[tuple[Context, str, dict[str, list[str]]]] = []
        tool_n: Counter[str] = Counter()
        arg_n: Counter[str] = Counter()
        deriv_n: dict[str, Counter[str]] = {}
        table: dict[str, Derivation] = {}
        for ep in episodes:
            hist: tuple[Any, ...] = ()
            cache = LeafCache()
            for i, step in enumerate(ep.steps):
                ctx = Context(hist[-lookback:], ep.observation_at(i))
                matches: dict[str, list[str]] = {}
                for a, val in step.arguments.items():
                    keys = []
                    for d in candidates(val, ctx, counter=step.name, cache=cache):
                        k = d.key()
                        table.setdefault(k, d)
                        keys.append(k)
                    matches[a] = keys
                    deriv_n.setdefault(f"{step.name}\t{a}", Counter()).update(keys)
                    arg_n[f"{step.name}\t{a}"] += 1
                tool_n[step.name] += 1
                examples.append((ctx, step.name, matches))
                hist = hist + (step,)
        if not examples:
            raise ConfigError("DraftPredictor.train: expected episodes with steps, got none")
        tools = sorted(tool_n)
        slots: dict[str, list[Derivation]] = {}
        for slot, c in sorted(deriv_n.items()):
            ranked = sorted(c.items(), key=lambda kv: (-kv[1], table[kv[0]].rank(), kv[0]))
            slots[slot] = [table[k] for k, n in ranked[:_MAX_DERIVS] if n >= 2] or \
                [table[ranked[0][0]]]
        slot_args: dict[str, list[str]] = {}
        for slot, n in arg_n.items():
            tool, arg = slot.split("\t")
            if n * 2 > tool_n[tool]:
                slot_args.setdefault(tool, []).append(arg)
        torch.manual_seed(seed)
        model = cls(tools, slots, slot_args, hidden, lookback)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny matrices: extra threads only contend for the CPU
        try:
            model._fit(examples, epochs, lr)
        finally:
            torch.set_num_threads(threads)
        return model

    def _fit(self, examples: list[tuple[Context, str, dict[str, list[str]]]], epochs: int,
             lr: float) -> None:
        x = torch.stack([self.encode(c) for c, _, _ in examples])
        y = torch.tensor([self.index[t] for _, t, _ in examples])
        targets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for slot, ds in self.slots.items():
            keys = {d.key(): j for j, d in enumerate(ds)}
            rows, masks = [], []
            for i, (_, tool, matches) in enumerate(examples):
                tool_arg = slot.split("\t")
                if tool != tool_arg[0] or tool_arg[1] not in matches:
                    continue
                m = torch.zeros(len(ds), dtype=torch.bool)
                for k in matches[tool_arg[1]]:
                    if k in keys:
                        m[keys[k]] = True
                if m.any():
                    rows.append(i)
                    masks.append(m)
            if rows:
                targets[slot] = (torch.tensor(rows), torch.stack(masks))
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        ce = nn.CrossEntropyLoss()
        self.net.train()
        for _ in range(epochs):
            opt.zero_grad()
            tool_logits, deriv_logits = self.net(x)
            loss = ce(tool_logits, y)
            for slot, (idx, mask) in targets.items():
                o = self.offsets[slot]
                logits = deriv_logits[idx, o:o + mask.shape[1]]
                right = logits.masked_fill(~mask, float("-inf")).logsumexp(1)
                loss = loss + (logits.logsumexp(1) - right).mean() / max(1, len(targets))
            loss.backward()
            opt.step()
        self.net.eval()

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        ctx = Context(ctx.history[-self.lookback:], ctx.observation)
        with torch.no_grad():
            tool_logits, deriv_logits = self.net(self.encode(ctx).unsqueeze(0))
            p_tool = torch.softmax(tool_logits[0], 0).tolist()
        ranked = [i for i in sorted(range(len(self.tools)), key=lambda i: -p_tool[i])[: k + 1]
                  if p_tool[i] >= 0.01]
        out: dict[str, Prediction] = {}
        for ti in ranked:
            tool = self.tools[ti]
            names = self.slot_args.get(tool, [])
            choices: list[list[tuple[Any, float]]] = []
            for arg in names:
                slot = f"{tool}\t{arg}"
                ds = self.slots[slot]
                o = self.offsets[slot]
                probs = torch.softmax(deriv_logits[0, o:o + len(ds)], 0).tolist()
                # a value's probability: the sum over the derivations that give it (several
                # often agree: the latest call's field, the previous call's, by position...)
                by_value: dict[str, tuple[Any, float]] = {}
                for j in sorted(range(len(ds)), key=lambda j: -probs[j]):
                    if probs[j] < 0.01:
                        break
                    ok, v = ds[j].apply(ctx)
                    if ok:
                        text = canonical_json(v)
                        by_value[text] = (v, by_value.get(text, (v, 0.0))[1] + probs[j])
                opts = sorted(by_value.values(), key=lambda vp: -vp[1])[:2]
                if not opts:
                    break
                choices.append(opts)
            if len(choices) != len(names):
                continue
            for args, p in combine_args(choices, names):
                call = ToolCall(tool, args)
                prob = p_tool[ti] * p
                if call.key() not in out or out[call.key()].probability < prob:
                    out[call.key()] = Prediction(call, prob, "draft")
        return sorted(out.values(), key=lambda pr: -pr.probability)[:k]
