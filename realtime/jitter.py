"""Jitter statistics: from a loop's tick history (or cyclictest) to a report.

A :class:`JitterReport` holds, for one run, the distribution of release
lateness (actual wake-up − scheduled release), of the period between
wake-ups and of tick execution time (min, mean, p50, p90, p99, p99.9, max, in
µs), a lateness histogram on fixed log-spaced edges, the deadline-miss
counters, the raw samples (when known) and free-form ``meta``. It converts to
and from JSON, renders as a rich table (several runs side by side, with
ratios against a baseline) and plots to PNG (histogram + time series).

cyclictest reports become the same object (:func:`report_from_cyclictest_json`),
so both are compared on equal terms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from realtime.errors import RtAgentError
from realtime.loop import LoopSummary, TickHistory

__all__ = [
    "HIST_EDGES_US",
    "Distribution",
    "JitterReport",
    "load_json",
    "render_table",
    "report_from_cyclictest_json",
    "report_from_history",
    "save_json",
    "save_plot",
]

JSON_VERSION = 1
# Histogram bucket edges in µs (the last bucket is open: >= 50 ms).
HIST_EDGES_US: tuple[float, ...] = (
    0, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
)
_PCTS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))


@dataclass(frozen=True)
class Distribution:
    """Summary of one quantity over a run, in microseconds."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def from_values(cls, values_us: Sequence[float]) -> Distribution:
        """Exact statistics; percentiles interpolate linearly between order statistics."""
        if not values_us:
            raise RtAgentError("no samples: run the loop for at least one tick")
        xs = sorted(values_us)
        return cls(
            count=len(xs),
            min=xs[0],
            mean=math.fsum(xs) / len(xs),
            **{name: _percentile(xs, q) for name, q in _PCTS},
            max=xs[-1],
        )

    @classmethod
    def from_counts(cls, counts: Mapping[int, int], mean: float | None = None) -> Distribution:
        """From a histogram of integer µs values (cyclictest's 1 µs buckets).

        Percentiles are the smallest bucket whose cumulative count reaches
        q% of the total (the inverse CDF), so they are exact to the µs.
        """
        items = sorted((int(k), int(v)) for k, v in counts.items() if v > 0)
        total = sum(v for _, v in items)
        if total == 0:
            raise RtAgentError("empty histogram: the run recorded no cycles")

        def inv_cdf(q: float) -> float:
            need = q / 100.0 * total
            cum = 0
            for value, n in items:
                cum += n
                if cum >= need - 1e-9:
                    return float(value)
            return float(items[-1][0])

        exact_mean = math.fsum(k * v for k, v in items) / total
        return cls(
            count=total,
            min=float(items[0][0]),
            mean=exact_mean if mean is None else mean,
            **{name: inv_cdf(q) for name, q in _PCTS},
            max=float(items[-1][0]),
        )


def _percentile(sorted_xs: Sequence[float], q: float) -> float:
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * frac


def _histogram(values_us: Sequence[float]) -> list[int]:
    counts = [0] * len(HIST_EDGES_US)
    for v in values_us:
        counts[_bucket(v)] += 1
    return counts


def _bucket(v: float) -> int:
    i = 0
    for j, edge in enumerate(HIST_EDGES_US):
        if v >= edge:
            i = j
    return i


@dataclass
class JitterReport:
    """Jitter of one run. Times are in µs; ``samples`` hold the raw series."""

    source: str  # e.g. "rtagent loop", "cyclictest"
    hz: float
    ticks: int
    lateness_us: Distribution
    period_us: Distribution | None = None
    exec_us: Distribution | None = None
    histogram: list[int] = field(default_factory=list)  # counts per HIST_EDGES_US bucket
    deadline_misses: int | None = None
    overruns: int | None = None
    skipped_releases: int | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)  # t_s, lateness_us, ...
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JitterReport:
        def dist(x: Mapping[str, Any] | None) -> Distribution | None:
            return None if x is None else Distribution(**x)

        lateness = dist(d["lateness_us"])
        if lateness is None:
            raise RtAgentError("jitter JSON: lateness_us is missing")
        return cls(
            source=str(d["source"]),
            hz=float(d["hz"]),
            ticks=int(d["ticks"]),
            lateness_us=lateness,
            period_us=dist(d.get("period_us")),
            exec_us=dist(d.get("exec_us")),
            histogram=[int(x) for x in d.get("histogram", [])],
            deadline_misses=d.get("deadline_misses"),
            overruns=d.get("overruns"),
            skipped_releases=d.get("skipped_releases"),
            samples={k: [float(x) for x in v] for k, v in d.get("samples", {}).items()},
            meta=dict(d.get("meta", {})),
        )


