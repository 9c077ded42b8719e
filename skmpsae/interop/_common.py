"""What the SAELens and sparsify converters share: reading and writing folders, building estimators.

Files are read with ``safetensors`` and ``json`` only (never pickle). Tensors
in half precision become float32; float32 and float64 are kept.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["build_estimator", "fail", "read_json", "read_tensors", "write_folder"]


def fail(path, fmt, message):
    """Raise a ValueError naming the folder and the format."""
    raise ValueError(f"Cannot load the {fmt} SAE in {str(path)!r}: {message}")


def read_json(path, name, fmt):
    """The JSON object in ``path / name``."""
    try:
        value = json.loads((Path(path) / name).read_text())
    except FileNotFoundError:
        fail(path, fmt, f"no {name}; pass the folder that {fmt} saved.")
    except json.JSONDecodeError as exc:
        fail(path, fmt, f"{name} is not valid JSON ({exc}).")
    if not isinstance(value, dict):
        fail(path, fmt, f"{name} must hold a JSON object, got {type(value).__name__}.")
    return value


def read_tensors(path, name, fmt):
    """The tensors of the safetensors file ``path / name`` as NumPy arrays.

    float32 and float64 are kept; other float types (float16, bfloat16) become
    float32. Every tensor ends up in one dtype (the widest found).
    """
    from safetensors import SafetensorError, safe_open

    file = Path(path) / name
    if not file.is_file():
        fail(path, fmt, f"no {name}; pass the folder that {fmt} saved.")
    import torch

    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        fail(path, fmt, f"{name} is not a valid safetensors file ({exc}).")
    wide = any(t.dtype == torch.float64 for t in tensors.values())
    dtype = torch.float64 if wide else torch.float32
    arrays = {}
    for key, tensor in tensors.items():
        if not tensor.is_floating_point():
            fail(path, fmt, f"tensor {key!r} has dtype {tensor.dtype}; expected floats.")
        arrays[key] = tensor.to(dtype).numpy()
        if not np.isfinite(arrays[key]).all():
            fail(path, fmt, f"tensor {key!r} holds NaN or inf.")
    return arrays


def check_shape(path, fmt, arrays, key, shape):
    """Raise unless ``arrays[key]`` exists with ``shape``."""
    if key not in arrays:
        fail(path, fmt, f"the weights have no {key!r} (found {sorted(arrays)}).")
    if arrays[key].shape != tuple(shape):
        fail(path, fmt, f"{key!r} has shape {arrays[key].shape}, expected {tuple(shape)}.")
    return arrays[key]


def build_estimator(cls, params, arrays):
    """A fitted ``cls(**params)`` holding ``arrays`` (by fitted name, without ``_``)."""
    from .._base import _Cache

    estimator = cls(**params)
    estimator._validate_params()
    dtype = arrays["components"].dtype
    defaults = estimator._init_buffers(arrays["components"].shape[0]) \
        if hasattr(estimator, "_init_buffers") else {}
    for name in estimator._array_names:
        value = arrays.get(name, defaults.get(name))
        setattr(estimator, name + "_", np.ascontiguousarray(value, dtype=dtype))
    n_components, n_features = estimator.components_.shape
    estimator.n_features_in_ = n_features
    estimator.n_components_ = n_components
    estimator.n_iter_ = 0
    estimator.loss_curve_ = []
    estimator._optimizer_state, estimator._n_steps = None, 0
    estimator._cache = _Cache()
    return estimator


def write_folder(path, files, fmt, overwrite):
    """Write ``files`` ({name: bytes}) into the folder ``path``, each atomically.

    The folder is created when missing; files of other names are left alone.
    An existing file of one of these names is replaced only when
    ``overwrite``: otherwise nothing is written and the error says so.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"path={str(path)!r} is a file; pass a folder to write the "
                         f"{fmt} SAE into.")
    existing = sorted(name for name in files if (path / name).exists())
    if existing and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} already holds {existing}; pass overwrite=True to replace them, "
            "or choose another folder."
        )
    path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=path)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def tensors_bytes(arrays):
    """The safetensors bytes of NumPy ``arrays`` (C-contiguous copies)."""
    from safetensors.numpy import save

    return save({key: np.ascontiguousarray(value) for key, value in arrays.items()})


def fitted_arrays(estimator, classes, fmt):
    """The fitted arrays of ``estimator`` after checking it is one of ``classes``."""
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(estimator, classes):
        names = ", ".join(c.__name__ for c in classes)
        raise ValueError(f"{fmt} export takes a {names}, got {type(estimator).__name__}.")
    check_is_fitted(estimator)
    return {name: np.asarray(getattr(estimator, name + "_")) for name in estimator._array_names}


def dtype_name(array):
    """``"float32"`` or ``"float64"``."""
    return str(np.asarray(array).dtype)
