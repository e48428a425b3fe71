"""scikit-learn estimators: QMoEClassifier and QNNClassifier train with the
core's trainer (train::train: the same shuffling, Adam and numbers as
`qmoe train` for the same seed and data) and save / load the CLI's checkpoint
format, so `qmoe eval` and `qmoe export` read a model trained here and
qmoe.load reads a checkpoint of `qmoe train`.

Options left at None take the core's defaults (model::ModelConfig,
train::TrainConfig), as the CLI's flags do.
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_X_y, check_array

from . import _core
from ._checks import Error, as_int, single_precision
from . import datasets as _datasets
from . import models as _models
from .model import Model, from_config

_TRAIN_KEYS = ("epochs", "batch_size", "lr", "random_state", "gradient", "shots", "noise")


def _train_config(est):
    cfg = json.loads(_core.default_train_config())
    if est.epochs is not None:
        cfg["epochs"] = as_int("epochs", est.epochs, 0)
    if est.batch_size is not None:
        cfg["batch"] = as_int("batch_size", est.batch_size, 1)
    if est.lr is not None:
        cfg["lr"] = float(est.lr)
        if not np.isfinite(cfg["lr"]):  # JSON carries no NaN or infinity; the core checks the range
            raise Error(f"lr must be a finite number, got {est.lr}")
    cfg["seed"] = 0 if est.random_state is None else as_int("random_state", est.random_state, 0)
    if est.gradient is not None:
        cfg["gradient"] = est.gradient
    if est.chunk is not None:
        cfg["chunk"] = as_int("chunk", est.chunk, 1)
    # Training as a device would (docs/noise.md): shots per sample (parameter-shift
    # gradients from shots, so the gradient defaults to param-shift), or noise, a
    # noise model as `qmoe train --noise-model` reads it (e.g. {"depol2": 1e-3}).
    if est.shots is not None:
        cfg["shots"] = as_int("shots", est.shots, 0)
        if cfg["shots"] > 0 and est.gradient is None:
            cfg["gradient"] = "param-shift"
    if est.noise is not None:
        if not isinstance(est.noise, dict):
            raise TypeError(f"noise must be a dict (a noise model, docs/noise.md), got {type(est.noise).__name__}")
        cfg["noise"] = est.noise
    return cfg


class _Progress:
    """A one-line progress bar on stderr, as `qmoe train` draws it; when stderr
    is not a terminal (a log file), one line per epoch instead of redraws."""

    def __init__(self, epochs):
        self.epochs, self.t0 = epochs, time.monotonic()
        self.terminal = sys.stderr.isatty()

    def __call__(self, epoch, done, total, loss, acc):
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        if not self.terminal:
            if done == total:
                sys.stderr.write(f"epoch {epoch}/{self.epochs} loss {loss:.4f} acc {100 * acc:.2f}% "
                                 f"{rate:.0f} samples/s\n")
                sys.stderr.flush()
                self.t0 = time.monotonic()
            return
        filled = int(24 * done / total)
        sys.stderr.write(f"\repoch {epoch}/{self.epochs} [{'#' * filled}{'.' * (24 - filled)}] "
                         f"{100 * done // total:3d}% loss {loss:.4f} acc {100 * acc:.2f}% {rate:.0f} samples/s ")
        if done == total:
            sys.stderr.write("\n")
            self.t0 = time.monotonic()
        sys.stderr.flush()


class _QuantumClassifier(ClassifierMixin, BaseEstimator):
    _model_kind = None

    def _build_model(self, n_features, n_classes):
        if self.model is not None:
            if not isinstance(self.model, Model):
                raise TypeError(f"model must be a qmoe model (qmoe.QNN, qmoe.QMoE, qmoe.models.*), "
                                f"got {type(self.model).__name__}")
            m = self.model
            if m.n_features != n_features and m.circuit.n_features > 0:
                raise Error(f"X has {n_features} features, the model reads {m.n_features}")
            if m.n_classes < n_classes:
                raise Error(f"y has {n_classes} classes, the model {m.n_classes}")
            return m
        kw = {k: getattr(self, k) for k in self._model_keys}
        if self._model_kind == "qmoe" and kw.get("routing_encoder") is None and n_features != 64:
            kw["routing_encoder"] = "full"  # the quadrant encoder needs 8x8 images
        kw.update(n_features=n_features, n_classes=n_classes)
        if self._model_kind == "qnn_matched":
            return _models.qnn_matched(**kw)
        return from_config(_models.config(self._model_kind, **kw))

    def fit(self, X, y, eval_set=None):
        """Trains from the seed's initial parameters for `epochs` epochs.
        eval_set=(X_val, y_val): evaluated after each epoch (history_)."""
        X, y = check_X_y(X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("the training labels hold one class: a classifier needs at least 2")
        self.n_features_in_ = X.shape[1]
        model = self._build_model(X.shape[1], len(self.classes_))
        tc = _train_config(self)
        tjson = json.dumps(tc)
        state = model._m.initial_state(tjson)
        Xe = ye = None
        if eval_set is not None:
            Xe, ye = check_X_y(eval_set[0], eval_set[1], dtype=np.float64)
            ye = np.searchsorted(self.classes_, ye)
            Xe, ye = np.ascontiguousarray(Xe), np.ascontiguousarray(ye, dtype=np.int32)
        if self.threads is not None:
            _core.set_threads(as_int("threads", self.threads, 0))
        on_batch = _Progress(tc["epochs"]) if self.progress else None
        model._m.fit(tjson, state, np.ascontiguousarray(X), np.ascontiguousarray(yi, dtype=np.int32),
                     Xe, ye, on_batch)
        self.model_, self.state_, self.train_config_ = model, state, tc
        return self

    # ---- prediction ----------------------------------------------------------------
    @property
    def theta_(self):
        check_is_fitted(self, "state_")
        return self.state_.theta

    @property
    def history_(self):
        check_is_fitted(self, "state_")
        return self.state_.history

    def _rows(self, X):
        check_is_fitted(self, ["state_", "classes_"])
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return X

    def _logits(self, X):
        X = self._rows(X)
        return self.model_.logits(self.theta_, X, dtype=self.dtype)[:, :len(self.classes_)]

    def decision_function(self, X):
        """The model's logits [samples, classes]; for 2 classes, as scikit-learn
        expects, one score per sample: logit 1 - logit 0."""
        z = self._logits(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X):
        z = self._logits(X)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X):
        z = self._logits(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(z, axis=1)]

    def routing_probabilities(self, X):
        """p_k(z) of each sample: [samples, experts] (models with a router)."""
        X = self._rows(X)
        return self.model_.routing_probabilities(self.theta_, X, dtype=self.dtype)

    # ---- checkpoints --------------------------------------------------------------------
    def save(self, path, task=None):
        """Writes the CLI's checkpoint format (atomically). task: the data set it
        was trained on (a qmoe.datasets.Dataset or a task name), recorded so that
        `qmoe eval --checkpoint path` loads it by itself; without it, give
        --task to `qmoe eval`."""
        check_is_fitted(self, "state_")
        if hasattr(task, "task_info"):
            info = task.task_info()
        elif task is None:
            info = {}
        elif isinstance(task, str):
            names = _datasets.tasks()
            if task not in names and not os.path.isfile(task):
                raise Error(f"task {task!r} is neither a built-in task ({', '.join(names)}) nor a CSV file")
            info = {"task": task if task in names else os.path.abspath(task)}
        else:
            raise TypeError("task is a qmoe.datasets.Dataset or a task name")
        folder = os.path.dirname(os.path.abspath(str(path)))
        try:
            os.makedirs(folder, exist_ok=True)  # as `qmoe train --out` makes its folder
        except OSError as e:
            raise Error(f"cannot make the folder {folder}: {e.strerror}") from None
        self.model_._m.save_checkpoint(str(path), json.dumps(self.train_config_), json.dumps(info), self.state_)

    def _more_tags(self):
        return {"poor_score": True, "non_deterministic": False}


class QMoEClassifier(_QuantumClassifier):
    """The paper's QMoE (qmoe.models.paper_qmoe) or any custom `model`, trained
    by the adjoint method and Adam. Options as the CLI's `qmoe train` flags."""

    _model_kind = "qmoe"
    _model_keys = ("ops", "experts", "depth", "qubits", "routing_depth", "routing_encoder",
                   "aggregation", "readout", "ring_every", "logit_scale", "load_balance", "routing_qubits",
                   "routing_entropy", "expert_reupload", "routing_reupload", "routing", "top_k")

    def __init__(self, model=None, *, ops=None, experts=None, depth=None, qubits=None, routing_depth=None,
                 routing_encoder=None, aggregation=None, readout=None, ring_every=None, logit_scale=None,
                 load_balance=None, routing_qubits=None, routing_entropy=None, expert_reupload=None,
                 routing_reupload=None, routing=None, top_k=None, epochs=None, batch_size=None, lr=None,
                 random_state=0, gradient=None, chunk=None, shots=None, noise=None, threads=None, dtype="float64",
                 progress=False):
        self.model, self.ops, self.experts, self.depth, self.qubits = model, ops, experts, depth, qubits
        self.routing_depth, self.routing_encoder, self.aggregation = routing_depth, routing_encoder, aggregation
        self.readout, self.ring_every, self.logit_scale, self.load_balance = readout, ring_every, logit_scale, load_balance
        self.routing_qubits, self.routing_entropy, self.expert_reupload = routing_qubits, routing_entropy, expert_reupload
        self.routing_reupload, self.routing, self.top_k = routing_reupload, routing, top_k
        self.shots, self.noise = shots, noise
        self.epochs, self.batch_size, self.lr, self.random_state, self.gradient = epochs, batch_size, lr, random_state, gradient
        self.chunk, self.threads, self.dtype, self.progress = chunk, threads, dtype, progress


