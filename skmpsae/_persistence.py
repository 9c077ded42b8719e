"""Saving and loading fitted SAEs without pickle: safetensors plus JSON.

A saved model is a folder holding ``config.json`` (class, hyperparameters,
fitted scalars, a SHA-256 of the arrays) and ``arrays.safetensors`` (the
fitted arrays). ``config.json`` with its ``"format": "skmpsae"`` is also the
marker that lets ``save`` replace the folder later: a path holding anything
else (a file, a folder of other content, a model folder with extra files) is
never replaced nor touched.

Loading trusts nothing: only the two regular files are read (no links, size
caps, bounded JSON nesting); every parameter goes through the estimator's own
constraints and cross-parameter rules; every array is checked for its name,
shape, dtype, finiteness, unit-norm rows where the class promises them, and
against the checksum. Each failure raises :class:`~skmpsae.exceptions.ModelFileError`
naming the folder, the file and the field.

The estimator provides the hooks ``_fitted_state``, ``_restore_fitted`` and
``_fitted_array_shapes``; the class is found by name in ``_registry``.
"""

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._budget import BUDGET_ATTRIBUTES, check_budget_state
from ._device import validate_loaded_device
from ._io import (
    MAX_JSON_DEPTH,
    json_depth,
    open_folder,
    read_regular_file,
    replace_folder,
    to_jsonable,
)
from ._model_card import CARD, check_fit_metrics, model_card
from ._registry import ESTIMATORS, __version__, estimator_class
from .exceptions import ModelFileError

__all__ = ["is_model_folder", "load", "save"]

FORMAT = "skmpsae"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # version 1 had no checksum
_CONFIG = "config.json"
_ARRAYS = "arrays.safetensors"
_FILES = {_CONFIG, _ARRAYS, CARD}  # the model card is optional (older saves have none)
_MAX_CONFIG_BYTES = 16 * 2**20  # loss curves and feature names included
_MAX_ARRAY_BYTES = 2**40
_TOP_KEYS = {"format", "format_version", "skmpsae_version", "class", "params", "fitted"}
_ADDED_PARAMS = ("warm_start", "checkpoint_dir", "checkpoint_every", "weight_decay",
                 "max_grad_norm", "sparse_output")
_FITTED_KEYS = {"n_features_in_", "n_components_", "n_iter_", "loss_curve_", "feature_names_in_",
                "fit_metrics_", *BUDGET_ATTRIBUTES}


def _checksum(arrays):
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _check_save_path(path):
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ValueError(f"path={path!r}: pass the folder to save the model to, e.g. "
                         "sae.save('my-sae').")
    try:
        path = Path(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}.") from None
    resolved = path.resolve()
    if resolved.parent == resolved or resolved == Path.home().resolve() or \
            path.name in ("", ".", ".."):
        raise ValueError(f"path={str(path)!r} is a root, home or relative-marker folder, not "
                         "a model folder; pass a new folder name, e.g. 'my-sae'.")
    return path


def is_model_folder(path):
    """True when ``path`` is a real folder holding only a model ``save`` wrote.

    That is its ``config.json`` marker (``"format": "skmpsae"``) and at most
    ``arrays.safetensors`` and the model card ``README.md`` beside it, the card
    unchanged since save wrote it (its hash is in ``config.json``); a folder
    holding ``config.json`` and ``arrays.safetensors`` (and no other name)
    whose ``config.json`` is no longer JSON counts as a damaged model (save
    may repair it), but a valid JSON file of another format never.
    """
    path = Path(path)
    for _ in range(_READ_ATTEMPTS):  # again when a concurrent save replaced it mid-check
        try:
            if path.is_symlink() or not path.is_dir():
                return False
            folder = open_folder(path)
        except OSError:
            return False
        try:
            entries = {entry.name: entry for entry in os.scandir(folder)}
            if _CONFIG not in entries or not set(entries) <= _FILES or not all(
                    e.is_file(follow_symlinks=False) for e in entries.values()):
                raise OSError("not a model folder")
            raw = read_regular_file(_CONFIG, _MAX_CONFIG_BYTES, dir_fd=folder)
            card = (read_regular_file(CARD, _MAX_CONFIG_BYTES, dir_fd=folder)
                    if CARD in entries else None)
            break
        except OSError:
            if not _replaced_meanwhile(path, folder):
                return False
        finally:
            os.close(folder)
    else:
        return False
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        return {_CONFIG, _ARRAYS} <= set(entries)  # damaged; only our file names there
    if not (isinstance(config, dict) and config.get("format") == FORMAT):
        return False
    return card is None or _card_is_ours(config, card)


