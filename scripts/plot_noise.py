#!/usr/bin/python3
"""Plots results/noise-routed.csv (scripts/noise-routed.sh): per task, test
accuracy against the two-qubit depolarizing error (with p1 = p2/10, damping
and read-out error as in the script) and against shots, one line per model and
execution; error bars: the standard error over the test samples (combined
over seeds when there are several).

Also prints the markdown tables of results/noise.md (mean over seeds; in
brackets the standard error).

Usage: scripts/plot_noise.py [CSV] [OUT_DIR]
"""
import csv
import math
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    ("qmoe", "coherent"): "QMoE, coherent",
    ("qmoe", "routed"): "QMoE, routed",
    ("qmoe", "decomposed"): "QMoE, coherent, expert gates as CNOTs (approx.)",
    ("qmoe-nat", "coherent"): "QMoE noise-aware, coherent",
    ("qmoe-nat", "routed"): "QMoE noise-aware, routed",
    ("qnn", "coherent"): "QNN",
    ("qnn-nat", "coherent"): "QNN noise-aware",
    ("qnn-matched", "coherent"): "QNN, parameter-matched",
    ("qnn-matched-nat", "coherent"): "QNN, parameter-matched, noise-aware",
}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "results/noise-routed.csv"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "results"
    rows = list(csv.DictReader(open(path)))
    # (task, model, execution, sweep, x) -> [(accuracy, std error)] over seeds
    cells = defaultdict(list)
    for r in rows:
        shots = int(r["shots"])
        sweep, x = ("shots", shots) if shots > 0 else ("noise", float(r["depol2"]))
        cells[(r["task"], r["model"], r["execution"], sweep, x)].append(
            (float(r["accuracy_percent"]), float(r["std_error_percent"])))
    tables(cells)
    for task in sorted({k[0] for k in cells}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, sweep in zip(axes, ("noise", "shots")):
            for i, ((model, execution), label) in enumerate(LABELS.items()):
                pts = sorted((k[4], v) for k, v in cells.items()
                             if k[0] == task and k[1] == model and k[2] == execution and k[3] == sweep)
                if sweep == "shots":  # the exact value as the right end
                    exact = cells.get((task, model, execution, "noise", 0.0))
                    if exact:
                        pts.append((1e5, exact))
                if not pts:
                    continue
                xs = [x if x > 0 else 3e-5 for x, _ in pts]  # p2 = 0 drawn left of 1e-4
                ys = [sum(a for a, _ in v) / len(v) for _, v in pts]
                es = [math.sqrt(sum(e * e for _, e in v)) / len(v) for _, v in pts]
                style = "--" if "nat" in model else "-"
                ax.errorbar(xs, ys, yerr=es, label=label, marker="o", ms=3, capsize=2, linestyle=style,
                            color=f"C{i}")  # one colour per model in both panels
            ax.set_xscale("log")
            ax.set_ylabel("test accuracy (%)")
            ax.grid(alpha=0.3)
            if sweep == "noise":
                ax.set_xlabel("two-qubit depolarizing p2 (p1 = p2/10, damping p2/2, read-out 1%; 3e-5: none)")
            else:
                ax.set_xlabel("shots per sample (1e5: exact)")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{task}: routed against coherent QMoE under noise and shots")
        fig.tight_layout()
        out = os.path.join(out_dir, f"noise-routed-{task}.png")
        tmp = out + ".tmp.png"
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out)
        print("wrote", out)


def tables(cells):
    """Markdown tables: rows model/execution, columns the sweep's points."""
    for task in sorted({k[0] for k in cells}):
        for sweep, title in (("noise", "p2 ="), ("shots", "shots =")):
            xs = sorted({k[4] for k in cells if k[0] == task and k[3] == sweep})
            print(f"\n{task}, test accuracy (%) against {'noise' if sweep == 'noise' else 'shots'}, "
                  f"mean over seeds (standard error)\n")
            print("| model | " + " | ".join(f"{title} {x:g}" for x in xs) + " |")
            print("|---|" + "---|" * len(xs))
            for (model, execution), label in LABELS.items():
                row = []
                for x in xs:
                    v = cells.get((task, model, execution, sweep, x))
                    if not v:
                        row.append("")
                        continue
                    mean = sum(a for a, _ in v) / len(v)
                    se = math.sqrt(sum(e * e for _, e in v)) / len(v)
                    row.append(f"{mean:.1f} ({se:.1f})")
                if any(row):
                    print(f"| {label} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
