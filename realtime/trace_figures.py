"""What `rtagent report` shows: figures and PNG plots from a trace or a jitter run.

Inputs are a Chrome trace written by :mod:`realtime.trace` /
:class:`realtime.trace_bus.TraceCollector` (``traceEvents``) and/or a jitter
JSON written by ``rtagent jitter --json`` (``reports``). From them:

- release lateness per loop (from ``tick`` spans, see :mod:`realtime.loop_trace`,
  or the jitter reports), plotted with :func:`realtime.jitter.save_plot`;
- a timeline of one episode (an ``agent`` turn): one row per process/track,
  speculative runs coloured by whether their result was served;
- the decoder's latency distribution (``decode`` spans);
- a table of key figures.
"""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime.errors import RtAgentError
from realtime.jitter import Distribution, JitterReport, load_json
from realtime.trace import named_events
from realtime.trace_file import parse_chrome

__all__ = ["COLOURS", "RunData", "key_figures", "load_run", "loop_reports", "plot_decoder",
           "plot_lateness", "plot_timeline", "speculative_outcomes"]

TRACK_ORDER = ("turns", "vad", "stt", "agent", "decoder", "calls", "tools", "speculation", "loop",
               "speech")
COLOURS = {
    "turn": "#c7c7c7", "decode": "#8e6bbf", "direct": "#1f77b4", "served": "#2ca02c",
    "joined": "#98df8a", "wasted": "#ff7f0e", "cancelled": "#b0b0b0", "dry-run": "#bcbd22",
    "tick": "#9ecae1", "miss": "#d62728", "audio": "#17becf", "other": "#7f7f7f",
}


@dataclass
class RunData:
    """Everything loaded from the input files (times in µs from the trace's start)."""

    paths: list[Path]
    events: list[dict[str, Any]] = field(default_factory=list)
    other: dict[str, Any] = field(default_factory=dict)
    jitter: list[JitterReport] = field(default_factory=list)

    def spans(self, track: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("ph") == "X"
                and (track is None or e["track"] == track) and (name is None or e["name"] == name)]

    def last_counter(self, name: str) -> dict[str, Any] | None:
        found = [e for e in self.events if e.get("ph") == "C" and e["name"] == name]
        return max(found, key=lambda e: e["ts"])["args"] if found else None


def load_run(paths: Sequence[str | Path]) -> RunData:
    """Read Chrome traces and jitter JSONs (any mix) into one :class:`RunData`."""
    data = RunData([Path(p) for p in paths])
    for path in data.paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise RtAgentError(f"{path}: no such file; write one with --trace PATH "
                               "or `rtagent jitter --json PATH`") from None
        except OSError as exc:
            raise RtAgentError(f"{path}: not readable ({exc})") from exc
        try:
            doc: Any = json.loads(text)
        except ValueError as exc:
            if not text.lstrip().startswith("["):
                raise RtAgentError(f"{path}: not readable JSON ({exc})") from exc
            doc = []  # a trace cut short (its writer was killed): read what is whole
        if isinstance(doc, list) or (isinstance(doc, dict) and "traceEvents" in doc):
            events, other, complete = parse_chrome(text)
            data.events += named_events(events)
            data.other.update(other)
            if not complete:
                data.other["cut_short"] = f"{path.name} ends early (its writer was killed)"
        elif isinstance(doc, dict) and "reports" in doc:
            data.jitter += load_json(path)
        else:
            raise RtAgentError(f"{path}: expected a Chrome trace (traceEvents) or a jitter "
                               "JSON (reports), got neither")
    if not data.events and not data.jitter:
        raise RtAgentError("the inputs hold no events and no jitter reports; nothing to report")
    return data


