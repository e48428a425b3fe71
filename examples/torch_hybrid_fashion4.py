"""A hybrid PyTorch model on Fashion-4: linear -> QuantumLayer -> linear.

The classical layer maps the 64 pooled pixels to 6 angles, a 6-qubit circuit
(angle encoding, two trainable RX/RY layers with CNOT rings) gives <Z_q>, and
a linear layer maps them to the 4 classes. Gradients reach both linear
layers through the quantum layer (adjoint method).

    /usr/bin/python3 examples/torch_hybrid_fashion4.py      (QMOE_EXAMPLE_SMALL=1: a small slice)
"""
import os

import numpy as np
import torch

import qmoe
import qmoe.torch

small = os.environ.get("QMOE_EXAMPLE_SMALL") == "1"
data = qmoe.datasets.load("fashion4", scaling="unit", train_limit=256 if small else 8000,
                          test_limit=128 if small else 2000)
n = 6
circuit = qmoe.Circuit(n)
for q in range(n):
    circuit.ry(q, feature=q)
p = 0
for layer in range(2):
    for q in range(n):
        circuit.rx(q, param=p).ry(q, param=p + 1)
        p += 2
    for q in range(n):
        circuit.cx(q, (q + 1) % n)
print(circuit)

torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(64, n, dtype=torch.float64),
    qmoe.torch.QuantumLayer(circuit, seed=0),
    torch.nn.Linear(n, 4, dtype=torch.float64),
)
opt = torch.optim.Adam(net.parameters(), lr=0.02)
X, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train).long()
Xt, yt = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test).long()
epochs = 2 if small else 5
for epoch in range(epochs):
    perm = torch.randperm(len(X))
    total = 0.0
    for i in range(0, len(X), 32):
        idx = perm[i:i + 32]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    with torch.no_grad():
        acc = (net(Xt).argmax(dim=1) == yt).double().mean().item()
    print(f"epoch {epoch + 1}/{epochs}: train loss {total / len(X):.4f}, test accuracy {100 * acc:.2f}%")
