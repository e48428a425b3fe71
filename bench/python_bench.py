"""Python's overhead over the C++ core: training the `qmoe bench` circuits
(qnn8, qmoe10; src/cli/cmd_bench.cpp) at batch 32 through
qmoe.torch.QuantumLayer (torch autograd + torch.optim.Adam) and through the
scikit-learn estimator (the core's trainer), against `qmoe bench` run in the
same process tree, alternating, best of rounds. A layer that costs nothing
(NoOpLayer) measures torch's own per-step cost in the same run. Not a test: figures go to
bench/RESULTS.md.

    [OMP_NUM_THREADS=1] /usr/bin/python3 bench/python_bench.py [--rounds 3] [--seconds 2] [--qmoe build/qmoe]

Needs PYTHONPATH=build/python (or the .pth that scripts/setup.sh writes).
"""
import argparse
import json
import subprocess
import time

import numpy as np
import torch

import qmoe
import qmoe.torch

KINDS = ["ry", "rz", "rx", "ry"]


def encoder(c, data):
    for l in range(8):
        for i, q in enumerate(data):
            getattr(c, KINDS[l % 4])(q, feature=8 * l + i)


def ring(c, data, controls=()):
    for i in range(len(data)):
        c.cx(data[i], data[(i + 1) % len(data)], controls=controls)


def qnn8():
    """As cmd_bench.cpp make_qnn8: encoder, 2 layers RX RY + CNOT ring."""
    c = qmoe.Circuit(8)
    data = list(range(8))
    encoder(c, data)
    p = 0
    for _ in range(2):
        for q in data:
            c.rx(q, param=p).ry(q, param=p + 1)
            p += 2
        ring(c, data)
    return c


def qmoe10():
    """As cmd_bench.cpp make_qmoe10 (features 64..67: the quadrant means)."""
    c = qmoe.Circuit(10)
    data = list(range(8))
    encoder(c, data)
    c.ry(8, feature=64).ry(9, feature=65).rx(8, feature=66).rx(9, feature=67)
    p = 0
    for q in (8, 9):
        c.rx(q, param=p).ry(q, param=p + 1)
        p += 2
    c.cx(8, 9)
    for k in range(4):
        ctl = [(8, (k >> 1) & 1), (9, k & 1)]
        for _ in range(2):
            for q in data:
                c.rx(q, param=p, controls=ctl).ry(q, param=p + 1, controls=ctl)
                p += 2
            ring(c, data, ctl)
    return c


def qmoe10_model():
    """The same circuit as a qmoe.QMoE (encoder, router, 4 experts; no aggregation)."""
    enc = qmoe.Circuit(8)
    encoder(enc, range(8))
    enc.reserve(0, 68)
    router = qmoe.Circuit(2).ry(0, feature=64).ry(1, feature=65).rx(0, feature=66).rx(1, feature=67)
    router.rx(0, param=0).ry(0, param=1).rx(1, param=2).ry(1, param=3).cx(0, 1)
    experts = []
    for _ in range(4):
        e, p = qmoe.Circuit(8), 0
        for _ in range(2):
            for q in range(8):
                e.rx(q, param=p).ry(q, param=p + 1)
                p += 2
            ring(e, list(range(8)))
        experts.append(e)
    return qmoe.QMoE(enc, router, experts, aggregation="none", readout=[f"Z{q}" for q in range(8)],
                     n_classes=4, logit_scale=1.0)


def inputs(n_features, batch, seed=1234):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, np.pi, (batch, n_features))
    if n_features == 68:
        img = X[:, :64].reshape(-1, 2, 4, 2, 4)
        X[:, 64:] = img.mean(axis=(2, 4)).reshape(-1, 4)
    return X, rng.integers(0, 4, batch)


def rate(step, batch, seconds):
    step()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
    return n / (time.perf_counter() - t0)


class _NoOp(torch.autograd.Function):
    """A layer that costs nothing: the same inputs, output shape and gradient
    shapes as the QuantumLayer, from preallocated tensors."""

    @staticmethod
    def forward(ctx, x, weight, out, dtheta):
        ctx.dtheta = dtheta
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return None, ctx.dtheta, None, None