def report_from_history(
    history: TickHistory,
    summary: LoopSummary,
    *,
    source: str = "rtagent loop",
    meta: Mapping[str, Any] | None = None,
    keep_samples: bool = True,
) -> JitterReport:
    """Statistics of the ticks kept in ``history`` (counters from ``summary``)."""
    release, wake, end = history.arrays()
    if not release:
        raise RtAgentError("the loop recorded no ticks: run it for at least one period")
    lateness = [(w - r) / 1000.0 for r, w in zip(release, wake, strict=True)]
    execs = [(e - w) / 1000.0 for w, e in zip(wake, end, strict=True)]
    periods = [(b - a) / 1000.0 for a, b in zip(wake, wake[1:], strict=False)]
    samples: dict[str, list[float]] = {}
    if keep_samples:
        samples = {
            "t_s": [(r - release[0]) / 1e9 for r in release],
            "lateness_us": lateness,
            "exec_us": execs,
        }
    return JitterReport(
        source=source,
        hz=summary.hz,
        ticks=summary.ticks,
        lateness_us=Distribution.from_values(lateness),
        period_us=Distribution.from_values(periods) if periods else None,
        exec_us=Distribution.from_values(execs),
        histogram=_histogram(lateness),
        deadline_misses=summary.deadline_misses,
        overruns=summary.overruns,
        skipped_releases=summary.skipped_releases,
        samples=samples,
        meta=dict(meta or {}),
    )


