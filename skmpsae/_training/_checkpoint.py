"""Atomic training checkpoints: tensors in safetensors, everything else in JSON.

``checkpoint_dir`` holds one sub-folder per checkpoint (``step-000000001234``)
and a ``latest`` file naming the newest. A checkpoint is written to a hidden
temporary folder and renamed into place, and ``latest`` is replaced with
``os.replace`` (the shared helpers of ``skmpsae._io``), so a fit killed at any
moment leaves the previous checkpoint whole. The two newest are kept; only
folders named ``step-<12 digits>`` holding a ``checkpoint.json`` of this
format are ever read or removed, so folders the user put there are left alone.

A checkpoint holds the trained arrays and buffers, Adam's moments and step
counts, the schedule position, the loss curve, the random generator's states
(at the start of the epoch, to redraw its order, and now) and the position
and running totals inside the epoch, so a resumed fit repeats exactly the
steps an uninterrupted one would have taken. It is bound to its run: the
class, the parameters and a fingerprint of the data (rows, features, dtype and
a hash of sampled rows). The first fit in a folder claims it before training
(``run.json``, created exclusively), so a fit of other parameters or other
data (the next candidate or fold of a search, sequential or in parallel) is
refused at once, before it trains or writes anything there. A damaged newest
checkpoint falls back to the previous intact one with a
:class:`~skmpsae.exceptions.CheckpointFallbackWarning`.
"""
import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, read_regular_file, replace_folder, to_jsonable
from ..exceptions import CheckpointFallbackWarning, ModelFileError

__all__ = ["CheckpointStore", "check_checkpoint_dir"]

FORMAT = "skmpsae-checkpoint"
FORMAT_VERSION = 1
_LATEST = "latest"
_META = "checkpoint.json"
_CLAIM = "run.json"
_TENSORS = "state.safetensors"
_NAME = re.compile(r"step-\d{12}")
_KEEP = 2
_MAX_META_BYTES = 64 * 2**20
_MAX_TENSOR_BYTES = 2**40
_META_KEYS = {"class", "params", "data", "n_components", "step", "n_iter", "first_epoch",
              "loss_curve", "batch", "total", "seen", "adam", "rng_epoch", "rng_now",
              "format", "format_version"}
#: Parameters that may differ between the run that wrote a checkpoint and the one resuming it.
_FREE_PARAMS = {"verbose", "device", "checkpoint_dir", "checkpoint_every", "warm_start"}
_jsonable = to_jsonable
#: Parameters added after checkpoints were first written: absent from one, they had these values.
_ADDED_DEFAULTS = {"weight_decay": 0.0, "max_grad_norm": None}


def check_checkpoint_dir(path):
    """Raise at once, naming ``checkpoint_dir``, unless ``path`` can hold checkpoints."""
    if isinstance(path, str) and not path.strip():
        raise ValueError("checkpoint_dir='' is empty; pass a folder, or None for no checkpoints.")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint_dir={str(path)!r} is a file, not a folder; pass a folder "
                         "(it is created when missing).")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"checkpoint_dir={str(path)!r} cannot be created: {str(existing)!r} "
                         "is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"checkpoint_dir={str(path)!r} is not writable ({str(existing)!r} "
                         "refuses writes); pass a folder you can write to.")


def _is_checkpoint(folder):
    """True for a folder this code wrote.

    That is its files only, with its ``checkpoint.json`` marker (or, damaged,
    a file of that name that is no longer JSON).
    """
    folder = Path(folder)
    try:
        if folder.is_symlink() or not folder.is_dir():
            return False
        entries = list(os.scandir(folder))
        names = {e.name for e in entries}
        if _META not in names or not names <= {_META, _TENSORS} or not all(
                e.is_file(follow_symlinks=False) for e in entries):
            return False
        raw = read_regular_file(folder / _META, _MAX_META_BYTES)
    except OSError:
        return False
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        return True
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _create_exclusive(path, text):
    """Create ``path`` holding ``text``; ``FileExistsError`` when it exists already."""
    fd, tmp = None, path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        try:
            os.link(tmp, path)  # appears whole, or not at all
        except (AttributeError, NotImplementedError, PermissionError):
            # No hard links here (some file systems): exclusive create, then write.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, text.encode())
    finally:
        if fd is not None:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def _rng_to(state, arrays, prefix):
    name, keys, pos, has_gauss, gauss = state
    arrays[f"{prefix}/keys"] = np.asarray(keys, dtype=np.uint32)
    return [name, int(pos), int(has_gauss), float(gauss)]


