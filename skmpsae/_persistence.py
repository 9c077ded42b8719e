"""Saving and loading fitted SAEs without pickle: safetensors plus JSON.

A saved model is a folder holding ``config.json`` (class, hyperparameters,
fitted scalars) and ``arrays.safetensors`` (the fitted arrays). Loading checks
every field: unknown or missing keys, wrong types, shapes that disagree and
non-finite values are rejected with an error naming the field.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from ._device import validate_loaded_device
from ._model_card import check_fit_metrics, write_model_card

__all__ = ["load", "save"]

FORMAT = "skmpsae"
FORMAT_VERSION = 1
_CONFIG = "config.json"
_ARRAYS = "arrays.safetensors"
_TOP_KEYS = {"format", "format_version", "skmpsae_version", "class", "params", "fitted"}
_ADDED_PARAMS = ("warm_start", "checkpoint_dir", "checkpoint_every", "sparse_output")
_FITTED_KEYS = {"n_features_in_", "n_components_", "n_iter_", "loss_curve_", "feature_names_in_",
                "fit_metrics_"}


def _registry():
    import skmpsae

    return {name: getattr(skmpsae, name) for name in skmpsae._ESTIMATORS}


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def save(estimator, path):
    """Write ``estimator`` (fitted) to the folder ``path``, replacing it atomically."""
    from safetensors.numpy import save_file
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    if not isinstance(params.get("random_state"), (int, type(None))):
        params["random_state"] = None  # a RandomState object has no JSON form
    if params.get("checkpoint_dir") is not None:
        params["checkpoint_dir"] = os.fspath(params["checkpoint_dir"])
    fitted = {
        "n_features_in_": int(estimator.n_features_in_),
        "n_components_": int(estimator.n_components_),
        "n_iter_": int(estimator.n_iter_),
        "loss_curve_": [float(v) for v in estimator.loss_curve_],
    }
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(v) for v in estimator.feature_names_in_]
    if getattr(estimator, "fit_metrics_", None) is not None:
        fitted["fit_metrics_"] = dict(estimator.fit_metrics_)
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "skmpsae_version": __version__,
        "class": type(estimator).__name__,
        "params": {key: _jsonable(value) for key, value in params.items()},
        "fitted": fitted,
    }
    arrays = {name: np.ascontiguousarray(getattr(estimator, name + "_"))
              for name in estimator._array_names}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / _CONFIG).write_text(json.dumps(config, indent=2))
        save_file(arrays, str(tmp / _ARRAYS))
        write_model_card(estimator, tmp, name=path.name)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fail(path, message):
    raise ValueError(f"Cannot load skmpsae model from {str(path)!r}: {message}")


def _read_config(path):
    try:
        config = json.loads((path / _CONFIG).read_text())
    except FileNotFoundError:
        _fail(path, f"no {_CONFIG}; pass a folder written by estimator.save(path).")
    except json.JSONDecodeError as exc:
        _fail(path, f"{_CONFIG} is not valid JSON ({exc}).")
    if not isinstance(config, dict) or set(config) != _TOP_KEYS:
        keys = sorted(config) if isinstance(config, dict) else type(config).__name__
        _fail(path, f"{_CONFIG} must hold exactly the keys {sorted(_TOP_KEYS)}, got {keys}.")
    if config["format"] != FORMAT or config["format_version"] != FORMAT_VERSION:
        _fail(path, f"unsupported format {config['format']!r} version "
                    f"{config['format_version']!r}; this skmpsae reads {FORMAT!r} version "
                    f"{FORMAT_VERSION}.")
    return config


def _check_fitted(path, fitted):
    if not isinstance(fitted, dict) or not set(fitted) <= _FITTED_KEYS or \
            not {"n_features_in_", "n_components_", "n_iter_", "loss_curve_"} <= set(fitted):
        _fail(path, f"'fitted' must hold the keys n_features_in_, n_components_, n_iter_, "
                    f"loss_curve_ (and optionally feature_names_in_), got {fitted!r:.200}.")
    for key in ("n_features_in_", "n_components_", "n_iter_"):
        value = fitted[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            _fail(path, f"fitted {key} must be a non-negative integer, got {value!r}.")
    curve = fitted["loss_curve_"]
    if not isinstance(curve, list) or not all(isinstance(v, (int, float)) for v in curve):
        _fail(path, "fitted loss_curve_ must be a list of numbers.")
    if "fit_metrics_" in fitted and not check_fit_metrics(fitted["fit_metrics_"]):
        _fail(path, f"fitted fit_metrics_ is malformed: {fitted['fit_metrics_']!r:.200}.")
    names = fitted.get("feature_names_in_")
    if names is not None and (not isinstance(names, list) or len(names) != fitted["n_features_in_"]
                              or not all(isinstance(v, str) for v in names)):
        _fail(path, "fitted feature_names_in_ must be a list of n_features_in_ strings.")


def _read_arrays(path, estimator, fitted):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path / _ARRAYS))
    except FileNotFoundError:
        _fail(path, f"no {_ARRAYS}.")
    except (SafetensorError, OSError, ValueError) as exc:
        _fail(path, f"{_ARRAYS} is not a valid safetensors file ({exc}).")
    expected = set(estimator._array_names)
    if set(arrays) != expected:
        _fail(path, f"{_ARRAYS} must hold exactly {sorted(expected)}, got {sorted(arrays)}.")
    n_components, n_features = fitted["n_components_"], fitted["n_features_in_"]
    shapes = {"components": (n_components, n_features), "bias": (n_features,)}
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1 or dtypes.pop() not in (np.float32, np.float64):
        _fail(path, "arrays must all be float32 or all float64.")
    for name, value in arrays.items():
        if name in shapes and value.shape != shapes[name]:
            _fail(path, f"array {name!r} has shape {value.shape}, expected {shapes[name]}.")
        if not np.isfinite(value).all():
            _fail(path, f"array {name!r} holds NaN or inf.")
    return arrays


def load(path, expected_class=None):
    """Load a model saved by ``save``; ``expected_class`` restricts the class."""
    from ._base import _Cache

    path = Path(path)
    if not path.is_dir():
        _fail(path, "not a folder; pass the folder written by estimator.save(path).")
    config = _read_config(path)
    registry = _registry()
    cls = registry.get(config["class"])
    if cls is None:
        _fail(path, f"unknown class {config['class']!r}; known: {sorted(registry)}.")
    if expected_class is not None and not issubclass(cls, expected_class):
        _fail(path, f"it holds a {cls.__name__}, not a {expected_class.__name__}.")
    params = config["params"]
    defaults = cls().get_params(deep=False)
    if isinstance(params, dict):
        # Parameters added since format version 1 was first written take their defaults.
        params = {**{key: defaults[key] for key in _ADDED_PARAMS}, **params}
    valid = set(defaults)
    if not isinstance(params, dict) or set(params) != valid:
        got = sorted(params) if isinstance(params, dict) else params
        _fail(path, f"'params' must hold exactly {sorted(valid)}, got {got}.")
    params = dict(params, device=validate_loaded_device(params["device"]))
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        _fail(path, f"invalid parameter: {exc}")
    fitted = config["fitted"]
    _check_fitted(path, fitted)
    arrays = _read_arrays(path, estimator, fitted)
    for name, value in arrays.items():
        setattr(estimator, name + "_", value)
    for key, value in fitted.items():
        setattr(estimator, key, np.asarray(value, dtype=object) if key == "feature_names_in_"
                else value)
    estimator._optimizer_state, estimator._n_steps = None, 0
    estimator._cache = _Cache()
    return estimator