class QNNClassifier(_QuantumClassifier):
    """The baseline QNN (qmoe.models.qnn; matched=True: qnn_matched, as many
    parameters as the QMoE of the same options) or any custom `model`."""

    _model_keys = ("ops", "depth", "qubits", "ring_every", "readout", "logit_scale", "experts", "expert_reupload")

    @property
    def _model_kind(self):
        return "qnn_matched" if self.matched else "qnn"

    def __init__(self, model=None, *, matched=False, ops=None, depth=None, qubits=None, ring_every=None,
                 readout=None, logit_scale=None, experts=None, expert_reupload=None, epochs=None, batch_size=None,
                 lr=None, random_state=0, gradient=None, chunk=None, shots=None, noise=None, threads=None,
                 dtype="float64", progress=False):
        self.model, self.matched, self.ops, self.depth, self.qubits = model, matched, ops, depth, qubits
        self.ring_every, self.readout, self.logit_scale, self.experts = ring_every, readout, logit_scale, experts
        self.expert_reupload = expert_reupload
        self.shots, self.noise = shots, noise
        self.epochs, self.batch_size, self.lr, self.random_state, self.gradient = epochs, batch_size, lr, random_state, gradient
        self.chunk, self.threads, self.dtype, self.progress = chunk, threads, dtype, progress