# -- loops ------------------------------------------------------------------------
def loop_reports(data: RunData) -> list[JitterReport]:
    """One jitter report per process with ``tick`` spans, then the jitter files' reports."""
    by_proc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in data.spans(name="tick"):
        if "lateness_us" in e["args"]:
            by_proc[e["process"]].append(e)
    summaries = {e["process"]: e["args"] for e in data.events
                 if e.get("ph") == "i" and e["name"] == "loop summary"}
    out = []
    for proc, ticks in by_proc.items():
        ticks.sort(key=lambda e: e["ts"])
        late = [float(e["args"]["lateness_us"]) for e in ticks]
        execs = [float(e["args"].get("exec_us", e.get("dur", 0.0))) for e in ticks]
        wakes = [float(e["ts"]) for e in ticks]
        periods = [b - a for a, b in zip(wakes, wakes[1:], strict=False)]
        s = summaries.get(proc, {})
        hz = float(s.get("hz") or (1e6 / _median(periods) if periods else 0.0))
        out.append(JitterReport(
            source=f"{proc} loop", hz=hz, ticks=int(s.get("ticks", len(ticks))),
            lateness_us=Distribution.from_values(late),
            period_us=Distribution.from_values(periods) if periods else None,
            exec_us=Distribution.from_values(execs),
            deadline_misses=int(s.get("deadline_misses",
                                      sum(bool(e["args"].get("miss")) for e in ticks))),
            overruns=s.get("overruns"), skipped_releases=s.get("skipped_releases"),
            samples={"t_s": [(w - wakes[0]) / 1e6 for w in wakes], "lateness_us": late,
                     "exec_us": execs}))
    return out + data.jitter


def _median(xs: Sequence[float]) -> float:
    return Distribution.from_values(list(xs)).p50


# -- speculation -------------------------------------------------------------------
def speculative_outcomes(data: RunData) -> dict[int, str]:
    """For each speculative run (by id()): ``served``, ``joined``, ``wasted``,
    ``cancelled`` or ``dry-run``. A run is served when a later agent call with the
    same key was answered from speculation (each run serves at most once)."""
    runs = sorted((e for e in data.spans(track="speculation")), key=lambda e: e["ts"])
    out: dict[int, str] = {}
    for e in runs:
        kind, status = e["args"].get("kind"), e["args"].get("status")
        out[id(e)] = ("dry-run" if kind == "dry-run" else
                      "cancelled" if status == "cancelled" else "wasted")
    for c in sorted(data.spans(track="calls"), key=lambda e: e["ts"]):
        served = c["args"].get("served")
        if served not in ("speculation", "joined"):
            continue
        match = [e for e in runs if out[id(e)] == "wasted" and e["args"].get("call") ==
                 c["args"].get("call") and e["ts"] <= c["ts"] + c.get("dur", 0.0)]
        if match:
            out[id(match[-1])] = "served" if served == "speculation" else "joined"
    return out


# -- key figures ---------------------------------------------------------------------
def _pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def key_figures(data: RunData, loops: Sequence[JitterReport]) -> list[tuple[str, str]]:
    """(name, value) rows for the summary table."""
    rows: list[tuple[str, str]] = []
    if data.other.get("cut_short"):
        rows.append(("trace", str(data.other["cut_short"])))
    for r in loops:
        rows += [(f"{r.source}: ticks", f"{r.ticks:,}"),
                 (f"{r.source}: deadline misses", "-" if r.deadline_misses is None
                  else f"{r.deadline_misses:,}"),
                 (f"{r.source}: lateness p50 / p99 / max",
                  f"{r.lateness_us.p50:,.0f} / {r.lateness_us.p99:,.0f} / "
                  f"{r.lateness_us.max:,.0f} µs")]
    decodes = [e["dur"] / 1e3 for e in data.spans(track="decoder", name="decode")]
    if decodes:
        rows.append(("decodes", f"{len(decodes):,}"))
        rows.append(("decode latency p50 / p95 / max",
                     f"{_pct(decodes, 50):,.1f} / {_pct(decodes, 95):,.1f} / "
                     f"{max(decodes):,.1f} ms"))
    turns = data.spans(track="agent")
    if turns:
        rows.append(("agent turns", f"{len(turns):,}"))
    calls = data.spans(track="calls")
    if calls:
        served: defaultdict[str, int] = defaultdict(int)
        for c in calls:
            served[c["args"].get("served", "?")] += 1
        rows.append(("tool calls (direct / from speculation / joined)",
                     f"{len(calls):,} ({served['direct']} / {served['speculation']} / "
                     f"{served['joined']})"))
        durs = [c["dur"] / 1e3 for c in calls]
        rows.append(("tool call latency p50 / p95", f"{_pct(durs, 50):,.1f} / "
                     f"{_pct(durs, 95):,.1f} ms"))
    elif data.spans(track="tools"):
        rows.append(("tool calls", f"{len(data.spans(track='tools')):,}"))
    m = data.last_counter("speculation")
    if m:
        rows.append(("speculative launches / hits / joins",
                     f"{m.get('launched', 0)} / {m.get('hits', 0)} / {m.get('joins', 0)}"))
        rows.append(("speculation waste: unused / cancelled / invalidated",
                     f"{m.get('unused', 0)} / {m.get('cancelled', 0)} / "
                     f"{m.get('invalidated', 0)} ({m.get('wasted_ms', 0.0):,.0f} ms)"))
        rows.append(("latency saved by speculation", f"{m.get('latency_saved_ms', 0.0):,.0f} ms"))
        rows.append(("writes blocked / executed ahead",
                     f"{m.get('writes_blocked', 0)} / {m.get('writes_executed', 0)}"))
    senders = data.other.get("trace_senders") or {}
    dropped = sum(int(s.get("dropped", 0)) for s in senders.values())
    if senders or "collector_dropped" in data.other:
        rows.append(("trace events dropped (senders / collector)",
                     f"{dropped} / {data.other.get('collector_dropped', 0)}"))
    if data.events:
        procs = sorted({e["process"] for e in data.events})
        rows.append(("processes traced", ", ".join(procs)))
    return rows