def _card_is_ours(config, card):
    """Whether ``card`` (README.md's bytes) is the model card that save wrote beside ``config``."""
    checksum = config.get("checksum")
    recorded = checksum.get("card_sha256") if isinstance(checksum, dict) else None
    return isinstance(recorded, str) and hashlib.sha256(card).hexdigest() == recorded


def save(estimator, path):
    """Write ``estimator`` (fitted) to the folder ``path``; see the module docstring."""
    from safetensors.numpy import save_file
    from sklearn.utils.validation import check_is_fitted

    path = _check_save_path(path)
    check_is_fitted(estimator)
    arrays, fitted = estimator._fitted_state()
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            raise ValueError(
                f"{type(estimator).__name__}.{name}_ holds NaN or inf; such a model cannot be "
                "used and is not saved. Refit (a lower learning_rate, or scaled input).")
    params = estimator.get_params(deep=False)
    if not isinstance(params.get("random_state"), (int, type(None))):
        params["random_state"] = None  # a RandomState object has no JSON form
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "skmpsae_version": __version__,
        "class": type(estimator).__name__,
        "params": to_jsonable(params),
        "fitted": to_jsonable(fitted),
        "checksum": {"sha256": _checksum(arrays)},
    }
    card = model_card(estimator, path.name).encode("utf-8")
    # The card's hash tells save later that README.md is still the card it wrote.
    config["checksum"]["card_sha256"] = hashlib.sha256(card).hexdigest()
    if path.exists() or path.is_symlink():
        _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def fill(folder):
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / _ARRAYS))
        (folder / _CONFIG).write_text(json.dumps(config, indent=2))
        (folder / CARD).write_bytes(card)

    try:
        replace_folder(fill, path, may_replace=is_model_folder)
    except FileExistsError:
        _check_replaceable(path)  # names what is there now
        raise


def _check_replaceable(path):
    if path.is_symlink():
        raise FileExistsError(errno.EEXIST, "is a symbolic link; save does not replace links "
                              "(pass the folder it points to, or another path)", str(path))
    if not path.is_dir():
        raise FileExistsError(errno.EEXIST, "is a file, not a skmpsae model folder; save never "
                              "replaces it (pass another path)", str(path))
    names = sorted(entry.name for entry in os.scandir(path))
    if names and not is_model_folder(path):
        other = [n for n in names if n not in _FILES] or [
            n for n in names if n == CARD] or names  # a card edited by hand is the user's now
        raise FileExistsError(
            errno.EEXIST, f"holds content that save did not write ({', '.join(other[:5])}); "
            "save only replaces an empty folder or a folder holding only a saved model "
            "(pass another path, or move those files)", str(path))


def _fail(path, file, message):
    where = f"{str(path)!r}" + (f" ({file})" if file else "")
    raise ModelFileError(f"Cannot load skmpsae model from {where}: {message}")


