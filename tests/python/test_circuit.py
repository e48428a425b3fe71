"""qmoe.Circuit against an independent dense numpy simulation, finite
differences and `qmoe qasm --grad`; bad input raises one clear error."""
import numpy as np
import pytest
import torch

import qmoe

# ---- an independent reference: dense matrices, qubit 0 the low bit -------------------
I2 = np.eye(2)
PX = np.array([[0, 1], [1, 0]], complex)
PY = np.array([[0, -1j], [1j, 0]], complex)
PZ = np.diag([1, -1]).astype(complex)


def rot(P, t):
    return np.cos(t / 2) * I2 - 1j * np.sin(t / 2) * P


def u3(t, p, l):
    return np.array([[np.cos(t / 2), -np.exp(1j * l) * np.sin(t / 2)],
                     [np.exp(1j * p) * np.sin(t / 2), np.exp(1j * (p + l)) * np.cos(t / 2)]])


FIXED = {"h": np.array([[1, 1], [1, -1]]) / np.sqrt(2), "x": PX, "y": PY, "z": PZ,
         "s": np.diag([1, 1j]), "sdg": np.diag([1, -1j]), "t": np.diag([1, np.exp(1j * np.pi / 4)]),
         "tdg": np.diag([1, np.exp(-1j * np.pi / 4)]), "id": I2,
         "sx": 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])}


def matrix(name, a):
    if name in FIXED:
        return FIXED[name]
    return {"rx": lambda: rot(PX, a[0]), "ry": lambda: rot(PY, a[0]), "rz": lambda: rot(PZ, a[0]),
            "u1": lambda: np.diag([1, np.exp(1j * a[0])]), "u2": lambda: u3(np.pi / 2, a[0], a[1]),
            "u3": lambda: u3(*a)}[name]()


def dense_state(c, theta, x):
    n = c.n_qubits
    psi = np.zeros(2 ** n, complex)
    psi[0] = 1
    idx = np.arange(2 ** n)
    for g in c.gates():
        a = [v if s == "const" else v * (theta[i] if s == "param" else x[i]) for s, i, v in g["angles"]]
        active = np.ones(2 ** n, bool)
        for q, on in g["controls"]:
            active &= ((idx >> q) & 1) == int(on)
        new = psi.copy()
        if g["name"] == "swap":
            a0, b0 = g["targets"]
            j = idx ^ (((idx >> a0) & 1) != ((idx >> b0) & 1)) * ((1 << a0) | (1 << b0))
            new[active] = psi[j[active]]
        else:
            t = g["targets"][0]
            m = np.reshape(g["matrix"], (2, 2)) if g["name"] == "unitary" else matrix(g["name"], a)
            bit = (idx >> t) & 1
            partner = idx ^ (1 << t)
            lo = np.where(bit == 0, idx, partner)
            hi = np.where(bit == 0, partner, idx)
            new[active] = np.where(bit == 0, m[0, 0] * psi[lo] + m[0, 1] * psi[hi],
                                   m[1, 0] * psi[lo] + m[1, 1] * psi[hi])[active]
        psi = new
    return psi


def pauli_expval(psi, n, obs):
    idx = np.arange(2 ** n)
    phi = psi.copy()
    for term in obs.split():
        p, q = term[0], int(term[1:])
        bit = (idx >> q) & 1
        if p == "X":
            phi = phi[idx ^ (1 << q)]
        elif p == "Y":
            phi = np.where(bit == 1, 1j, -1j) * phi[idx ^ (1 << q)]  # Y = [[0, -i], [i, 0]]
        else:
            phi = np.where(bit == 1, -1, 1) * phi
    return float(np.real(np.vdot(psi, phi)))


def every_gate_circuit():
    """4 qubits, every gate kind, parameters, features with scales, controls on |0> and |1>."""
    c = qmoe.Circuit(4)
    for q in range(4):
        c.h(q).ry(q, feature=q, scale=0.7)
    c.rx(0, param=0).ry(1, param=1).rz(2, param=2, scale=-1.5).u1(3, param=3)
    c.u2(0, qmoe.param(4), 0.3).u3(1, qmoe.param(5), qmoe.feature(1, 2.0), -0.4)
    c.cx(0, 1).cy(1, 2).cz(2, 3).ch(3, 0).csx(0, 2)
    c.crx(0, 1, param=6).cry(2, 3, param=7).crz(1, 0, param=8).cu1(3, 2, param=9)
    c.cu3(0, 3, qmoe.param(10), 0.2, qmoe.param(11))
    c.ccx(0, 1, 2).rx(3, param=12, controls=[(0, 0), (1, 1)]).swap(0, 3).cswap(1, 2, 0)
    c.s(0).sdg(1).t(2).tdg(3).sx(0).x(1).y(2).z(3).id(0)
    c.ry(2, param=0)  # a parameter used twice
    c.unitary(1, FIXED["h"] @ FIXED["t"], controls=[(2, 0)])
    return c


