"""Turn a run's trace (and/or a jitter JSON) into one self-contained HTML report.

  rtagent report run.trace.json -o report.html
  rtagent report run.trace.json jitter.json --episode 3 -o report.html

Inputs: Chrome trace / Perfetto JSON files written with --trace PATH (the demos,
`rtagent bench trace --trace`) and JSON files written by `rtagent jitter --json`.
The report holds, as PNG images embedded in the page (no network resources,
opens offline):

- release lateness of every loop: histogram and time series (from the loop's
  tick spans, or from the jitter file);
- a timeline of one episode (the agent turn that speculation overlapped most,
  or --episode N): decoding, the agent's tool calls (served from speculation,
  joined, or run directly), speculative runs (served, wasted, cancelled),
  direct tool runs and ticks, one row per process and track;
- the decoder's latency distribution;
- a table of key figures (ticks, misses, p50/p99 lateness, decodes p50/p95,
  tool calls, speculative launches/hits/waste, trace events dropped).

Open the trace itself in ui.perfetto.dev or chrome://tracing for every event.
"""

from __future__ import annotations

import argparse
import base64
import html
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "render_html", "run"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; min-width: 60%; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.v { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.5em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path,
                        help="Chrome trace JSON (--trace) and/or jitter JSON (rtagent jitter --json)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="HTML file to write (default: the first input with .html)")
    parser.add_argument("--episode", type=int, default=None,
                        help="agent turn to draw in the timeline (default: the one speculation "
                             "overlapped most)")
    parser.add_argument("--title", default=None, help="report title")


def _img(png: bytes, fig_id: str, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure id="{fig_id}"><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


def render_html(inputs: list[Path], *, episode: int | None = None,
                title: str | None = None) -> tuple[str, dict[str, Any]]:
    """The report's HTML and what it contains (figure ids, table rows)."""
    from realtime.trace_figures import (
        key_figures,
        load_run,
        loop_reports,
        plot_decoder,
        plot_lateness,
        plot_timeline,
    )

    data = load_run(inputs)
    loops = loop_reports(data)
    rows = key_figures(data, loops)
    parts: list[str] = []
    figures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rtagent-report-") as tmp:
        if loops:
            parts.append("<h2>Release lateness</h2>")
            parts.append(_img(plot_lateness(loops, Path(tmp)), "lateness",
                              "release lateness histogram and time series",
                              "Wake-up minus scheduled release of every tick, per loop: "
                              "histogram (top) and over time (bottom)."))
            figures.append("lateness")
    timeline = plot_timeline(data, episode) if data.events else None
    if timeline is not None:
        png, label = timeline
        parts.append(f"<h2>Timeline of {html.escape(label)}</h2>")
        parts.append(_img(png, "timeline", f"timeline of {label}",
                          "One row per process / track. Speculative runs in green were served "
                          "to the agent (light green: joined while still running), orange ones "
                          "were never used, grey ones were cancelled."))
        figures.append("timeline")
    decoder = plot_decoder(data)
    if decoder is not None:
        parts.append("<h2>Decoder latency</h2>")
        parts.append(_img(decoder, "decoder", "decoder latency distribution",
                          "Time from the start of a decode to its last tool call."))
        figures.append("decoder")
    table = "".join(f"<tr><th>{html.escape(k)}</th><td class=\"v\">{html.escape(v)}</td></tr>"
                    for k, v in rows)
    name = title or "rtagent run report"
    sources = ", ".join(p.name for p in inputs)
    doc = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{html.escape(name)}</title><style>{_CSS}</style></head><body>"
           f"<h1>{html.escape(name)}</h1><p class=\"meta\">from {html.escape(sources)}</p>"
           f"<h2>Key figures</h2><table id=\"figures\"><tbody>{table}</tbody></table>"
           + "".join(parts) + "</body></html>\n")
    return doc, {"figures": figures, "rows": rows}


def run(args: argparse.Namespace) -> int:
    doc, info = render_html(list(args.inputs), episode=args.episode, title=args.title)
    out: Path = args.output or args.inputs[0].with_suffix(".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc)
    print(f"wrote {out} ({len(doc) / 1024:,.0f} KiB): {len(info['rows'])} figures in the table, "
          f"plots: {', '.join(info['figures']) or 'none'}")
    return 0
