"""How a replay's report reads: a table per workload and a bar plot of the task-time
reductions against the perfect-predictor bound (`rtagent spec replay`, `bench spec`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot", "print_table"]


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    b = report["baseline"]
    t = Table(title=f"{report['workload']}: {report['test_episodes']} test episodes, "
                    f"{report['test_calls']} calls; baseline mean {b['mean_s']:.2f} s, "
                    f"p99 {b['p99_s']:.2f} s")
    for col in ("predictor", "mode", "mean s", "Δmean", "Δp50", "Δp95", "Δp99", "of bound",
                "top-1", "top-K", "hits", "wasted CPU-s", "ovh core-s/s", "writes blk/exec",
                "diverge"):
        t.add_column(col, justify="left" if col in ("predictor", "mode") else "right")
    for r in report["rows"]:
        red = r["reduction"]
        t.add_row(r["predictor"], r["mode"], f"{r['mean_s']:.2f}",
                  *(f"{-red[k]:+.1%}" for k in ("mean", "p50", "p95", "p99")),
                  f"{r['fraction_of_bound']:.0%}", f"{r['top1']:.0%}", f"{r['topk']:.0%}",
                  f"{r['hit_rate']:.0%}", f"{r['wasted_cpu_s']:.1f}",
                  f"{r['overhead_core_s_per_s_saved']:.4f}",
                  f"{r['writes_blocked']}/{r['spec_writes_executed']}",
                  str(r["divergent_episodes"]))
    console = Console(width=170)
    console.print(t)
    console.print("targets: " + ", ".join(f"{k}={v}" for k, v in report["targets"].items()))


def plot(reports: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(7 * len(reports), 4.5), squeeze=False)
    for ax, rep in zip(axes[0], reports, strict=True):
        rows = rep["rows"]
        labels = [f"{r['predictor']}\n{r['mode']}" for r in rows]
        x = range(len(rows))
        for i, k in enumerate(("mean", "p95", "p99")):
            ax.bar([j + (i - 1) * 0.27 for j in x], [100 * r["reduction"][k] for r in rows],
                   width=0.27, label=f"{k} reduction")
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set_ylabel("task time reduction vs no speculation (%)")
        ax.set_title(f"{rep['workload']} (oracle rows = perfect-predictor bound)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