# -- plots ---------------------------------------------------------------------------
def _png(fig: Any) -> bytes:
    from matplotlib import pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def plot_lateness(reports: Sequence[JitterReport], tmp_dir: Path) -> bytes:
    """The lateness histogram and time series (same plot as `rtagent jitter --plot`)."""
    from realtime.jitter import save_plot

    path = save_plot(tmp_dir / "lateness.png", reports, title="release lateness per loop")
    return path.read_bytes()


def plot_decoder(data: RunData) -> bytes | None:
    decodes = [e["dur"] / 1e3 for e in data.spans(track="decoder", name="decode")]
    if not decodes:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    ax.hist(decodes, bins=min(40, max(5, len(decodes))), color=COLOURS["decode"])
    for q, style in ((50, "--"), (95, ":")):
        v = _pct(decodes, q)
        ax.axvline(v, color="black", linestyle=style, label=f"p{q} {v:,.1f} ms")
    ax.set_xlabel("decode latency (ms)")
    ax.set_ylabel("decodes")
    ax.set_title(f"decoder latency ({len(decodes)} decodes)")
    ax.legend(fontsize="small")
    return _png(fig)


def _episode_window(data: RunData, episode: int | None) -> tuple[float, float, str]:
    turns = sorted(data.spans(track="agent"), key=lambda e: e["ts"])
    if episode is not None:
        want = [t for t in turns if t["name"] == f"turn {episode}"]
        if not want:
            names = ", ".join(t["name"] for t in turns) or "none"
            raise RtAgentError(f"no agent turn {episode} in the trace (turns: {names})")
        return _with_request(data, want[0])
    spec = data.spans(track="speculation")
    if turns:  # the turn that speculation overlapped most
        def overlap(t: dict[str, Any]) -> float:
            a, b = t["ts"], t["ts"] + t["dur"]
            return float(sum(max(0.0, min(b, s["ts"] + s["dur"]) - max(a, s["ts"])) for s in spec))
        t = max(turns, key=lambda t: (overlap(t), -t["ts"]))
        return _with_request(data, t)
    busy = [e for e in data.spans() if e["track"] != "loop"] or data.spans()
    if not busy:
        raise RtAgentError("the trace has no spans to draw")
    a = min(e["ts"] for e in busy)
    b = max(e["ts"] + e["dur"] for e in busy)
    return a, min(b, a + 5e6), "whole run" if b - a <= 5e6 else "first 5 s"


def _with_request(data: RunData, turn: dict[str, Any]) -> tuple[float, float, str]:
    """An agent turn's window, widened to the request it answers where the front-end
    traced one (track ``turns``: a voice request from its first word to its first audio)."""
    a, b, label = turn["ts"], turn["ts"] + turn["dur"], turn["name"]
    for r in data.spans(track="turns"):
        if r["ts"] <= b and r["ts"] + r["dur"] >= a:
            a, b, label = min(a, r["ts"]), max(b, r["ts"] + r["dur"]), f"{label} ({r['name']})"
    return a, b, label