OBS = ["Z0", "Z3", "X0 Y2", "Y1 Z2 X3", "X1"]


@pytest.fixture(scope="module")
def setup():
    c = every_gate_circuit()
    rng = np.random.default_rng(1)
    theta = rng.uniform(-np.pi, np.pi, c.n_params)
    X = rng.uniform(0, np.pi, (5, c.n_features))
    return c, theta, X


def test_expval_matches_dense_reference(setup):
    c, theta, X = setup
    assert (c.n_qubits, c.n_params, c.n_features) == (4, 13, 4)
    ev = c.expval(theta, X, OBS)
    assert ev.shape == (5, len(OBS)) and ev.dtype == np.float64
    for b in range(5):
        psi = dense_state(c, theta, X[b])
        ref = [pauli_expval(psi, 4, o) for o in OBS]
        np.testing.assert_allclose(ev[b], ref, atol=1e-12)


def test_probabilities_match_dense(setup):
    c, theta, X = setup
    p = c.probabilities(theta, X)
    for b in range(5):
        np.testing.assert_allclose(p[b], np.abs(dense_state(c, theta, X[b])) ** 2, atol=1e-12)
    marg = c.probabilities(theta, X, qubits=[2, 0])
    full = p.reshape(5, 2, 2, 2, 2)  # axes: q3 q2 q1 q0
    # outcome = q2 + 2 q0 (qubits[0] is the low bit)
    ref = np.stack([full[:, :, b2, :, b0].sum(axis=(1, 2)) for b0 in (0, 1) for b2 in (0, 1)], axis=1)
    np.testing.assert_allclose(marg, ref, atol=1e-12)


def test_jacobian_and_vjp_against_finite_differences(setup):
    c, theta, X = setup
    J = c.jacobian(theta, X, OBS)
    assert J.shape == (5, len(OBS), c.n_params)
    h = 1e-6
    for j in range(c.n_params):
        d = np.zeros_like(theta)
        d[j] = h
        fd = (c.expval(theta + d, X, OBS) - c.expval(theta - d, X, OBS)) / (2 * h)
        np.testing.assert_allclose(J[:, :, j], fd, atol=1e-8)
    g = np.random.default_rng(2).normal(size=(5, len(OBS)))
    dtheta, dX = c.vjp(theta, X, OBS, g)
    np.testing.assert_allclose(dtheta, np.einsum("bk,bkp->p", g, J), atol=1e-11)
    for f in range(c.n_features):
        d = np.zeros_like(X)
        d[:, f] = h
        fd = ((c.expval(theta, X + d, OBS) - c.expval(theta, X - d, OBS)) / (2 * h) * g).sum(axis=1)
        np.testing.assert_allclose(dX[:, f], fd, atol=1e-8)


def test_float32_option(setup):
    c, theta, X = setup
    e64 = c.expval(theta, X, OBS)
    e32 = c.expval(theta, X, OBS, dtype="float32")
    assert e32.dtype == np.float32
    np.testing.assert_allclose(e32, e64, atol=2e-5)
    d64 = c.vjp(theta, X, OBS, np.ones((5, len(OBS))))[0]
    d32 = c.vjp(theta, X, OBS, np.ones((5, len(OBS))), dtype=np.float32)[0]
    np.testing.assert_allclose(d32, d64, atol=1e-4)
    assert not np.array_equal(e32.astype(np.float64), e64)  # it did run in single precision


def test_sample_is_seeded_and_follows_probabilities():
    c = qmoe.Circuit(2).ry(0, 1.1).cx(0, 1)
    s1, s2 = c.sample(shots=4000, seed=7), c.sample(shots=4000, seed=7)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, c.sample(shots=4000, seed=8))
    assert set(np.unique(s1)) <= {0, 3}
    p3 = c.probabilities()[0, 3]
    assert abs(np.mean(s1 == 3) - p3) < 0.03


QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
h q[0];
rx(0.3) q[1];
cx q[0], q[1];
u3(0.1, -0.7, pi/3) q[2];
cry(1.2) q[1], q[2];
rz(2*0.25) q;
ccx q[0], q[2], q[1];
cu1(-0.4) q[2], q[0];
measure q -> c;
"""


def test_from_qasm_equals_cli(tmp_path, cli_json):
    path = tmp_path / "c.qasm"
    path.write_text(QASM)
    ref = cli_json("qasm", path, "--grad")
    c = qmoe.Circuit.from_qasm(QASM)
    assert c.n_params == len(c.initial_params) == 7  # 0.3, three of u3, 1.2, the broadcast rz, -0.4
    obs = [f"Z{q}" for q in range(3)]
    np.testing.assert_allclose(c.expval(observables=obs)[0], ref["expval_z"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.jacobian(observables=obs)[0], ref["jacobian"], rtol=0, atol=1e-12)


def test_to_qasm_round_trip(setup, cli_json, tmp_path):
    c, theta, X = setup
    text = c.to_qasm(theta, X[2])
    back = qmoe.Circuit.from_qasm(text)
    np.testing.assert_allclose(back.expval(observables=OBS)[0], c.expval(theta, X[2:3], OBS)[0], atol=1e-10)
    (tmp_path / "r.qasm").write_text(text)
    ref = cli_json("qasm", tmp_path / "r.qasm")
    np.testing.assert_allclose(ref["expval_z"], c.expval(theta, X[2:3])[0], atol=1e-10)


def test_draw():
    c = qmoe.Circuit(3).h(0).crx(0, 2, param=1).ry(1, feature=0, scale=0.5).cx((1), 0, controls=[(2, 0)])
    text = str(c)
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].startswith("q0:")
    assert "H" in lines[0] and "RX(θ1)" in lines[2] and "●" in lines[0] and "○" in lines[2]
    assert "RY(0.5*x0)" in lines[1]
    assert "3 qubits" in repr(c)


def test_pickle_and_append():
    import pickle
    c = qmoe.Circuit(2).rx(0, param=0).unitary(1, FIXED["h"]).cx(1, 0)
    d = pickle.loads(pickle.dumps(c))
    np.testing.assert_allclose(d.expval([0.4]), c.expval([0.4]), atol=1e-15)
    big = qmoe.Circuit(3).append(c, qubits=[2, 0], param_offset=1, controls=[(1, 0)])
    assert big.n_params == 2
    g = big.gates()[0]
    assert g["targets"] == [2] and g["controls"] == [(1, False)] and g["angles"][0][:2] == ("param", 1)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: qmoe.Circuit(2).rx(2, 0.1), ValueError, "out of range"),
    (lambda: qmoe.Circuit(2).cx(0, 0), ValueError, "cx: a qubit appears twice"),
    (lambda: qmoe.Circuit(2).rx(0, param=-1), ValueError, "param must be >= 0, got -1"),
    (lambda: qmoe.Circuit(2).h(0).expval(observables=[""]), ValueError, "empty"),
    (lambda: qmoe.Circuit(2).h(0).expval(observables=["  "]), ValueError, "empty"),
    (lambda: qmoe.Circuit(2).h(0).probabilities(qubits=[0, 0]), ValueError, "appears twice"),
    (lambda: qmoe.Circuit(2).rx(0, param=0).expval(torch.zeros(1, requires_grad=True)), TypeError, "QuantumLayer"),
    (lambda: qmoe.Circuit(0), ValueError, "n_qubits"),
    (lambda: qmoe.Circuit(2).rx(0, "a"), TypeError, "angle"),
    (lambda: qmoe.Circuit(2).rx(0), TypeError, "1 angle"),
    (lambda: qmoe.Circuit(2).rx(0, float("nan")), ValueError, "finite"),
    (lambda: qmoe.Circuit(2).unitary(0, [[1, 1], [0, 1]]), ValueError, "not unitary"),
    (lambda: qmoe.Circuit(2).rx(0, param=0).expval([0.1, 0.2]), ValueError, "parameters"),
    (lambda: qmoe.Circuit(2).rx(0, param=0).expval([np.nan]), ValueError, "NaN"),
    (lambda: qmoe.Circuit(2).rx(0, param=0).expval([[0.1]]), ValueError, "1-D"),
    (lambda: qmoe.Circuit(2).rx(0, param=0).expval(["a"]), TypeError, "real numbers"),
    (lambda: qmoe.Circuit(2).rx(0, param=0).expval([1j]), TypeError, "real"),
    (lambda: qmoe.Circuit(2).ry(0, feature=1).expval(None, np.zeros((3, 1))), ValueError, "features"),
    (lambda: qmoe.Circuit(2).ry(0, feature=1).expval(), ValueError, "pass X"),
    (lambda: qmoe.Circuit(2).h(0).expval(observables=["Q0"]), ValueError, "observable"),
    (lambda: qmoe.Circuit(2).h(0).expval(observables=["Z5"]), ValueError, ""),
    (lambda: qmoe.Circuit(2).h(0).expval(observables=[3]), TypeError, "Pauli"),
    (lambda: qmoe.Circuit(2).h(0).expval(dtype="int8"), TypeError, "dtype"),
    (lambda: qmoe.Circuit(2).h(0).vjp(None, None, ["Z0"], np.ones((2, 1))), ValueError, "grad_out"),
    (lambda: qmoe.Circuit(2).h(0).sample(shots=0), ValueError, "shots"),
    (lambda: qmoe.Circuit.from_qasm("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];\n"), ValueError, "line 3"),
    (lambda: qmoe.Circuit.from_qasm(3), TypeError, "str"),
    (lambda: qmoe.Circuit.from_qasm("OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nU(1,0,0) q[0];\nreset q[0];\n"),
     ValueError, "dynamic program"),
])
def test_bad_input_raises_one_clear_error(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    msg = str(e.value)
    assert words in msg and "\n" not in msg.strip()


def test_errors_are_valueerrors():
    assert issubclass(qmoe.Error, ValueError)
