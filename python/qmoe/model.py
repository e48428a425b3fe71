"""Classifier models built from circuits (model/model.hpp): a circuit, its
observables and a linear read-out logits[c] = sum_k readout[c, k] <O_k>.

qmoe.QNN(encoder, ansatz, readout): encoder then ansatz on one register.
qmoe.QMoE(encoder, router, experts, aggregation): the paper's mixture of
experts from any circuits (docs/python.md has the diagram):

    data register (qubits 0..n-1):       encoder U(z), then expert k under the
                                         routing register being |k>, then the
                                         aggregation CNOTs routing i -> data i
    routing register (qubits n..n+r-1):  router G(theta_G) U'(z) (its own
                                         encoding and trainable gates)

<O> = sum_k p_k(z) <O>_k with p_k(z) = |<k| router |0>|^2 (routing bit i is
qubit n+i), read exactly from the Z strings of the routing register.
Parameters: encoder's, router's, then each expert's, in order.
qmoe.models builds the CLI's models (same circuits, same numbers).
"""
import json

import numpy as np

from . import _core
from ._checks import Error, as_f64, as_int, as_rows, single_precision
from .circuit import Circuit


def _default_logit_scale():
    return json.loads(_core.default_model_config())["logit_scale"]


class Model:
    """A classifier circuit. Use QNN, QMoE or the qmoe.models factories."""

    def __init__(self, core, spec):
        self._m = core
        self._spec = spec  # how to rebuild it (pickling, clone)

    # ---- description ----------------------------------------------------------------
    circuit = property(lambda self: Circuit._wrap(self._m.circuit), doc="the whole model circuit")
    observables = property(lambda self: list(self._m.observables))
    n_params = property(lambda self: self._m.n_params)
    n_classes = property(lambda self: self._m.n_classes)
    n_features = property(lambda self: self._m.n_features, doc="features per input row")
    n_experts = property(lambda self: self._m.n_experts, doc="0 for a QNN")

    @property
    def config(self):
        """The CLI's model configuration (factory models; None for custom ones)."""
        return json.loads(self._m.config_json) if self._m.from_config_ else None

    def init_params(self, seed=0):
        """Initial parameters, uniform in [-pi, pi), as `qmoe train --seed` draws them."""
        return self._m.init_params(as_int("seed", seed, 0))

    def circuit_inputs(self, X):
        """The circuit's features for rows X (the CLI's model appends the 4 quadrant means)."""
        return self._m.circuit_inputs(as_rows("X", X, allow_none=False))

    # ---- evaluation -------------------------------------------------------------------
    def _predict(self, theta, X, dtype):
        return self._m.predict(as_f64("theta", theta, ndim=1), as_rows("X", X, allow_none=False),
                               single_precision(dtype))

    def logits(self, theta, X, *, dtype="float64"):
        return self._predict(theta, X, dtype)[0]

    def predict_proba(self, theta, X, *, dtype="float64"):
        z = self.logits(theta, X, dtype=dtype)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def routing_probabilities(self, theta, X, *, dtype="float64"):
        """p_k(z) = |<k| G U(z) |0>|^2 per sample: [samples, experts] (QMoE only)."""
        if not self.n_experts:
            raise Error("routing probabilities: the model has no router (a QNN)")
        return self._predict(theta, X, dtype)[1]

    def expvals(self, theta, X, *, dtype="float64"):
        """<O_k> of the model's observables per sample: [samples, K]."""
        return self._predict(theta, X, dtype)[2]

    # ---- pickling ------------------------------------------------------------------------
    def __reduce__(self):
        return (_rebuild, (self._spec,))

    def __repr__(self):
        kind = f"QMoE with {self.n_experts} experts" if self.n_experts else "QNN"
        return f"<qmoe {kind}: {self.circuit.n_qubits} qubits, {self.n_params} params, {self.n_classes} classes>"


def _rebuild(spec):
    kind, args = spec
    if kind == "config":
        return from_config(args)
    if kind == "qnn":
        return QNN(**args)
    return QMoE(**args)


def from_config(config):
    """A model from the CLI's model configuration (a dict, as in config.json)."""
    core = _core.Model.from_config(json.dumps(config))
    return Model(core, ("config", json.loads(core.config_json)))


def _readout(readout, n_qubits, offset=0):
    if readout is None:
        return [f"Z{q + offset}" for q in range(n_qubits)]
    if isinstance(readout, str):
        raise TypeError("readout is a list of Pauli strings, one per class")
    return list(readout)