def report_from_cyclictest_json(
    doc: Mapping[str, Any], *, hz: float, meta: Mapping[str, Any] | None = None
) -> JitterReport:
    """A report from cyclictest's ``--json`` output (run with ``--histogram``).

    cyclictest measures the same thing as our lateness: wake-up minus the
    absolute release it asked ``clock_nanosleep`` for, in whole µs. Cycles
    beyond the histogram range are counted at the reported max.
    """
    try:
        thread = doc["thread"]["0"]
        counts = {int(k): int(v) for k, v in thread.get("histogram", {}).items()}
        cycles = int(thread["cycles"])
        mx = int(thread["max"])
        avg = float(thread["avg"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RtAgentError(f"cyclictest JSON is not in the expected format ({exc!r})") from exc
    overflow = cycles - sum(counts.values())
    if overflow > 0:
        counts[mx] = counts.get(mx, 0) + overflow
    dist = Distribution.from_counts(counts, mean=avg)
    hist = [0] * len(HIST_EDGES_US)
    for value, n in counts.items():
        hist[_bucket(value)] += n
    return JitterReport(
        source="cyclictest",
        hz=hz,
        ticks=cycles,
        lateness_us=dist,
        histogram=hist,
        meta=dict(meta or {}),
    )


# -- JSON -------------------------------------------------------------------
def save_json(path: str | Path, reports: Sequence[JitterReport], **extra: Any) -> Path:
    """Write reports (and any extra top-level fields) as one JSON document."""
    doc = {"version": JSON_VERSION, "hist_edges_us": list(HIST_EDGES_US), **extra,
           "reports": [r.to_dict() for r in reports]}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return out


def load_json(path: str | Path) -> list[JitterReport]:
    doc = json.loads(Path(path).read_text())
    if doc.get("version") != JSON_VERSION:
        raise RtAgentError(
            f"{path}: expected jitter JSON version {JSON_VERSION}, got {doc.get('version')!r}"
        )
    return [JitterReport.from_dict(r) for r in doc["reports"]]


# -- table --------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"


def render_table(reports: Sequence[JitterReport], *, title: str = "release lateness") -> Any:
    """A rich Table, one column per report; the last report is the baseline
    (e.g. cyclictest) and the mean, p99 and max of the others show their
    ratio to it, e.g. ``8.0 (0.12x)``.
    """
    from rich.table import Table

    base = reports[-1] if len(reports) > 1 else None
    vs = f", ratio vs {base.source}" if base is not None else ""
    table = Table(title=f"{title} (µs{vs})", title_justify="left")
    table.add_column("")
    for r in reports:
        table.add_column(r.source, justify="right")

    def row(name: str, values: list[float | None], ratio: bool, integer: bool = False) -> None:
        cells = ["-" if v is None else f"{v:,.0f}" if integer else _fmt(v) for v in values]
        b = values[-1]
        if base is not None and ratio and b:
            for i, v in enumerate(values[:-1]):
                if v is not None:
                    cells[i] += f" ({v / b:.2f}x)"
        table.add_row(name, *cells)

    for name in ("min", "mean", "p50", "p90", "p99", "p999", "max"):
        label = "p99.9" if name == "p999" else name
        row(label, [getattr(r.lateness_us, name) for r in reports], name in ("p99", "max", "mean"))
    row("ticks", [float(r.ticks) for r in reports], False, integer=True)
    row("deadline misses", [_num(r.deadline_misses) for r in reports], False, integer=True)
    row("overruns", [_num(r.overruns) for r in reports], False, integer=True)
    row("p99 tick exec", [r.exec_us.p99 if r.exec_us else None for r in reports], False)
    row("max tick exec", [r.exec_us.max if r.exec_us else None for r in reports], False)
    # CPU time per second of run, in ms (where measured: cyclictest's is not).
    for label, key in (("CPU ms/s, loop thread", "loop_thread_cpu_ms_per_s"),
                       ("CPU ms/s, process", "cpu_ms_per_s")):
        if any(key in r.meta for r in reports):
            row(label, [r.meta.get(key) for r in reports], False)
    return table


def _num(x: int | None) -> float | None:
    return None if x is None else float(x)


# -- plot -----------------------------------------------------------------------
def save_plot(path: str | Path, reports: Sequence[JitterReport], *, title: str = "") -> Path:
    """PNG: lateness histogram (all reports) above a lateness time series.

    Reports with raw samples are histogrammed on fine log bins; cyclictest's
    (no samples) is drawn from its bucket counts on :data:`HIST_EDGES_US`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_h, ax_t) = plt.subplots(2, 1, figsize=(9, 7), layout="constrained")
    fine = [10 ** (i / 20) for i in range(-20, 121)]  # 0.1 µs .. 1 s
    for r in reports:
        xs = r.samples.get("lateness_us")
        label = f"{r.source}: p99 {r.lateness_us.p99:.0f} µs, max {r.lateness_us.max:.0f} µs"
        if xs:
            ax_h.hist([max(x, 0.1) for x in xs], bins=fine, histtype="step", label=label)
        elif r.histogram:
            edges = [max(e, 0.1) for e in HIST_EDGES_US] + [100_000.0]
            ax_h.stairs(r.histogram, edges, label=label)
    ax_h.set_xscale("log")
    ax_h.set_yscale("log")
    ax_h.set_xlabel("release lateness (µs)")
    ax_h.set_ylabel("ticks")
    ax_h.legend(fontsize="small")
    ax_h.set_title(title or "release lateness")
    for r in reports:
        t, xs = r.samples.get("t_s"), r.samples.get("lateness_us")
        if t and xs:
            ax_t.plot(t, [max(x, 0.1) for x in xs], ".", markersize=2, label=r.source)
    ax_t.set_yscale("log")
    ax_t.set_xlabel("time since first release (s)")
    ax_t.set_ylabel("lateness (µs)")
    if ax_t.get_legend_handles_labels()[0]:
        ax_t.legend(fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out
