"""qmoe.datasets.load: the CLI's tasks as numpy arrays, with its preprocessing
(data/data.hpp load_task: centre crop, 3x3 pooling to 8x8, the pixel scaling).

    d = qmoe.datasets.load("mnist4", scaling="unit", train_limit=2000)
    d.x_train [n, 64] float64, d.y_train [n] int32 (0..C-1), d.x_test, d.y_test

scaling None takes the core's default (data::LoadOptions, as `qmoe train`
without --scaling); limits keep the first N samples of a split (0: all), as
--train-limit / --test-limit. Missing files raise qmoe.Error naming the
script that fetches them.
"""
from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._checks import as_int


@dataclass
class Dataset:
    task: str
    description: str
    scaling: str
    class_names: list
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_limit: int = 0
    test_limit: int = 0
    source_dir: str = field(default="", repr=False)

    def task_info(self):
        """The checkpoint's "task" entry (what `qmoe eval` reloads)."""
        return {"task": self.task, "scaling": self.scaling, "train_limit": self.train_limit,
                "test_limit": self.test_limit}


def tasks():
    """The built-in task names."""
    return [t.strip() for t in _core.task_list().split(",")]


def load(task, scaling=None, train_limit=0, test_limit=0, data_dir=None):
    if not isinstance(task, str):
        raise TypeError("task is a name such as 'mnist4' or a CSV path")
    if scaling is not None and not isinstance(scaling, str):
        raise TypeError("scaling is 'tq', 'unit' or 'pi'")
    tl, sl = as_int("train_limit", train_limit, 0), as_int("test_limit", test_limit, 0)
    d = _core.load_task(task, scaling or "", tl, sl, data_dir or "")
    return Dataset(task=d["task"], description=d["description"], scaling=d["scaling"],
                   class_names=list(d["class_names"]), x_train=d["x_train"], y_train=d["y_train"],
                   x_test=d["x_test"], y_test=d["y_test"], train_limit=tl, test_limit=sl,
                   source_dir=d["source_dir"])
