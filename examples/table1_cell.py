"""One cell of the paper's Table I from Python, with the CLI's numbers:
QMoE RX+RY, 4 experts, MNIST-4, seed 0 (experiments/table1/mnist4-qmoe-rxry.json
on experiments/common.json: 10 epochs, batch 32, lr 2e-3, --scaling unit,
chunk 32). The estimator runs the core's trainer, so every epoch's test
accuracy equals `qmoe train`'s (results/runs/mnist4-qmoe-rxry-L4-s0/metrics.csv,
when that run used today's code; the small mode runs the CLI itself to compare).

    /usr/bin/python3 examples/table1_cell.py        (about 30 s on 2 cores)
    QMOE_EXAMPLE_SMALL=1 QMOE_BINARY=build/qmoe /usr/bin/python3 examples/table1_cell.py
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import qmoe

root = Path(__file__).resolve().parents[1]
small = os.environ.get("QMOE_EXAMPLE_SMALL") == "1"
common = json.loads((root / "experiments" / "common.json").read_text())
limit = 320 if small else 0
epochs = 2 if small else common["train"]["epochs"]
data = qmoe.datasets.load("mnist4", scaling=common["scaling"], train_limit=limit, test_limit=limit // 2)

model_cfg = dict(common["model"], ops="rxry", experts=4, n_classes=4, n_features=64)
model = qmoe.models.paper_qmoe(**{k: model_cfg[k] for k in ("ops", "experts", "depth", "routing_depth",
                                                             "routing_encoder", "aggregation", "readout",
                                                             "logit_scale", "n_classes", "n_features")},
                               qubits=model_cfg["data_qubits"], ring_every=model_cfg["encoder_ring_every"])
clf = qmoe.QMoEClassifier(model, epochs=epochs, batch_size=common["train"]["batch"], lr=common["train"]["lr"],
                          random_state=0, chunk=common["train"]["chunk"], progress=not small)
clf.fit(data.x_train, data.y_train, eval_set=(data.x_test, data.y_test))
ours = [h["test_acc"] for h in clf.history_]
print("python test accuracy per epoch:", " ".join(f"{100 * a:.2f}" for a in ours))

if small:  # the CLI on the same slice
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.environ.get("QMOE_BINARY", str(root / "build" / "qmoe")), "train", "--task", "mnist4",
                        "--scaling", common["scaling"], "--train-limit", str(limit), "--test-limit", str(limit // 2),
                        "--ops", "rxry", "--experts", "4", "--epochs", str(epochs), "--seed", "0",
                        "--chunk", str(common["train"]["chunk"]), "--out", out],
                       check=True, capture_output=True)
        rows = list(csv.DictReader(open(Path(out) / "metrics.csv")))
else:
    rows = list(csv.DictReader(open(root / "results" / "runs" / "mnist4-qmoe-rxry-L4-s0" / "metrics.csv")))
theirs = [float(r["test_accuracy_percent"]) / 100 for r in rows]  # metrics.csv: percent
print("CLI    test accuracy per epoch:", " ".join(f"{100 * a:.2f}" for a in theirs))
worst = max(abs(a - b) for a, b in zip(ours, theirs))
print(f"largest difference: {worst:.3g}")
sys.exit(0 if worst <= 1e-12 else 1)
