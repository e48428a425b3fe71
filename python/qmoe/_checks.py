"""Input checks shared by the package: arrays become C-contiguous float64 (no
copy when they already are), wrong types raise TypeError, wrong shapes and
values ValueError (qmoe.Error), each with one line naming the argument."""
import numpy as np

from . import _core

Error = _core.Error


def as_f64(name, a, ndim=None, allow_none=False):
    """a as a C-contiguous float64 array (a view when it already is one)."""
    if a is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be an array, got None")
    if hasattr(a, "detach") and hasattr(a, "numpy"):  # a torch tensor
        if getattr(a, "requires_grad", False):  # numpy results would drop its gradient without a word
            raise TypeError(f"{name} is a tensor that requires grad: the numpy API returns no gradient to torch; "
                            f"use qmoe.torch.QuantumLayer, or pass {name}.detach()")
        a = a.cpu().numpy()
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers ({e})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got complex values")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise Error(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise Error(f"{name} holds a NaN or infinite value")
    return arr


def as_rows(name, X, allow_none=True):
    """X as [batch, features]; a 1-D X is one sample."""
    if X is None and allow_none:
        return None
    arr = as_f64(name, X)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise Error(f"{name} must be [samples, features], got shape {arr.shape}")
    return arr


def single_precision(dtype):
    """True for float32, False for float64 (the default); anything else is a TypeError."""
    if dtype is None:
        return False
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "")
    if name in ("float64", "double", "<class 'numpy.float64'>"):
        return False
    if name in ("float32", "float", "single", "<class 'numpy.float32'>"):
        return True
    raise TypeError(f"dtype must be float64 or float32, got {dtype}")


def out_dtype(single):
    return np.float32 if single else np.float64


def as_int(name, v, low=None, high=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    v = int(v)
    if (low is not None and v < low) or (high is not None and v > high):
        if high is None:
            raise Error(f"{name} must be >= {low}, got {v}")
        if low is None:
            raise Error(f"{name} must be <= {high}, got {v}")
        raise Error(f"{name} must be in {low} .. {high}, got {v}")
    return v
