"""qmoe.Circuit: a parameterised circuit on the C++ core (circuit/circuit.hpp).

Gates are methods named as in OpenQASM 2.0 (qelib1.inc): ``c.rx(0, 0.3)``,
``c.ry(1, param=0)``, ``c.rz(2, feature=5, scale=0.5)``, ``c.cx(0, 1)``,
``c.crx(0, 1, param=2)``, ``c.ccx(0, 1, 2)``, ``c.u3(0, qmoe.param(0), 0.1, qmoe.feature(3))``.
Every gate also takes ``controls=[...]``: extra controls, each a qubit (on |1>)
or a pair ``(qubit, 0)`` / ``(qubit, 1)``. Qubit 0 is the least significant
bit of a basis-state index (docs/conventions.md).
"""
from collections import namedtuple

import numpy as np

from . import _core
from ._checks import Error, as_f64, as_int, as_rows, out_dtype, single_precision

Angle = namedtuple("Angle", "source index scale")
Angle.__doc__ = "Where a gate angle comes from: ('param', i, scale) or ('feature', j, scale)."


def param(i, scale=1.0):
    """The angle scale * theta[i] (a trainable parameter)."""
    return Angle("param", as_int("param index", i, 0), float(scale))


def feature(j, scale=1.0):
    """The angle scale * x[j] (an input feature of each sample)."""
    return Angle("feature", as_int("feature index", j, 0), float(scale))


def _angle_spec(value, name):
    if isinstance(value, Angle):
        return (value.source, value.index, value.scale)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: an angle is a number, qmoe.param(i) or qmoe.feature(j), got {type(value).__name__}")
    return ("const", 0, float(value))


def _qubit(q, name):
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise TypeError(f"{name}: a qubit is an integer, got {type(q).__name__}")
    return int(q)


def _controls(controls, name):
    out = []
    for c in controls:
        if isinstance(c, tuple):
            if len(c) != 2 or c[1] not in (0, 1, True, False):
                raise Error(f"{name}: a control is a qubit or (qubit, 0|1), got {c!r}")
            out.append((_qubit(c[0], name), bool(c[1])))
        else:
            out.append((_qubit(c, name), True))
    return out


# name -> (core kind, number of leading control qubits, number of angles)
_GATES = {
    "id": ("id", 0, 0), "h": ("h", 0, 0), "x": ("x", 0, 0), "y": ("y", 0, 0), "z": ("z", 0, 0),
    "s": ("s", 0, 0), "sdg": ("sdg", 0, 0), "t": ("t", 0, 0), "tdg": ("tdg", 0, 0), "sx": ("sx", 0, 0),
    "rx": ("rx", 0, 1), "ry": ("ry", 0, 1), "rz": ("rz", 0, 1),
    "u1": ("u1", 0, 1), "p": ("u1", 0, 1), "u2": ("u2", 0, 2), "u3": ("u3", 0, 3), "u": ("u3", 0, 3),
    "cx": ("x", 1, 0), "cy": ("y", 1, 0), "cz": ("z", 1, 0), "ch": ("h", 1, 0), "csx": ("sx", 1, 0),
    "crx": ("rx", 1, 1), "cry": ("ry", 1, 1), "crz": ("rz", 1, 1),
    "cu1": ("u1", 1, 1), "cp": ("u1", 1, 1), "cu3": ("u3", 1, 3),
    "ccx": ("x", 2, 0), "c3x": ("x", 3, 0), "c4x": ("x", 4, 0),
}


def _make_gate_method(name, kind, n_ctrl, n_angles):
    def method(self, *args, param=None, feature=None, scale=1.0, controls=()):
        n_q = n_ctrl + 1
        if len(args) < n_q:
            raise TypeError(f"{name} takes {n_q} qubit(s)")
        qubits = [_qubit(q, name) for q in args[:n_q]]
        angles = list(args[n_q:])
        if param is not None or feature is not None:
            if n_angles != 1 or angles or (param is not None and feature is not None):
                raise TypeError(f"{name}: param= / feature= give the one angle of a 1-angle gate")
            angles = [Angle("param", as_int("param", param, 0), float(scale)) if param is not None
                      else Angle("feature", as_int("feature", feature, 0), float(scale))]
        if len(angles) != n_angles:
            raise TypeError(f"{name} takes {n_angles} angle(s), got {len(angles)}")
        ctl = [(q, True) for q in qubits[:n_ctrl]] + _controls(controls, name)
        try:
            self._c.add(kind, [qubits[-1]], ctl, [_angle_spec(a, name) for a in angles], None)
        except Error as e:  # the core names its gate kind (x for cx): name the method called
            raise Error(str(e).replace(f"gate {kind}:", f"{name}:", 1)) from None
        return self

    method.__name__ = name
    what = f"{n_ctrl} control(s) then the target" if n_ctrl else "the target"
    method.__doc__ = f"Appends {name} ({what}; {n_angles} angle(s)). Returns the circuit."
    return method