def _rng_from(meta, arrays, prefix):
    name, pos, has_gauss, gauss = meta
    return (name, arrays[f"{prefix}/keys"], pos, has_gauss, gauss)


class CheckpointStore:
    """Reads and writes the checkpoints of one fit in ``path``."""

    def __init__(self, path):
        self.path = Path(path)

    def _where(self):
        return f"checkpoint_dir={str(self.path)!r}"

    # ----------------------------------------------------------------- write
    def write(self, snapshot):
        """Write ``snapshot`` (the dict ``_fit._Run._checkpoint`` builds) atomically."""
        from safetensors.numpy import save_file

        arrays, meta = {}, dict(snapshot["meta"])
        for name, value in snapshot["arrays"].items():
            arrays[f"param/{name}"] = np.ascontiguousarray(value)
        adam = {}
        for name, entry in snapshot["adam"].items():
            adam[name] = {"step": float(entry["step"])}
            for key in ("exp_avg", "exp_avg_sq"):
                arrays[f"adam/{name}/{key}"] = np.ascontiguousarray(entry[key])
        meta["adam"] = adam
        arrays["fired"] = np.asarray(snapshot["fired"], dtype=np.int64)
        meta["rng_epoch"] = _rng_to(snapshot["rng_epoch"], arrays, "rng_epoch")
        meta["rng_now"] = _rng_to(snapshot["rng_now"], arrays, "rng_now")
        meta.update(format=FORMAT, format_version=FORMAT_VERSION)
        name = f"step-{meta['step']:012d}"
        self.path.mkdir(parents=True, exist_ok=True)

        def fill(folder):
            save_file(arrays, str(folder / _TENSORS))
            (folder / _META).write_text(json.dumps(_jsonable(meta), indent=1))

        # An earlier checkpoint of the same step (a resumed run) is ours to replace.
        replace_folder(fill, self.path / name, may_replace=_is_checkpoint)
        atomic_write_text(self.path / _LATEST, name)
        self._prune(keep=name)

    def _ours(self):
        """Names of this store's checkpoint folders, oldest first."""
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)
        except OSError:
            return []
        return [e.name for e in entries if _NAME.fullmatch(e.name)
                and _is_checkpoint(self.path / e.name)]

    def _prune(self, keep):
        for old in self._ours()[:-_KEEP]:
            if old != keep:
                shutil.rmtree(self.path / old, ignore_errors=True)

    # ------------------------------------------------------------------ read
    def read(self):
        """The newest intact checkpoint as a snapshot dict, or None when there is none.

        A damaged newest checkpoint (unreadable files, missing keys, wrong
        shapes, ``latest`` naming no checkpoint) gives way to the previous
        intact one with a warning; when none is intact, ``ModelFileError``
        names the file at fault.
        """
        latest = self.path / _LATEST
        names = self._ours()
        if not latest.exists() and not names:
            return None
        try:
            pointed = read_regular_file(latest, 64).decode("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            pointed, problems = None, [f"{_LATEST}: {exc}"]
        else:
            problems = []
            if not _NAME.fullmatch(pointed):
                problems.append(f"{_LATEST} names {pointed[:40]!r}, not a checkpoint folder")
                pointed = None
        order = ([pointed] if pointed else []) + [n for n in reversed(names) if n != pointed]
        for name in order:
            try:
                snapshot = self._read_one(self.path / name)
            except ModelFileError as exc:
                problems.append(str(exc))
                continue
            if problems:
                warnings.warn(
                    f"{self._where()}: the newest checkpoint cannot be used "
                    f"({'; '.join(problems)}); resuming from {name!r} instead.",
                    CheckpointFallbackWarning, stacklevel=4)
            return snapshot
        raise ModelFileError(
            f"{self._where()} holds no intact checkpoint: {'; '.join(problems)}. Remove the "
            "damaged step-* folders and the latest file to start afresh.")

    def _read_one(self, folder):
        from safetensors import SafetensorError
        from safetensors.numpy import load

        def fail(file, message):
            raise ModelFileError(f"{self._where()}: {folder.name}/{file} {message}")

        try:
            meta = json.loads(read_regular_file(folder / _META, _MAX_META_BYTES))
        except (OSError, ValueError, RecursionError) as exc:
            fail(_META, f"cannot be read ({exc})")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or \
                meta.get("format_version") != FORMAT_VERSION:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            version = meta.get("format_version") if isinstance(meta, dict) else None
            fail(_META, f"is not a {FORMAT!r} version {FORMAT_VERSION} checkpoint (format "
                        f"{fmt!r} version {version!r})")
        missing = sorted(_META_KEYS - set(meta))
        if missing:
            fail(_META, f"lacks the keys {missing}")
        try:
            tensors = load(read_regular_file(folder / _TENSORS, _MAX_TENSOR_BYTES))
        except (OSError, SafetensorError, ValueError) as exc:
            fail(_TENSORS, f"cannot be read ({exc})")
        try:
            snapshot = self._snapshot(meta, tensors)
        except (KeyError, TypeError, ValueError) as exc:
            fail(_TENSORS, f"does not match {_META} ({type(exc).__name__}: {exc})")
        return snapshot

    @staticmethod
    def _snapshot(meta, tensors):
        arrays = {key[len("param/"):]: value for key, value in tensors.items()
                  if key.startswith("param/")}
        n_components, n_features = int(meta["n_components"]), int(meta["data"]["n_features"])
        for name, value in arrays.items():
            if value.ndim == 0 or not np.isfinite(value).all():
                raise ValueError(f"array {name!r} is empty or holds NaN or inf")
        for name, shape in (("components", (n_components, n_features)),
                            ("bias", (n_features,))):
            if arrays[name].shape != shape:
                raise ValueError(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
        adam = {}
        for name, entry in meta["adam"].items():
            adam[name] = {"step": entry["step"],
                          "exp_avg": tensors[f"adam/{name}/exp_avg"],
                          "exp_avg_sq": tensors[f"adam/{name}/exp_avg_sq"]}
            for key in ("exp_avg", "exp_avg_sq"):
                if adam[name][key].shape != arrays[name].shape:
                    raise ValueError(f"Adam's {key} of {name!r} has shape "
                                     f"{adam[name][key].shape}, not {arrays[name].shape}")
        if tensors["fired"].shape != (n_components,):
            raise ValueError(f"'fired' has shape {tensors['fired'].shape}")
        return {
            "meta": meta, "arrays": arrays, "adam": adam, "fired": tensors["fired"],
            "rng_epoch": _rng_from(meta["rng_epoch"], tensors, "rng_epoch"),
            "rng_now": _rng_from(meta["rng_now"], tensors, "rng_now"),
        }

    def claim(self, *, class_name, params, fingerprint):
        """Bind the folder to this run, or raise unless it is bound to the same run.

        ``run.json`` is linked into place complete (or created exclusively),
        so of two fits starting together exactly one claims the folder and
        the other compares against its claim.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        claim = _jsonable({"format": FORMAT, "class": class_name, "params": params,
                           "data": fingerprint})
        target = self.path / _CLAIM
        try:
            _create_exclusive(target, json.dumps(claim, indent=1))
            return
        except FileExistsError:
            pass
        try:
            theirs = json.loads(read_regular_file(target, _MAX_META_BYTES))
            if not isinstance(theirs, dict) or not {"class", "params", "data"} <= set(theirs):
                raise ValueError("not a run claim")
        except (OSError, ValueError, RecursionError) as exc:
            raise ModelFileError(
                f"{self._where()}: {_CLAIM} cannot be read ({exc}); remove it if no fit is "
                "running there, or use another checkpoint_dir.") from exc
        self.check_compatible(theirs, class_name=class_name, params=params,
                              fingerprint=fingerprint)

    def check_compatible(self, meta, *, class_name, params, fingerprint):
        """Raise unless the checkpoint was written by the same estimator on the same data."""
        where = self._where()
        if meta["class"] != class_name:
            raise ValueError(f"{where} holds a {meta['class']} checkpoint, not a {class_name} "
                             "one; use another folder or remove it.")
        for key, value in params.items():
            if key in _FREE_PARAMS:
                continue
            saved = meta["params"].get(key, _ADDED_DEFAULTS.get(key))
            if _jsonable(value) != saved:
                raise ValueError(
                    f"{where} holds a checkpoint of a run with {key}={saved!r}, but this one "
                    f"has {key}={value!r}; resume with the same parameters, or use an empty "
                    "checkpoint_dir to start afresh."
                )
        here = _jsonable(fingerprint)
        if meta["data"] != here:
            saved = meta["data"] if isinstance(meta["data"], dict) else {}
            differ = [f"{key} {saved.get(key)!r} there, {here[key]!r} here" for key in here
                      if saved.get(key) != here[key]]
            raise ValueError(
                f"{where} holds a checkpoint of a fit on other data ({'; '.join(differ)}); "
                "resume on the same data, or use an empty checkpoint_dir per run (a search "
                "such as GridSearchCV fits each fold on other data: give it no checkpoint_dir)."
            )