def _shift(obs, offset):
    """Pauli strings on a register whose qubit 0 sits at circuit qubit `offset`."""
    if offset == 0:
        return obs
    out = []
    for o in obs:
        terms = []
        for t in o.split():
            if len(t) < 2 or t[0] not in "XYZ" or not t[1:].isdigit():
                raise Error(f"observable '{o}': terms are X, Y or Z and a qubit, e.g. 'Z0'")
            terms.append(f"{t[0]}{int(t[1:]) + offset}")
        out.append(" ".join(terms))
    return out


def _n_classes(n_classes, obs):
    """The class count: one read-out observable per class, at least 2."""
    if len(obs) < 2:
        raise Error(f"the read-out has {len(obs)} observable(s); a classifier needs one per class, at least 2 "
                    f"(a larger data register or readout=[...])")
    return len(obs) if n_classes is None else as_int("n_classes", n_classes, 2, len(obs))


def _readout_matrix(n_classes, K, scale):
    r = np.zeros((n_classes, K))
    r[np.arange(n_classes), np.arange(n_classes)] = scale
    return r


def _check_circuit(name, c):
    if not isinstance(c, Circuit):
        raise TypeError(f"{name} must be a qmoe.Circuit, got {type(c).__name__}")


class QNN(Model):
    """encoder (features) then ansatz (parameters) on one register; class c's
    logit is logit_scale * <readout[c]> (default readout: Z0, Z1, ... one per class)."""

    def __init__(self, encoder, ansatz, readout=None, n_classes=None, logit_scale=None):
        _check_circuit("encoder", encoder)
        _check_circuit("ansatz", ansatz)
        if encoder.n_qubits != ansatz.n_qubits:
            raise Error(f"encoder has {encoder.n_qubits} qubits, ansatz {ansatz.n_qubits}")
        scale = _default_logit_scale() if logit_scale is None else float(logit_scale)
        obs = _readout(readout, encoder.n_qubits)
        C = _n_classes(n_classes, obs)
        c = Circuit(encoder.n_qubits)
        c.append(encoder)
        c.append(ansatz, param_offset=encoder.n_params)
        core = _core.Model.from_parts(c._c, obs, len(obs), _readout_matrix(C, len(obs), scale), [], 0, scale)
        super().__init__(core, ("qnn", dict(encoder=encoder, ansatz=ansatz, readout=readout,
                                            n_classes=n_classes, logit_scale=logit_scale)))


class QMoE(Model):
    """A quantum mixture of experts from any circuits (see the module docstring).
    encoder: the data register's U(z); router: a circuit on the routing register
    (r qubits, 2^r >= len(experts)); experts: circuits on the data register
    (they may differ); aggregation: "cnot" or "none"; readout as for QNN."""

    def __init__(self, encoder, router, experts, aggregation="cnot", readout=None, n_classes=None,
                 logit_scale=None):
        _check_circuit("encoder", encoder)
        _check_circuit("router", router)
        experts = list(experts)
        if not experts:
            raise Error("QMoE needs at least one expert")
        for i, e in enumerate(experts):
            _check_circuit(f"experts[{i}]", e)
            if e.n_qubits != encoder.n_qubits:
                raise Error(f"experts[{i}] has {e.n_qubits} qubits, the data register {encoder.n_qubits}")
        if aggregation not in ("cnot", "none"):
            raise Error(f"aggregation must be 'cnot' or 'none', got {aggregation!r}")
        n, r = encoder.n_qubits, router.n_qubits
        if len(experts) > 2 ** r:
            raise Error(f"{len(experts)} experts need a routing register of at least "
                        f"{int(np.ceil(np.log2(len(experts))))} qubits, the router has {r}")
        if r > 6:
            raise Error("the routing register holds at most 6 qubits")
        scale = _default_logit_scale() if logit_scale is None else float(logit_scale)
        c = Circuit(n + r)
        c.append(encoder)
        offset = encoder.n_params
        c.append(router, qubits=range(n, n + r), param_offset=offset)
        offset += router.n_params
        for k, e in enumerate(experts):
            select = [(n + i, (k >> i) & 1) for i in range(r)]
            c.append(e, param_offset=offset, controls=select)
            offset += e.n_params
        c.reserve(offset, 0)
        if aggregation == "cnot":
            for i in range(min(r, n)):
                c.cx(n + i, i)
        data_obs = _readout(readout, n)
        C = _n_classes(n_classes, data_obs)
        routing = [" ".join(f"Z{n + i}" for i in range(r) if (s >> i) & 1) for s in range(1, 2 ** r)]
        obs = data_obs + routing
        core = _core.Model.from_parts(c._c, obs, len(data_obs), _readout_matrix(C, len(obs), scale),
                                      list(range(n, n + r)), len(experts), scale)
        super().__init__(core, ("qmoe", dict(encoder=encoder, router=router, experts=experts,
                                             aggregation=aggregation, readout=readout,
                                             n_classes=n_classes, logit_scale=logit_scale)))