class Circuit:
    """A circuit of n_qubits; angles from constants, parameters (theta) or features (X)."""

    def __init__(self, n_qubits):
        self._c = _core.Circuit(as_int("n_qubits", n_qubits))
        self.initial_params = None  # from_qasm: the file's values

    @classmethod
    def _wrap(cls, core, initial_params=None):
        c = cls.__new__(cls)
        c._c = core
        c.initial_params = initial_params
        return c

    # ---- structure ------------------------------------------------------------
    n_qubits = property(lambda self: self._c.n_qubits)
    n_params = property(lambda self: self._c.n_params, doc="size of theta")
    n_features = property(lambda self: self._c.n_features, doc="features per sample (columns of X)")

    def __len__(self):
        return len(self._c)

    def gates(self):
        """The gates as dicts: name, targets, controls [(qubit, on_one)], angles [(source, index, value)]."""
        return self._c.gates()

    def reserve(self, n_params=0, n_features=0):
        """Make theta / X at least this long (for parameters or features no gate reads)."""
        self._c.reserve(n_params, n_features)
        return self

    def swap(self, a, b, controls=()):
        self._c.add("swap", [_qubit(a, "swap"), _qubit(b, "swap")], _controls(controls, "swap"), [], None)
        return self

    def cswap(self, c, a, b, controls=()):
        return self.swap(a, b, controls=[c] + list(controls))

    def unitary(self, q, matrix, controls=()):
        """Any fixed 2x2 unitary on qubit q."""
        m = np.asarray(matrix, dtype=complex)
        if m.shape != (2, 2):
            raise Error(f"unitary: the matrix must be 2x2, got shape {m.shape}")
        self._c.add("unitary", [_qubit(q, "unitary")], _controls(controls, "unitary"), [], list(m.reshape(4)))
        return self

    def append(self, other, qubits=None, param_offset=0, controls=()):
        """Appends other's gates on `qubits` (other's qubit i -> qubits[i]), its
        parameter indices shifted by param_offset, each gate also under `controls`;
        features keep their indices."""
        qubits = list(range(other.n_qubits)) if qubits is None else [_qubit(q, "append") for q in qubits]
        if len(qubits) != other.n_qubits:
            raise Error(f"append: {other.n_qubits} qubits to place, {len(qubits)} given")
        extra = _controls(controls, "append")
        for g in other.gates():
            angles = [(s, i + param_offset if s == "param" else i, v) for s, i, v in g["angles"]]
            ctl = [(qubits[q], on) for q, on in g["controls"]] + extra
            self._c.add(g["name"], [qubits[t] for t in g["targets"]], ctl, angles, g["matrix"])
        self._c.reserve(other.n_params + param_offset if other.n_params else 0, other.n_features)
        return self

    def copy(self):
        return Circuit._wrap(self._c.copy(), None if self.initial_params is None else self.initial_params.copy())

    def __getstate__(self):
        return {"c": self._c, "initial_params": self.initial_params}

    def __setstate__(self, s):
        self._c, self.initial_params = s["c"], s["initial_params"]

    # ---- running it -------------------------------------------------------------
    def _theta(self, theta):
        if theta is None:
            if self.initial_params is not None:
                return self.initial_params
            if self.n_params == 0:
                return np.zeros(0)
            raise TypeError(f"theta is required: the circuit has {self.n_params} parameters")
        return as_f64("theta", theta, ndim=1)

    def _obs(self, observables):
        if observables is None:
            return [f"Z{q}" for q in range(self.n_qubits)]
        if isinstance(observables, str):
            observables = [observables]
        obs = list(observables)
        for o in obs:
            if not isinstance(o, str):
                raise TypeError(f"an observable is a Pauli string such as 'Z0' or 'X0 Y2', got {type(o).__name__}")
        return obs

    def expval(self, theta=None, X=None, observables=None, *, dtype="float64"):
        """<O_k> of each sample: numpy [batch, K]. observables: Pauli strings
        ("Z0", "X0 Y2"; default Z on every qubit). X: [batch, n_features]
        (None for a circuit without features: batch 1)."""
        single = single_precision(dtype)
        out = _core.expval(self._c, self._theta(theta), as_rows("X", X), self._obs(observables), single)
        return out.astype(np.float32) if single else out

    def vjp(self, theta, X, observables, grad_out, *, dtype="float64"):
        """(dtheta, dX) = grad_out . d<O>/d(theta, X) by the adjoint method:
        dtheta [n_params] summed over the batch, dX [batch, n_features]."""
        single = single_precision(dtype)
        dt, dx = _core.vjp(self._c, self._theta(theta), as_rows("X", X), self._obs(observables),
                           as_f64("grad_out", grad_out, ndim=2), single)
        return (dt.astype(np.float32), dx.astype(np.float32)) if single else (dt, dx)

    def jacobian(self, theta=None, X=None, observables=None, *, dtype="float64"):
        """d<O_k>/dtheta_j of each sample by the adjoint method: [batch, K, n_params]."""
        single = single_precision(dtype)
        out = _core.jacobian(self._c, self._theta(theta), as_rows("X", X), self._obs(observables), single)
        return out.astype(np.float32) if single else out

    def probabilities(self, theta=None, X=None, qubits=None, *, dtype="float64"):
        """Basis-state probabilities [batch, 2^n] (or the marginal of `qubits`,
        qubits[0] the low bit of the outcome)."""
        single = single_precision(dtype)
        q = [] if qubits is None else [_qubit(v, "probabilities") for v in qubits]
        if qubits is not None and not q:
            raise Error("probabilities: qubits is empty")
        if len(set(q)) != len(q):
            raise Error(f"probabilities: a qubit appears twice in qubits={q}")
        out = _core.probabilities(self._c, self._theta(theta), as_rows("X", X), q, single)
        return out.astype(np.float32) if single else out

    def sample(self, theta=None, x=None, shots=1024, seed=0):
        """`shots` measured basis states (integers, bit q = qubit q) of one sample x."""
        return _core.sample(self._c, self._theta(theta), as_rows("x", x), as_int("shots", shots, 1, 100_000_000),
                            as_int("seed", seed, 0))

    def to_qasm(self, theta=None, x=None, measure=False):
        """OpenQASM 2.0 text with every angle resolved for one sample x."""
        return _core.to_qasm(self._c, self._theta(theta), as_rows("x", x), bool(measure))

    @classmethod
    def from_qasm(cls, text):
        """A circuit from OpenQASM 2.0 text: every numeric gate argument becomes a
        parameter, in file order (as `qmoe qasm --grad`); their values are in
        c.initial_params (used when theta is not given)."""
        if not isinstance(text, str):
            raise TypeError("from_qasm takes the OpenQASM text as a str")
        core, theta = _core.from_qasm(text)
        return cls._wrap(core, theta)

    # ---- drawing --------------------------------------------------------------------
    def __repr__(self):
        return f"<qmoe.Circuit {self.n_qubits} qubits, {len(self)} gates, {self.n_params} params, {self.n_features} features>"

    def __str__(self):
        return draw(self)