class NoOpLayer(torch.nn.Module):
    def __init__(self, circuit, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(circuit.n_params, dtype=torch.float64))
        self._out = torch.zeros(1, n_out, dtype=torch.float64)
        self._dtheta = torch.zeros(circuit.n_params, dtype=torch.float64)

    def forward(self, x):
        if self._out.shape[0] != x.shape[0]:
            self._out = torch.zeros(x.shape[0], self._out.shape[1], dtype=torch.float64)
        return _NoOp.apply(x, self.weight, self._out, self._dtheta)


def layer_rate(circuit, batch, seconds, noop=False):
    """Training steps through QuantumLayer (noop: through NoOpLayer, which
    measures torch's own per-step cost: autograd, cross_entropy, Adam)."""
    layer = NoOpLayer(circuit, circuit.n_qubits) if noop else qmoe.torch.QuantumLayer(circuit, seed=5)
    opt = torch.optim.Adam(layer.parameters(), lr=2e-3)
    X, y = inputs(circuit.n_features, batch)
    X, y = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(X)[:, :4], y)
        loss.backward()
        opt.step()
    return rate(step, batch, seconds)


def estimator_rate(model, n_features, batch, seconds):
    n = batch * 64  # 64 steps per epoch
    X, y = inputs(n_features, n)
    est = qmoe.QMoEClassifier(model, epochs=1, batch_size=batch, lr=2e-3)
    est.fit(X[:batch], y[:batch])  # warm-up
    epochs = 1
    while True:
        est.set_params(epochs=epochs)
        t0 = time.perf_counter()
        est.fit(X, y)
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * epochs / dt
        epochs = max(epochs + 1, int(epochs * seconds / max(dt, 1e-3)) + 1)


def cli_rates(qmoe_bin, seconds):
    out = subprocess.run([qmoe_bin, "bench", "--json", "--seconds", str(seconds)], check=True,
                         capture_output=True, text=True).stdout
    j = json.loads(out)
    return {"qnn8": j["qnn8_train_b32"], "qmoe10": j["qmoe10_train_b32"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--qmoe", default="build/qmoe")
    a = ap.parse_args()
    # torch and the core share Debian's libgomp: torch.set_num_threads would also set the core's
    # threads, so it is left alone; OMP_NUM_THREADS sets both this and `qmoe bench`.
    shapes = {"qnn8": (qnn8(), qmoe.QNN(*_qnn8_parts(), readout=[f"Z{q}" for q in range(8)], n_classes=4,
                                         logit_scale=1.0), 64),
              "qmoe10": (qmoe10(), qmoe10_model(), 68)}
    best = {}
    for r in range(a.rounds):
        cli = cli_rates(a.qmoe, a.seconds)
        for name, (circuit, model, nf) in shapes.items():
            vals = {"cli": cli[name], "layer": layer_rate(circuit, 32, a.seconds),
                    "torch": layer_rate(circuit, 32, a.seconds, noop=True),
                    "estimator": estimator_rate(model, nf, 32, a.seconds)}
            print(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.0f}" for k, v in vals.items()) + " samples/s",
                  flush=True)
            for k, v in vals.items():
                best[(name, k)] = max(best.get((name, k), 0), v)
    print(f"\nthreads {qmoe.get_threads()}, batch 32, best of {a.rounds} rounds (samples/s)")
    # Per step at batch 32: bench b/c, layer b/l, torch's own ops b/t. "beyond torch" counts the
    # layer's step less torch's own: the cost qmoe's layer adds over `qmoe bench`.
    print(f"{'circuit':8} {'qmoe bench':>11} {'QuantumLayer':>13} {'overhead':>9} {'torch only':>11} "
          f"{'beyond torch':>13} {'estimator':>10} {'overhead':>9}")
    for name in shapes:
        c, l, e, t = (best[(name, k)] for k in ("cli", "layer", "estimator", "torch"))
        beyond = (1 / l - 1 / t) * c - 1
        print(f"{name:8} {c:11.0f} {l:13.0f} {100 * (c / l - 1):8.1f}% {t:11.0f} {100 * beyond:12.1f}% "
              f"{e:10.0f} {100 * (c / e - 1):8.1f}%")


def _qnn8_parts():
    enc = qmoe.Circuit(8)
    encoder(enc, range(8))
    ans = qmoe.Circuit(8)
    p = 0
    for _ in range(2):
        for q in range(8):
            ans.rx(q, param=p).ry(q, param=p + 1)
            p += 2
        ring(ans, list(range(8)))
    return enc, ans


if __name__ == "__main__":
    main()