def _read_config(path, folder):
    try:
        raw = read_regular_file(_CONFIG, _MAX_CONFIG_BYTES, dir_fd=folder)
    except FileNotFoundError:
        _fail(path, _CONFIG, f"no {_CONFIG}; pass a folder written by estimator.save(path).")
    except OSError as exc:
        _fail(path, _CONFIG, f"cannot be read ({exc}).")
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        _fail(path, _CONFIG, f"not valid JSON ({exc}).")
    if json_depth(config) > MAX_JSON_DEPTH:
        _fail(path, _CONFIG, f"nested deeper than {MAX_JSON_DEPTH} levels; not a skmpsae file.")
    keys = set(config) if isinstance(config, dict) else None
    if keys is None or not (keys == _TOP_KEYS or keys == _TOP_KEYS | {"checksum"}):
        got = sorted(config) if isinstance(config, dict) else type(config).__name__
        _fail(path, _CONFIG, f"must hold exactly the keys {sorted(_TOP_KEYS | {'checksum'})}, "
                             f"got {got}.")
    if config["format"] != FORMAT or config["format_version"] not in _READABLE_VERSIONS:
        _fail(path, _CONFIG, f"unsupported format {config['format']!r} version "
                             f"{config['format_version']!r}; this skmpsae reads {FORMAT!r} "
                             f"versions {list(_READABLE_VERSIONS)}.")
    checksum = config.get("checksum")
    if config["format_version"] >= 2 and not (
            isinstance(checksum, dict) and "sha256" in checksum
            and set(checksum) <= {"sha256", "card_sha256"}
            and all(isinstance(v, str) for v in checksum.values())):
        _fail(path, _CONFIG, f"field 'checksum' must be {{'sha256': <hex>, 'card_sha256': <hex>}}"
                             f", got {checksum!r:.80}.")
    return config


