#!/usr/bin/python3
"""Writes results/README.md and the figures from `qmoe reproduce` output.

Usage: /usr/bin/python3 scripts/report.py [results_dir]
Reads tableN.json, tableN-timing.json, runs/*/metrics.csv, runs/*/result.json
and the hand-written notes.md; writes curves-*.png, confusion-*.png,
routing-*.png and README.md.
"""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RES = sys.argv[1] if len(sys.argv) > 1 else "results"
TASKS = ["mnist4", "mnist2", "fashion4", "fashion2"]
TASK_TITLE = {"mnist4": "MNIST-4", "mnist2": "MNIST-2", "fashion4": "Fashion-4", "fashion2": "Fashion-2"}
OPS = ["rx", "ry", "rxry", "rxryrz"]
OPS_TITLE = {"rx": "RX", "ry": "RY", "rxry": "RX+RY", "rxryrz": "RX+RY+RZ"}
MODEL_TITLE = {"qnn": "Baseline", "qnn-matched": "Baseline, parameter-matched", "qmoe": "QMoE"}


def load(name):
    p = os.path.join(RES, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def run_dir(task, model, ops, experts, seed):
    return os.path.join(RES, "runs", f"{task}-{model}-{ops}-L{experts}-s{seed}")


def read_metrics(d):
    p = os.path.join(d, "metrics.csv")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        rows = list(csv.DictReader(f))
    return [int(r["epoch"]) for r in rows], [float(r["test_accuracy_percent"]) for r in rows]


def fmt(v):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def cell(t, task, model, ops, experts=4):
    for r in t or []:
        if r["task"] == task and r["model"] == model and r["ops"] == ops and r["experts"] == experts:
            return r
    return None


def table1_md(t1):
    out = ["| Method | Ops | " + " | ".join(TASK_TITLE[x] for x in TASKS) + " |",
           "|---|---|" + "---|" * len(TASKS)]
    for model in ["qnn", "qnn-matched", "qmoe"]:
        for ops in OPS:
            cells = []
            for task in TASKS:
                r = cell(t1, task, model, ops)
                if r is None:
                    cells.append("–")
                    continue
                s = f"**{r['mean_percent']:.2f}** ± {r['std_percent']:.2f}"
                if r.get("paper_percent") is not None:
                    d = r["mean_percent"] - r["paper_percent"]
                    s += f" (paper {r['paper_percent']:.2f}, {d:+.2f})"
                cells.append(s)
            out.append(f"| {MODEL_TITLE[model]} | {OPS_TITLE[ops]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def table2_md(t2):
    out = ["| Ops | " + " | ".join(f"{L} experts" for L in (2, 3, 4)) + " |", "|---|---|---|---|"]
    for ops in OPS:
        cells = []
        for L in (2, 3, 4):
            r = cell(t2, "mnist4", "qmoe", ops, L)
            if r is None:
                cells.append("–")
                continue
            accs = ", ".join(f"{a:.2f}" for a in r["accuracies_percent"])
            cells.append(f"**{r['mean_percent']:.2f}** ± {r['std_percent']:.2f} (paper {fmt(r.get('paper_percent'))}; seeds {accs})")
        out.append(f"| {OPS_TITLE[ops]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def size_md(t1):
    out = ["| Model | Ops | qubits | trainable parameters | epochs |", "|---|---|---|---|---|"]
    for model in ["qnn", "qnn-matched", "qmoe"]:
        for ops in OPS:
            r = cell(t1, "mnist4", model, ops)
            if r:
                out.append(f"| {MODEL_TITLE[model]} | {OPS_TITLE[ops]} | {r['qubits']} | {r['params']} | {r['epochs']} |")
    return "\n".join(out)


def plot_curves(t1, seeds):
    files = []
    for task in TASKS:
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
        any_line = False
        for ax, ops in zip(axes, OPS):
            for model, color in [("qnn", "tab:gray"), ("qnn-matched", "tab:blue"), ("qmoe", "tab:red")]:
                for s in range(seeds):
                    m = read_metrics(run_dir(task, model, ops, 4, s))
                    if m:
                        ax.plot(m[0], m[1], color=color, alpha=0.8, label=MODEL_TITLE[model] if s == 0 else None)
                        any_line = True
            ax.set_title(f"{TASK_TITLE[task]}, {OPS_TITLE[ops]}")
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("test accuracy (%)")
        if any_line:
            axes[0].legend(fontsize=8)
        fig.tight_layout()
        if any_line:
            name = f"curves-{task}.png"
            fig.savefig(os.path.join(RES, name), dpi=80)
            files.append(name)
        plt.close(fig)
    return files


def plot_confusion():
    files = []
    for task in TASKS:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
        ok = False
        for ax, model in zip(axes, ["qnn-matched", "qmoe"]):
            p = os.path.join(run_dir(task, model, "rxry", 4, 0), "result.json")
            if not os.path.exists(p):
                continue
            with open(p) as f:
                r = json.load(f)
            cm = r["confusion"]
            ax.imshow(cm, cmap="Blues")
            for i, row in enumerate(cm):
                for j, v in enumerate(row):
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
            names = r.get("class_names", [str(i) for i in range(len(cm))])
            ax.set_xticks(range(len(cm)), names, rotation=30, fontsize=7)
            ax.set_yticks(range(len(cm)), names, fontsize=7)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{MODEL_TITLE[model]} RX+RY ({r['test_accuracy_percent']:.1f}%)", fontsize=9)
            ok = True
        fig.suptitle(f"{TASK_TITLE[task]}, seed 0")
        fig.tight_layout()
        if ok:
            name = f"confusion-{task}.png"
            fig.savefig(os.path.join(RES, name), dpi=80)
            files.append(name)
        plt.close(fig)
    return files


def routing_of(task, ops, experts, seed):
    p = os.path.join(run_dir(task, "qmoe", ops, experts, seed), "result.json")
    if not os.path.exists(p):
        return None, None, None
    with open(p) as f:
        r = json.load(f)
    counts = [sum(row) for row in r["confusion"]]
    return r["routing_by_class"], r.get("class_names"), counts


def mutual_information(m, counts):
    """I(class; expert) in bits from mean routing probabilities per class.

    Mass on routing states that select no expert (L < 2^r) is dropped."""
    total = float(sum(counts))
    joint = [[counts[c] / total * v for v in row] for c, row in enumerate(m)]
    z = sum(sum(row) for row in joint)
    joint = [[v / z for v in row] for row in joint]
    pc = [sum(row) for row in joint]
    pk = [sum(joint[c][k] for c in range(len(joint))) for k in range(len(joint[0]))]
    mi = 0.0
    for c, row in enumerate(joint):
        for k, v in enumerate(row):
            if v > 0:
                mi += v * math.log2(v / (pc[c] * pk[k]))
    return mi


def routing_md(seeds, table2):
    combos = [(task, 4) for task in TASKS] + ([("mnist4", 2), ("mnist4", 3)] if table2 else [])
    out = ["| Task | experts | " + " | ".join(OPS_TITLE[o] for o in OPS) + " |", "|---|---|" + "---|" * len(OPS)]
    for task, L in combos:
        cells = []
        for ops in OPS:
            vals = []
            for s in range(seeds):
                m, _, counts = routing_of(task, ops, L, s)
                if m is not None:
                    vals.append(mutual_information(m, counts))
            cells.append(f"{sum(vals) / len(vals):.3f}" if vals else "–")
        out.append(f"| {TASK_TITLE[task]} | {L} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def plot_routing(seeds, table2):
    files = []
    combos = [(task, 4) for task in TASKS] + ([("mnist4", 2), ("mnist4", 3)] if table2 else [])
    for task, L in combos:
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
        ok = False
        for ax, ops in zip(axes, OPS):
            m, names, _ = routing_of(task, ops, L, 0)
            if m is None:
                ax.axis("off")
                continue
            im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1)
            for i, row in enumerate(m):
                for j, v in enumerate(row):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.5 else "k")
            ax.set_xticks(range(len(m[0])), [f"E{k}" for k in range(len(m[0]))])
            ax.set_yticks(range(len(m)), names or [str(i) for i in range(len(m))], fontsize=7)
            ax.set_title(f"{OPS_TITLE[ops]}", fontsize=9)
            ok = True
        fig.suptitle(f"{TASK_TITLE[task]}, {L} experts, seed 0: mean routing probability p_k per true class")
        fig.tight_layout()
        if ok:
            fig.colorbar(im, ax=axes, shrink=0.8)
            name = f"routing-{task}-L{L}.png"
            fig.savefig(os.path.join(RES, name), dpi=80)
            files.append(name)
        plt.close(fig)
    return files


def main():
    t1, t2 = load("table1.json"), load("table2.json")
    tm1, tm2 = load("table1-timing.json"), load("table2-timing.json")
    seeds = max([len(r["accuracies_percent"]) for r in (t1 or []) + (t2 or [])] or [1])
    curves, conf, routing = plot_curves(t1, seeds), plot_confusion(), plot_routing(seeds, t2 is not None)
    notes = ""
    if os.path.exists(os.path.join(RES, "notes.md")):
        with open(os.path.join(RES, "notes.md")) as f:
            notes = f.read()
    lines = ["# Reproducing the QMoE paper's Table I and Table II", "",
             "Generated by `scripts/report.py` from the output of `scripts/reproduce.sh` "
             "(`build/qmoe reproduce --table 1` and `--table 2`, configs in `experiments/`). "
             "Accuracies are test accuracy (%) after the last epoch, mean ± standard deviation over seeds; "
             "the paper's number and our difference in brackets.", ""]
    if notes:
        lines += [notes.strip(), ""]
    if t1:
        lines += ["## Table I: test accuracy (%)", "", table1_md(t1), ""]
        if tm1:
            lines += [f"Last `reproduce --table 1` invocation: {tm1['wall_seconds']:.0f} s wall time, "
                      f"{tm1.get('runs_trained', tm1['runs'])} runs trained and {tm1.get('runs_reused', 0)} reused "
                      f"({tm1['jobs']} at a time).", ""]
        lines += ["### Model sizes (MNIST-4; the same on every task)", "", size_md(t1), ""]
    if t2:
        lines += ["## Table II: MNIST-4, QMoE with 2, 3 and 4 experts", "", table2_md(t2), ""]
        if tm2:
            lines += [f"Last `reproduce --table 2` invocation: {tm2['wall_seconds']:.0f} s wall time, "
                      f"{tm2.get('runs_trained', tm2['runs'])} runs trained and {tm2.get('runs_reused', 0)} reused "
                      "(finished runs, e.g. Table I's 4-expert cells, are reused).", ""]
    if routing:
        lines += ["## Routing: does each class go to its own expert?", "",
                  "Mutual information I(class; expert) in bits between the true class and the expert that a "
                  "measurement of the routing register would select (joint p(c, k) = p(c) * mean p_k over class c; "
                  "mean over seeds). 0 = the router ignores the class; the maximum is "
                  "log2(min(classes, experts)): 2 bits for 4 classes and 4 experts, 1 bit for 2 classes.", "",
                  routing_md(seeds, t2 is not None), "",
                  "Heat maps for seed 0 (expert numbers are arbitrary and differ from seed to seed, so "
                  "averaging the maps over seeds would blur them):", ""] + [f"![{f}]({f})" for f in routing] + [""]
    if curves:
        lines += ["## Training curves (test accuracy per epoch, every seed)", ""] + [f"![{f}]({f})" for f in curves] + [""]
    if conf:
        lines += ["## Confusion matrices (RX+RY, seed 0)", ""] + [f"![{f}]({f})" for f in conf] + [""]
    with open(os.path.join(RES, "README.md.tmp"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(os.path.join(RES, "README.md.tmp"), os.path.join(RES, "README.md"))
    print(f"wrote {RES}/README.md and {len(curves) + len(conf) + len(routing)} figures")


if __name__ == "__main__":
    main()
