"""Models: the factories equal the CLI's models for the same seed; custom
QNN / QMoE from circuits against independent computations."""
import json

import numpy as np
import pytest

import qmoe


def test_factories_follow_the_core_defaults():
    m = qmoe.models.paper_qmoe()
    cfg = m.config
    assert cfg["model"] == "qmoe" and m.n_experts == cfg["experts"]
    assert m.n_features == cfg["n_features"]
    q = qmoe.models.qnn(depth=3)
    assert q.config["model"] == "qnn" and q.n_experts == 0
    qm = qmoe.models.qnn_matched()
    assert abs(qm.n_params - m.n_params) <= cfg["data_qubits"] * 2  # rxry: 2 parameters per qubit per layer
    with pytest.raises(TypeError, match="unknown model option"):
        qmoe.models.paper_qmoe(expert=3)
    with pytest.raises(ValueError, match="ops"):
        qmoe.models.paper_qmoe(ops="rw")


def test_initial_parameters_equal_the_cli(cli, tmp_path):
    out = tmp_path / "run"
    cli("train", "--task", "mnist4", "--scaling", "unit", "--epochs", "0", "--train-limit", "8",
        "--test-limit", "8", "--experts", "3", "--depth", "2", "--seed", "11", "--out", out)
    ck = json.loads((out / "checkpoint").read_text())
    m = qmoe.from_config(ck["model"])
    np.testing.assert_array_equal(m.init_params(11), ck["state"]["theta"])
    m2 = qmoe.models.paper_qmoe(experts=3, depth=2)
    assert m2.config == ck["model"]


def test_model_outputs_equal_cli_predict(cli, cli_json, tmp_path, mnist4):
    out = tmp_path / "run"
    cli("train", "--task", "mnist4", "--scaling", "unit", "--epochs", "1", "--train-limit", "96",
        "--test-limit", "48", "--seed", "4", "--out", out)
    est = qmoe.load(out / "checkpoint")
    p = cli_json("predict", "--checkpoint", out, "--index", "5", "--json")
    x = mnist4.x_test[5:6]
    np.testing.assert_allclose(est.predict_proba(x)[0], p["probabilities"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.routing_probabilities(x)[0], p["routing"], rtol=0, atol=1e-12)
    ev = est.model_.expvals(est.theta_, x)[0][:8]
    np.testing.assert_allclose(ev, p["expval_z"], rtol=0, atol=1e-12)


def experts_and_parts():
    enc = qmoe.Circuit(2).ry(0, feature=0).ry(1, feature=1).cx(0, 1)
    router = qmoe.Circuit(1).ry(0, feature=0).rx(0, param=0)
    e0 = qmoe.Circuit(2).rx(0, param=0).ry(1, param=1)
    e1 = qmoe.Circuit(2).cx(1, 0).rz(0, param=0).h(1).ry(1, param=0, scale=0.5)  # a different expert
    return enc, router, [e0, e1]


def test_custom_qmoe_is_the_routing_mixture():
    enc, router, experts = experts_and_parts()
    m = qmoe.QMoE(enc, router, experts, aggregation="none", n_classes=2)
    assert m.n_params == 1 + 2 + 1 and m.n_experts == 2
    rng = np.random.default_rng(0)
    theta = rng.uniform(-3, 3, m.n_params)
    X = rng.uniform(0, 3, (6, 2))
    # the router alone gives p_k; each expert alone (after the encoder) gives <Z>_k
    p = router.probabilities(theta[:1], X[:, :1])
    np.testing.assert_allclose(m.routing_probabilities(theta, X), p, atol=1e-12)
    z = np.zeros((6, 2))
    offset = 1
    for k, e in enumerate(experts):
        c = qmoe.Circuit(2).append(enc).append(e, param_offset=0)
        z += p[:, k:k + 1] * c.expval(theta[offset:offset + e.n_params], X, ["Z0", "Z1"])
        offset += e.n_params
    np.testing.assert_allclose(m.expvals(theta, X)[:, :2], z, atol=1e-12)
    scale = json.loads(qmoe._core.default_model_config())["logit_scale"]
    np.testing.assert_allclose(m.logits(theta, X), scale * z, atol=1e-10)


def test_custom_qmoe_cnot_aggregation_and_qnn():
    enc, router, experts = experts_and_parts()
    m = qmoe.QMoE(enc, router, experts, logit_scale=2.0, n_classes=2)
    c = m.circuit
    assert c.n_qubits == 3 and c.gates()[-1]["name"] == "x" and c.gates()[-1]["controls"] == [(2, True)]
    q = qmoe.QNN(enc, experts[0], readout=["Z0", "X1 Z0"], logit_scale=3.0)
    theta = np.array([0.3, -0.8])
    X = np.array([[0.2, 1.0], [0.5, 0.1]])
    full = qmoe.Circuit(2).append(enc).append(experts[0])
    np.testing.assert_allclose(q.logits(theta, X), 3.0 * full.expval(theta, X, ["Z0", "X1 Z0"]), atol=1e-12)
    import pickle
    q2 = pickle.loads(pickle.dumps(q))
    np.testing.assert_allclose(q2.logits(theta, X), q.logits(theta, X), atol=0)
    with pytest.raises(ValueError, match="routing register"):
        qmoe.QMoE(enc, router, experts * 2)
    with pytest.raises(TypeError, match="qmoe.Circuit"):
        qmoe.QNN(enc, "ansatz")
    with pytest.raises(ValueError, match="routing probabilities"):
        q.routing_probabilities(theta, X)
