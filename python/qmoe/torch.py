"""qmoe.torch.QuantumLayer: a circuit or model as a PyTorch module.

forward(x) -> <O_k> [batch, K], a torch.autograd.Function whose backward is
the adjoint method's vector-Jacobian product (grad/adjoint.hpp backward()),
giving gradients for the layer's weights (theta) and for its inputs x. The
forward keeps its states in a tape (a core Workspace) for the backward; under
torch.no_grad it keeps none. Tensors cross to the core without copies when
they are contiguous float64 on the CPU.

dtype: torch.float64 (default) simulates in double, torch.float32 in single
precision (the core's float kernels); inputs and outputs have that dtype.
"""
import numpy as np
import torch

from . import _core
from ._checks import Error, single_precision
from .circuit import Circuit
from .model import Model


def _np(t):
    """A float64 C-contiguous numpy view of a CPU tensor (a copy only when needed)."""
    if t.is_complex():
        raise TypeError("QuantumLayer: tensors must hold real numbers, got complex values")
    t = t.detach()
    if t.dtype is not torch.float64:
        t = t.double()
    return t.contiguous().numpy()


class _Expval(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, layer, keep):
        """keep: a backward may follow (grad mode, an input that requires grad):
        the tape keeps its states for it; else it goes straight back to the pool."""
        theta = _np(weight)
        X = None if x is None else _np(x)
        # A tape (the core's Workspace with its cached execution plans) from the
        # layer's pool: a fresh one would plan the circuit again on every call.
        tape = layer._tapes.pop() if layer._tapes else layer._new_tape()
        out = tape.forward(theta, X, keep)
        if keep:  # the backward returns the tape to the pool
            ctx.layer, ctx.tape, ctx.generation = layer, tape, tape.generation
            ctx.theta, ctx.X = theta.copy(), X  # for a backward after the tape went to another forward
        else:
            layer._tapes.append(tape)
        out = torch.from_numpy(out)
        return out if layer.dtype is torch.float64 else out.to(layer.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        # Grad mode here means create_graph=True: a graph of this backward, for
        # second derivatives, which the adjoint method does not give. Refused,
        # rather than returned as zeros.
        if torch.is_grad_enabled():
            raise RuntimeError("QuantumLayer: second derivatives (create_graph=True, gradgradcheck) are not "
                               "supported: the adjoint backward is not itself differentiable")
        layer, tape = ctx.layer, ctx.tape
        want_dx = ctx.X is not None and ctx.needs_input_grad[0]
        g = _np(grad_out)
        if tape.generation == ctx.generation:  # the tape still holds this forward
            dtheta, dx = tape.backward(g, want_dx)
            if tape not in layer._tapes:
                layer._tapes.append(tape)
        else:  # a second backward (retain_graph) after the tape went to another forward
            dtheta, dx = _core.vjp(layer._circuit, ctx.theta, ctx.X, layer.observables, g, layer._single)
        gx = torch.from_numpy(dx).to(grad_out.dtype) if want_dx else None
        return gx, torch.from_numpy(dtheta).to(grad_out.dtype), None, None


class QuantumLayer(torch.nn.Module):
    """circuit_or_model: a qmoe.Circuit (inputs: its features [batch,
    n_features]) or a qmoe model (inputs: data rows; the CLI's model appends its
    quadrant means in torch, so gradients reach the rows). observables: Pauli
    strings (default: Z on every qubit, or the model's observables). weight:
    initial parameters (default: the circuit's initial_params, or the model's
    init_params(seed), or uniform in [-pi, pi) from seed)."""

    def __init__(self, circuit_or_model, observables=None, *, weight=None, seed=0, dtype=torch.float64):
        super().__init__()
        self.dtype = dtype
        self._single = single_precision(dtype)
        self._quadrants = False
        self._tapes = []  # tapes (core workspaces) free for the next forward
        if isinstance(circuit_or_model, Model):
            m = circuit_or_model
            circuit = m.circuit
            self._quadrants = circuit.n_features == m.n_features + 4
            default = m.init_params(seed)
            if observables is None:
                observables = m.observables
        elif isinstance(circuit_or_model, Circuit):
            circuit = circuit_or_model
            if circuit.initial_params is not None:
                default = circuit.initial_params
            else:
                g = np.random.default_rng(seed)
                default = g.uniform(-np.pi, np.pi, circuit.n_params)
        else:
            raise TypeError(f"QuantumLayer takes a qmoe.Circuit or model, got {type(circuit_or_model).__name__}")
        self.circuit = circuit
        self._circuit = circuit._c.copy()  # the layer's own: later edits of `circuit` do not reach it
        self.observables = circuit._obs(observables)
        self._tapes.append(self._new_tape())  # parses the observables: a bad one fails here, not at the first call
        w = default if weight is None else _np(torch.as_tensor(weight))
        if w.shape != (circuit.n_params,):
            raise Error(f"weight must have {circuit.n_params} values, got shape {w.shape}")
        self.weight = torch.nn.Parameter(torch.tensor(w, dtype=dtype))

    def forward(self, x=None):
        if x is not None:
            if not torch.is_tensor(x):
                raise TypeError(f"QuantumLayer input must be a tensor, got {type(x).__name__}")
            if x.dim() != 2:
                raise Error(f"QuantumLayer input must be [batch, features], got shape {tuple(x.shape)}")
            if self._quadrants:  # the CLI's model reads the 4 quadrant means of the 8x8 image
                q = x.reshape(-1, 2, 4, 2, 4).mean(dim=(2, 4)).reshape(-1, 4)
                x = torch.cat([x, q], dim=1)
        keep = torch.is_grad_enabled() and (self.weight.requires_grad or (x is not None and x.requires_grad))
        return _Expval.apply(x, self.weight, self, keep)

    def __getstate__(self):  # copy.deepcopy, pickle, torch.save(layer): tapes are scratch, not state
        state = self.__dict__.copy()
        state["_tapes"] = []
        return state

    def _new_tape(self):
        return _core.Tape(self._circuit, self.observables, self._single)

    def extra_repr(self):
        return f"{self.circuit!r}, observables={self.observables}, dtype={self.dtype}"