def _lanes(bars: list[tuple[float, float, str]], max_lanes: int = 6
           ) -> list[list[tuple[float, float, str]]]:
    """Split overlapping bars into lanes (greedy interval partitioning)."""
    lanes: list[list[tuple[float, float, str]]] = []
    ends: list[float] = []
    for bar in sorted(bars):
        x, w, _ = bar
        i = next((j for j, end in enumerate(ends) if end <= x), None)
        if i is None:
            if len(lanes) < max_lanes:
                lanes.append([])
                ends.append(x + w)
                i = len(lanes) - 1
            else:
                i = min(range(len(ends)), key=ends.__getitem__)
        lanes[i].append(bar)
        ends[i] = max(ends[i], x + w)
    return lanes


def _colour(e: dict[str, Any], outcome: dict[int, str]) -> str:
    track, args = e["track"], e["args"]
    if track == "speculation":
        return COLOURS[outcome.get(id(e), "wasted")]
    if track == "calls":
        served = args.get("served")
        return COLOURS["served" if served == "speculation" else
                       "joined" if served == "joined" else "direct"]
    if track == "loop":
        return COLOURS["miss" if args.get("miss") else "tick"]
    key = {"decoder": "decode", "agent": "turn", "turns": "turn", "tools": "direct",
           "stt": "decode", "vad": "audio", "speech": "audio"}.get(track, "other")
    return COLOURS[key]


def plot_timeline(data: RunData, episode: int | None = None) -> tuple[bytes, str] | None:
    """One episode: a row per process/track (more where spans overlap), instants
    (e.g. transcripts) as labelled markers; speculation against decoding."""
    if not data.spans():
        return None
    a, b, label = _episode_window(data, episode)
    margin = max((b - a) * 0.1, 20e3)
    lo, hi = a - margin, b + margin
    outcome = speculative_outcomes(data)
    rows: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    for e in data.spans():
        start, end = e["ts"], e["ts"] + e["dur"]
        if end >= lo and start <= hi:
            rows[(e["process"], e["track"])].append(
                ((start - a) / 1e3, max(e["dur"] / 1e3, (hi - lo) / 1e3 / 600), _colour(e, outcome)))
    marks = [e for e in data.events if e.get("ph") == "i" and lo <= e["ts"] <= hi
             and e["track"] != "loop"]
    for m in marks:
        rows.setdefault((m["process"], m["track"]), [])
    if not rows:
        return None

    def order(key: tuple[str, str]) -> tuple[str, int, str]:
        proc, track = key
        return (proc, TRACK_ORDER.index(track) if track in TRACK_ORDER else 99, track)

    plt = _pyplot()
    from matplotlib.patches import Patch

    layout: list[tuple[str, list[tuple[float, float, str]]]] = []
    first_row: dict[tuple[str, str], int] = {}
    for key in sorted(rows, key=order):
        first_row[key] = len(layout)
        for i, lane in enumerate(_lanes(rows[key]) or [[]]):
            layout.append((f"{key[0]} / {key[1]}" if i == 0 else "", lane))
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.42 * len(layout)), layout="constrained")
    for y, (_, bars) in enumerate(layout):
        if bars:
            ax.broken_barh([(x, w) for x, w, _ in bars], (y - 0.38, 0.76),
                           facecolors=[c for _, _, c in bars], edgecolor="white", linewidth=0.4)
    for m in marks:
        y = first_row[(m["process"], m["track"])]
        x = (m["ts"] - a) / 1e3
        ax.plot([x], [y], marker="v", color="black", markersize=7)
        ax.annotate(m["name"], (x, y), xytext=(4, 6), textcoords="offset points", fontsize=8)
    ax.set_yticks(range(len(layout)), [name for name, _ in layout])
    ax.set_ylim(len(layout) - 0.5, -0.9)
    ax.set_xlim((lo - a) / 1e3, (hi - a) / 1e3)
    ax.set_xlabel("time (ms) since the start of the turn (of its request, when one was traced)")
    ax.set_title(f"timeline of {label}", fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    legend = ["turn", "decode", "direct", "served", "joined", "wasted", "cancelled", "tick", "miss"]
    if any(track in ("vad", "speech") for _, track in rows):
        legend.append("audio")
    fig.legend(handles=[Patch(color=COLOURS[k], label=k) for k in legend], fontsize="small",
               ncol=len(legend), loc="outside lower center")
    return _png(fig), label
