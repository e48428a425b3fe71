#!/usr/bin/python3
"""The figures of one training run (run by `qmoe plot RUN`).

Usage: /usr/bin/python3 scripts/plot_run.py RUN OUT QMOE [THREADS]
Reads RUN/metrics.csv and the output of `QMOE eval --checkpoint RUN --json`;
writes OUT/curves.png (loss and accuracy per epoch), OUT/confusion.png and,
for a QMoE, OUT/routing.png (mean routing probability per true class), each
to a temporary name and renamed. Same style as scripts/report.py.
"""
import csv
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, path):
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


def main():
    run, out, qmoe = sys.argv[1], sys.argv[2], sys.argv[3]
    threads = sys.argv[4] if len(sys.argv) > 4 else "0"
    with open(os.path.join(run, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"qmoe: error: {run}/metrics.csv has no finished epoch to plot")
    split = "val" if "val_loss" in rows[0] else "test"
    ev = json.loads(subprocess.run([qmoe, "eval", "--checkpoint", run, "--json", "--threads", threads],
                                   check=True, capture_output=True, text=True).stdout)
    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, label in [("train", "train"), (split, "validation" if split == "val" else "test")]:
        ax1.plot(epochs, [float(r[key + "_loss"]) for r in rows], marker="o", label=label)
        ax2.plot(epochs, [float(r[key + "_accuracy_percent"]) for r in rows], marker="o", label=label)
    ax1.set_ylabel("loss")
    ax2.set_ylabel("accuracy (%)")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{run}: {ev['model']['model']} {ev['model']['ops']}, {ev['task']['task']}", fontsize=9)
    fig.tight_layout()
    written = [os.path.join(out, "curves.png")]
    save(fig, written[-1])

    names, cm = ev["class_names"], ev["confusion"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(names), 1 + 0.7 * len(names)))
    ax.imshow(cm, cmap="Blues")
    for i, row in enumerate(cm):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{ev['task']['split']} split, {ev['accuracy_percent']:.2f}%", fontsize=9)
    fig.tight_layout()
    written.append(os.path.join(out, "confusion.png"))
    save(fig, written[-1])

    if "routing_by_class" in ev:
        rb = ev["routing_by_class"]
        fig, ax = plt.subplots(figsize=(1.5 + 0.8 * len(rb[0]), 1 + 0.7 * len(names)))
        im = ax.imshow(rb, cmap="viridis", vmin=0, vmax=1)
        for i, row in enumerate(rb):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.5 else "k")
        ax.set_xticks(range(len(rb[0])), [f"expert {k}" for k in range(len(rb[0]))], rotation=30, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_ylabel("true class")
        ax.set_title("mean routing probability p_k", fontsize=9)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        written.append(os.path.join(out, "routing.png"))
        save(fig, written[-1])
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