def load(path):
    """A fitted QMoEClassifier / QNNClassifier from a checkpoint (`qmoe train`'s or save()'s)."""
    core, train_json, task_json, state = _core.load_checkpoint(str(path))
    cfg = json.loads(core.config_json)
    tc = json.loads(train_json)
    # Options the checkpoint leaves out (at their defaults) stay None: the core's defaults.
    common = dict(epochs=tc["epochs"], batch_size=tc["batch"], lr=tc["lr"], random_state=tc["seed"],
                  gradient=tc["gradient"], chunk=tc["chunk"], shots=tc.get("shots") or None, noise=tc.get("noise"),
                  ops=cfg["ops"], depth=cfg["depth"], qubits=cfg["data_qubits"], ring_every=cfg["encoder_ring_every"],
                  readout=cfg["readout"], logit_scale=cfg["logit_scale"], expert_reupload=cfg.get("expert_reupload"))
    model = Model(core, ("config", cfg))
    if cfg["model"] == "qmoe":
        est = QMoEClassifier(experts=cfg["experts"], routing_depth=cfg["routing_depth"],
                             routing_encoder=cfg["routing_encoder"], aggregation=cfg["aggregation"],
                             load_balance=cfg["load_balance"], routing_qubits=cfg["routing_qubits"],
                             **{k: cfg.get(k) for k in ("routing_entropy", "routing_reupload", "routing", "top_k")},
                             **common)
    elif cfg["model"] == "sum":  # no estimator keyword builds it: the model itself is the option
        est = QMoEClassifier(model, **{k: v for k, v in common.items() if k in _TRAIN_KEYS + ("chunk",)})
    else:
        est = QNNClassifier(**common)
    est.model_ = model
    est.state_ = state
    est.train_config_ = tc
    est.classes_ = np.arange(cfg["n_classes"])
    est.n_features_in_ = cfg["n_features"]
    est.task_ = json.loads(task_json)
    return est