for _name, (_kind, _nc, _na) in _GATES.items():
    setattr(Circuit, _name, _make_gate_method(_name, _kind, _nc, _na))


def _angle_text(a):
    source, index, value = a
    if source == "const":
        return f"{value:.3g}"
    s = ("θ" if source == "param" else "x") + str(index)
    return s if value == 1.0 else f"{value:.3g}*{s}"


def draw(c):
    """The circuit as text: one line per qubit, one column per group of gates
    that touch disjoint qubit spans; ● / ○ controls on |1> / |0>, x a swap."""
    n = c.n_qubits
    columns = []  # each: dict row -> label, plus the spans it holds
    free = [0] * n  # first column free on each qubit
    for g in c.gates():
        qs = list(g["targets"]) + [q for q, _ in g["controls"]]
        lo, hi = min(qs), max(qs)
        col = max(free[lo:hi + 1])
        while len(columns) <= col:
            columns.append({})
        cells = columns[col]
        for q in range(lo, hi + 1):
            cells[q] = "┼"
            free[q] = col + 1
        for q, on in g["controls"]:
            cells[q] = "●" if on else "○"
        if g["name"] == "swap":
            for t in g["targets"]:
                cells[t] = "x"
        else:
            label = g["name"].upper()
            if g["angles"]:
                label += "(" + ",".join(_angle_text(a) for a in g["angles"]) + ")"
            cells[g["targets"][0]] = label
    width = len(f"q{n - 1}")
    lines = []
    for q in range(n):
        parts = [f"q{q}".rjust(width) + ": "]
        for cells in columns:
            w = max(len(v) for v in cells.values())
            v = cells.get(q)
            if v is None:
                parts.append("─" * (w + 2))
            else:
                pad = w - len(v)
                parts.append("─" * (1 + pad // 2) + v + "─" * (1 + pad - pad // 2))
        parts.append("─")
        lines.append("".join(parts))
    return "\n".join(lines)
