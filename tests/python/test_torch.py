"""qmoe.torch.QuantumLayer: gradcheck (weights and inputs), float32, a model
as a layer, use between classical layers."""
import numpy as np
import pytest
import torch

import qmoe
import qmoe.torch as qt


def small_circuit():
    c = qmoe.Circuit(3)
    for q in range(3):
        c.ry(q, feature=q).rz(q, feature=q + 3, scale=0.5)
    c.rx(0, param=0).ry(1, param=1).crz(0, 2, param=2).cx(1, 2).u3(2, qmoe.param(3), 0.2, qmoe.param(4))
    c.ry(1, param=0, controls=[(2, 0)])
    return c


def test_gradcheck_weights_and_inputs():
    layer = qt.QuantumLayer(small_circuit(), ["Z0", "Z1 Z2", "X2"], seed=3)
    x = torch.rand(4, 6, dtype=torch.float64, requires_grad=True)
    f = lambda x, w: qt._Expval.apply(x, w, layer, True)
    assert torch.autograd.gradcheck(f, (x, layer.weight), eps=1e-6, atol=1e-8)


def test_forward_equals_circuit_and_grad_equals_vjp():
    c = small_circuit()
    layer = qt.QuantumLayer(c, ["Z0", "X2"], seed=1)
    x = torch.rand(5, 6, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    theta = layer.weight.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), c.expval(theta, x.detach().numpy(), ["Z0", "X2"]), atol=1e-14)
    g = torch.randn(5, 2, dtype=torch.float64)
    out.backward(g)
    dt, dx = c.vjp(theta, x.detach().numpy(), ["Z0", "X2"], g.numpy())
    np.testing.assert_allclose(layer.weight.grad.numpy(), dt, atol=1e-13)
    np.testing.assert_allclose(x.grad.numpy(), dx, atol=1e-13)


def test_float32_layer():
    c = small_circuit()
    l64 = qt.QuantumLayer(c, seed=2)
    l32 = qt.QuantumLayer(c, seed=2, dtype=torch.float32)
    x = torch.rand(8, 6, dtype=torch.float64)
    x32 = x.float().requires_grad_()
    y32 = l32(x32)
    assert y32.dtype == torch.float32
    y64 = l64(x.requires_grad_())
    np.testing.assert_allclose(y32.detach().numpy(), y64.detach().numpy(), atol=1e-5)
    y32.sum().backward()
    y64.sum().backward()
    assert l32.weight.grad.dtype == torch.float32 and x32.grad.dtype == torch.float32
    np.testing.assert_allclose(l32.weight.grad.numpy(), l64.weight.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(x32.grad.numpy(), x.grad.numpy(), atol=1e-4)


def test_no_grad_forward_and_circuit_without_features():
    c = qmoe.Circuit(2).rx(0, param=0).cx(0, 1).ry(1, param=1)
    layer = qt.QuantumLayer(c, weight=[0.3, -0.2])
    with torch.no_grad():
        y = layer()
    np.testing.assert_allclose(y.numpy(), c.expval([0.3, -0.2]), atol=1e-15)
    layer().sum().backward()
    J = c.jacobian([0.3, -0.2])[0]
    np.testing.assert_allclose(layer.weight.grad.numpy(), J.sum(axis=0), atol=1e-13)


def test_model_layer_gradcheck_through_quadrant_means():
    m = qmoe.models.paper_qmoe(qubits=4, experts=2, depth=1, routing_depth=1, n_classes=2, readout="qubits")
    layer = qt.QuantumLayer(m, seed=5)
    x = torch.rand(2, 64, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    theta = layer.weight.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), m.expvals(theta, x.detach().numpy()), atol=1e-13)
    np.testing.assert_allclose(layer.weight.detach().numpy(), m.init_params(5))
    assert torch.autograd.gradcheck(lambda x: layer(x), (x,), eps=1e-6, atol=1e-7)


def test_hybrid_model_trains():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(64, 5)))
    y = torch.tensor((X[:, 0] + X[:, 1] > 0).long())
    c = qmoe.Circuit(3)
    for q in range(3):
        c.ry(q, feature=q)
    for q in range(3):
        c.ry(q, param=q)
    c.cx(0, 1).cx(1, 2)
    net = torch.nn.Sequential(torch.nn.Linear(5, 3, dtype=torch.float64), qt.QuantumLayer(c),
                              torch.nn.Linear(3, 2, dtype=torch.float64))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(X), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_layer_bad_input():
    layer = qt.QuantumLayer(small_circuit())
    with pytest.raises(ValueError, match="features"):
        layer(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((2, 6), float("nan"), dtype=torch.float64))
    with pytest.raises(TypeError):
        layer(np.zeros((2, 6)))
    with pytest.raises(TypeError):
        qt.QuantumLayer("not a circuit")
    with pytest.raises(ValueError, match="weight"):
        qt.QuantumLayer(small_circuit(), weight=[0.1])
    with pytest.raises(TypeError, match="complex"):
        layer(torch.ones(2, 6, dtype=torch.complex128))
    with pytest.raises(ValueError, match="observable"):  # at construction, not at the first call
        qt.QuantumLayer(small_circuit(), ["Z9"])
    x = torch.rand(2, 6, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="second derivatives"):  # not a silent zero
        torch.autograd.gradgradcheck(layer, (x,))
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(layer(x).sum(), x, create_graph=True)


def test_no_grad_forwards_reuse_one_tape():
    layer = qt.QuantumLayer(small_circuit(), seed=2)
    x = torch.rand(3, 6, dtype=torch.float64)
    with torch.no_grad():
        ref = layer(x)
        for _ in range(4):
            torch.testing.assert_close(layer(x), ref, rtol=0, atol=0)
    assert len(layer._tapes) == 1  # each forward gave its tape back: no new tape, no new plan
    out = layer(x)  # grad mode: this tape waits for the backward
    assert len(layer._tapes) == 0
    out.sum().backward()
    assert len(layer._tapes) == 1
    torch.testing.assert_close(out.detach(), ref, rtol=0, atol=0)


def test_layer_copies_and_pickles():
    import copy
    import pickle
    layer = qt.QuantumLayer(small_circuit(), seed=3)
    x = torch.rand(4, 6, dtype=torch.float64)
    layer(x).sum().backward()  # its pool now holds a tape
    for other in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        torch.testing.assert_close(other(x), layer(x), rtol=0, atol=0)
        assert other.weight is not layer.weight


def test_retained_graph_after_other_forwards():
    """A second backward through a graph whose tape went to a later forward."""
    c = small_circuit()
    layer = qt.QuantumLayer(c, seed=4)
    x = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    y = layer(x).sum()
    g1 = torch.autograd.grad(y, (x, layer.weight), retain_graph=True)
    layer(torch.rand(3, 6, dtype=torch.float64, requires_grad=True)).sum().backward()  # reuses the tape
    g2 = torch.autograd.grad(y, (x, layer.weight))
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-13)
