"""qmoe: quantum machine learning on qmoe's C++ core (docs/python.md).

    qmoe.Circuit            circuits with gates named as in OpenQASM; expval, vjp, jacobian, ...
    qmoe.QNN, qmoe.QMoE     classifier models from any circuits
    qmoe.models             the CLI's models (paper_qmoe, qnn, qnn_matched, sum_of_experts)
    qmoe.QMoEClassifier,
    qmoe.QNNClassifier      scikit-learn estimators; qmoe.load reads a checkpoint
    qmoe.torch              QuantumLayer, a PyTorch module (import qmoe.torch)
    qmoe.datasets           the CLI's tasks as numpy arrays
"""
from . import _core
from ._core import Error
from .circuit import Angle, Circuit, feature, param
from .model import Model, QMoE, QNN, from_config
from . import models, datasets
from .estimators import QMoEClassifier, QNNClassifier, load

__version__ = "0.3.0"


def set_threads(n):
    """Threads of the simulation and training (0: all cores), as the CLI's --threads."""
    _core.set_threads(int(n))


def get_threads():
    return _core.get_threads()


__all__ = ["Error", "Circuit", "Angle", "param", "feature", "Model", "QNN", "QMoE", "from_config", "models",
           "datasets", "QMoEClassifier", "QNNClassifier", "load", "set_threads", "get_threads"]
