"""The CLI's models (model/model.hpp build_model), with the same circuits and
the same initial parameters for the same seed as `qmoe train`.

Every keyword left at None takes the core's default (model::ModelConfig), so
these follow the CLI's defaults wherever they change. Keyword names follow the
CLI flags: ops, experts, depth, qubits (--qubits), routing_depth,
routing_encoder, aggregation, readout, ring_every, logit_scale, load_balance,
routing_qubits, routing_entropy, expert_reupload, routing_reupload, routing,
top_k (docs/models.md); n_classes and n_features describe the data (default:
mnist4's 4 classes of 64 features).
"""
import json

from . import _core
from .model import from_config

# keyword -> ModelConfig key
_KEYS = {"ops": "ops", "experts": "experts", "depth": "depth", "qubits": "data_qubits",
         "routing_depth": "routing_depth", "routing_encoder": "routing_encoder",
         "aggregation": "aggregation", "readout": "readout", "ring_every": "encoder_ring_every",
         "logit_scale": "logit_scale", "load_balance": "load_balance",
         "routing_qubits": "routing_qubits", "routing_entropy": "routing_entropy",
         "expert_reupload": "expert_reupload", "routing_reupload": "routing_reupload", "routing": "routing",
         "top_k": "top_k", "n_classes": "n_classes", "n_features": "n_features"}


def config(model, **kw):
    """The ModelConfig (a dict) for model "qmoe", "qnn" or "sum" with the given keywords."""
    cfg = json.loads(_core.default_model_config())
    for k, v in kw.items():
        if k not in _KEYS:
            raise TypeError(f"unknown model option {k!r} (options: {', '.join(_KEYS)})")
        if v is not None:
            cfg[_KEYS[k]] = v
    cfg["model"] = model
    return cfg


def paper_qmoe(**kw):
    """The paper's QMoE as `qmoe train --model qmoe` builds it."""
    return from_config(config("qmoe", **kw))


def sum_of_experts(**kw):
    """The experts summed with no router, the routing register in uniform
    superposition (`qmoe train --model sum`; docs/models.md)."""
    return from_config(config("sum", **kw))


def qnn(**kw):
    """The baseline QNN as `qmoe train --model qnn` builds it."""
    return from_config(config("qnn", **kw))


def qnn_matched(**kw):
    """A QNN with about as many parameters as the QMoE of the same keywords
    (`qmoe train --model qnn-matched`)."""
    target = paper_qmoe(**kw).n_params
    cfg = config("qnn", **kw)
    cfg["depth"] = _core.matched_depth(json.dumps(cfg), target)
    return from_config(cfg)
