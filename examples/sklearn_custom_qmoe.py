"""A QMoE with hand-written, different experts, trained through scikit-learn.

Data: MNIST-4 (qmoe.datasets, the CLI's preprocessing: 8x8 pooled pixels
p/255). Encoder: the 64 pixels as RY/RZ/RX angles on 6 data qubits. Router:
the four quadrant means... here simply the first pixels' mean angle on 2 routing
qubits, then trainable RY layers. Four experts, each a different ansatz.

    /usr/bin/python3 examples/sklearn_custom_qmoe.py        (QMOE_EXAMPLE_SMALL=1: a small slice)
"""
import os

import numpy as np
from sklearn.model_selection import cross_val_score

import qmoe

small = os.environ.get("QMOE_EXAMPLE_SMALL") == "1"
data = qmoe.datasets.load("mnist4", scaling="unit", train_limit=200 if small else 4000,
                          test_limit=100 if small else 1000)
n = 6  # data qubits

encoder = qmoe.Circuit(n)
kinds = [encoder.ry, encoder.rz, encoder.rx]
for f in range(64):
    kinds[(f // n) % 3](f % n, feature=f, scale=np.pi)

router = qmoe.Circuit(2)
router.ry(0, feature=27, scale=np.pi).ry(1, feature=36, scale=np.pi)  # two central pixels
router.ry(0, param=0).ry(1, param=1).cx(0, 1).ry(0, param=2).ry(1, param=3)


def ring(c):
    for q in range(n):
        c.cx(q, (q + 1) % n)


def expert_rx_ry(layers):
    c, p = qmoe.Circuit(n), 0
    for _ in range(layers):
        for q in range(n):
            c.rx(q, param=p).ry(q, param=p + 1)
            p += 2
        ring(c)
    return c


def expert_u3():
    c = qmoe.Circuit(n)
    for q in range(n):
        c.u3(q, qmoe.param(3 * q), qmoe.param(3 * q + 1), qmoe.param(3 * q + 2))
    ring(c)
    return c


def expert_controlled():
    c = qmoe.Circuit(n)
    for q in range(n):
        c.ry(q, param=q)
    for q in range(n):
        c.crx(q, (q + 1) % n, param=n + q)
    return c


experts = [expert_rx_ry(1), expert_rx_ry(2), expert_u3(), expert_controlled()]
model = qmoe.QMoE(encoder, router, experts, aggregation="cnot", n_classes=4, logit_scale=10.0)
print(model)
print(model.circuit.n_params, "parameters")

clf = qmoe.QMoEClassifier(model, epochs=2 if small else 5, batch_size=32, lr=0.01, random_state=0,
                          progress=not small)
clf.fit(data.x_train, data.y_train)
acc = clf.score(data.x_test, data.y_test)
print(f"test accuracy: {100 * acc:.2f}%")
routing = clf.routing_probabilities(data.x_test)
for c in range(4):
    print(f"class {c}: mean routing", np.round(routing[data.y_test == c].mean(axis=0), 3))
if not small:
    print("3-fold CV accuracy:", cross_val_score(qmoe.QMoEClassifier(model, epochs=2, lr=0.01),
                                                  data.x_train[:1500], data.y_train[:1500], cv=3).round(3))