def _check_fitted(path, fitted):
    if not isinstance(fitted, dict) or not set(fitted) <= _FITTED_KEYS or \
            not {"n_features_in_", "n_components_", "n_iter_", "loss_curve_"} <= set(fitted):
        _fail(path, _CONFIG, f"'fitted' must hold the keys n_features_in_, n_components_, "
                             f"n_iter_, loss_curve_ (and optionally feature_names_in_), got "
                             f"{fitted!r:.200}.")
    for key in ("n_features_in_", "n_components_", "n_iter_"):
        value = fitted[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            _fail(path, _CONFIG, f"fitted {key} must be a non-negative integer, got {value!r}.")
    for key in ("n_features_in_", "n_components_"):
        if fitted[key] < 1:
            _fail(path, _CONFIG, f"fitted {key} must be at least 1, got {fitted[key]!r}.")
    curve = fitted["loss_curve_"]
    if not isinstance(curve, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in curve):
        _fail(path, _CONFIG, "fitted loss_curve_ must be a list of numbers.")
    if "fit_metrics_" in fitted and not check_fit_metrics(fitted["fit_metrics_"]):
        _fail(path, _CONFIG, f"fitted fit_metrics_ is malformed: {fitted['fit_metrics_']!r:.200}.")
    problem = check_budget_state(fitted)
    if problem is not None:
        _fail(path, _CONFIG, f"{problem}.")
    names = fitted.get("feature_names_in_")
    if names is not None and (not isinstance(names, list) or len(names) != fitted["n_features_in_"]
                              or not all(isinstance(v, str) for v in names)):
        _fail(path, _CONFIG, "fitted feature_names_in_ must be a list of n_features_in_ strings.")


def _read_arrays(path, folder, estimator, fitted, checksum):
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(read_regular_file(_ARRAYS, _MAX_ARRAY_BYTES, dir_fd=folder))
    except FileNotFoundError:
        _fail(path, _ARRAYS, "missing.")
    except (SafetensorError, OSError, ValueError) as exc:
        _fail(path, _ARRAYS, f"not a valid safetensors file ({exc}).")
    expected = set(estimator._array_names)
    if set(arrays) != expected:
        _fail(path, _ARRAYS, f"must hold exactly {sorted(expected)}, got {sorted(arrays)}.")
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1 or dtypes.pop() not in (np.float32, np.float64):
        _fail(path, _ARRAYS, "arrays must all be float32 or all float64.")
    shapes = estimator._fitted_array_shapes(fitted["n_components_"], fitted["n_features_in_"])
    for name, value in arrays.items():
        if value.shape != shapes[name]:
            _fail(path, _ARRAYS, f"array {name!r} has shape {value.shape}, expected "
                                 f"{shapes[name]} (from n_components_ and n_features_in_).")
        if not np.isfinite(value).all():
            _fail(path, _ARRAYS, f"array {name!r} holds NaN or inf.")
    if checksum is not None and _checksum(arrays) != checksum["sha256"]:
        _fail(path, _ARRAYS, "the arrays do not match the checksum recorded in config.json "
                             "(the file was changed or damaged); save the model again.")
    for name in estimator._unit_norm_arrays:
        value = arrays[name]
        norms = np.linalg.norm(value.astype(np.float64), axis=1)
        tolerance = 1e-3 if value.dtype == np.float32 else 1e-9
        bad = np.flatnonzero(np.abs(norms - 1) > tolerance)
        if bad.size:
            _fail(path, _ARRAYS, f"array {name!r} must have unit-norm rows; row {bad[0]} has "
                                 f"norm {norms[bad[0]]:.6g}.")
    return arrays


def _estimator_from(path, config, expected_class):
    cls = estimator_class(config["class"])
    if cls is None:
        _fail(path, _CONFIG, f"unknown class {config['class']!r}; known: {sorted(ESTIMATORS)}.")
    if expected_class is not None and not issubclass(cls, expected_class):
        _fail(path, _CONFIG, f"it holds a {cls.__name__}, not a {expected_class.__name__}.")
    params = config["params"]
    defaults = cls().get_params(deep=False)
    if isinstance(params, dict):
        # Parameters added since format version 1 was first written take their defaults.
        params = {**{key: defaults[key] for key in _ADDED_PARAMS}, **params}
    valid = set(defaults)
    if not isinstance(params, dict) or set(params) != valid:
        got = sorted(params) if isinstance(params, dict) else params
        _fail(path, _CONFIG, f"'params' must hold exactly {sorted(valid)}, got {got}.")
    try:
        params = dict(params, device=validate_loaded_device(params["device"]))
        estimator = cls(**params)
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        _fail(path, _CONFIG, f"invalid parameter: {exc}")
    return estimator


#: Reads of a folder that saves keep replacing. Each retry follows a save
#: that completed while the folder was read; two writers saving in a loop
#: beside a reader on two loaded cores replaced it three times in a row.
_READ_ATTEMPTS = 10


def _replaced_meanwhile(path, folder):
    try:
        return os.stat(path).st_ino != os.fstat(folder).st_ino
    except OSError:
        return False


def load(path, expected_class=None):
    """Load a model saved by ``save``; ``expected_class`` restricts the class."""
    from ._device import resolve_device

    if path is None or (isinstance(path, str) and not path.strip()):
        raise ValueError(f"path={path!r}: pass the folder written by estimator.save(path).")
    path = Path(path)
    if not path.is_dir():
        _fail(path, None, "not a folder; pass the folder written by estimator.save(path).")
    for attempt in range(_READ_ATTEMPTS):
        folder = open_folder(path)
        try:
            config = _read_config(path, folder)
            estimator = _estimator_from(path, config, expected_class)
            fitted = config["fitted"]
            _check_fitted(path, fitted)
            if any(key in fitted for key in BUDGET_ATTRIBUTES) and \
                    not hasattr(estimator, "calibrate_budget"):
                _fail(path, _CONFIG, f"fitted budget_* entries belong to a "
                                     f"MatchingPursuitSAE, not a {type(estimator).__name__}.")
            arrays = _read_arrays(path, folder, estimator, fitted, config.get("checksum"))
            break
        except ModelFileError:
            # A save that replaced the folder while it was read (and removed the
            # old one) is no damage: read the new folder.
            if attempt == _READ_ATTEMPTS - 1 or not _replaced_meanwhile(path, folder):
                raise
        finally:
            os.close(folder)
    try:
        resolve_device(estimator.device)
        n_components = estimator._resolve_n_components(fitted["n_features_in_"])
    except ValueError as exc:
        _fail(path, _CONFIG, f"invalid parameter: {exc}")
    if n_components != fitted["n_components_"]:
        _fail(path, _CONFIG, f"params n_components={estimator.n_components} (expansion_factor="
                             f"{estimator.expansion_factor}) give {n_components} latents, but "
                             f"fitted n_components_={fitted['n_components_']}.")
    estimator._restore_fitted(arrays, fitted)
    return estimator
