"""Atomic training checkpoints: tensors in safetensors, everything else in JSON.

``checkpoint_dir`` holds one sub-folder per checkpoint (``step-000000001234``)
and a ``latest`` file naming the newest. A checkpoint is written to a hidden
temporary folder and renamed into place, and ``latest`` is replaced with
``os.replace``, so a fit killed at any moment leaves the previous checkpoint
whole. The two newest checkpoints are kept.

A checkpoint holds the trained arrays and buffers, Adam's moments and step
counts, the schedule position, the loss curve, the random generator's states
(at the start of the epoch, to redraw its order, and now) and the position
and running totals inside the epoch, so a resumed fit repeats exactly the
steps an uninterrupted one would have taken.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CheckpointStore"]

FORMAT = "skmpsae-checkpoint"
FORMAT_VERSION = 1
_LATEST = "latest"
_META = "checkpoint.json"
_TENSORS = "state.safetensors"
_KEEP = 2
#: Parameters that may differ between the run that wrote a checkpoint and the one resuming it.
_FREE_PARAMS = {"verbose", "device", "checkpoint_dir", "checkpoint_every", "warm_start"}
#: Parameters added after checkpoints were first written: absent from one, they had these values.
_ADDED_DEFAULTS = {"weight_decay": 0.0, "max_grad_norm": None}


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


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

    # ----------------------------------------------------------------- write
    def write(self, snapshot):
        """Write ``snapshot`` (see ``TrainCheckpoint`` in ``_fit``) atomically."""
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
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.path))
        try:
            save_file(arrays, str(tmp / _TENSORS))
            (tmp / _META).write_text(json.dumps(_jsonable(meta), indent=1))
            target = self.path / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = self.path / f".{_LATEST}.tmp"
        pointer.write_text(name)
        os.replace(pointer, self.path / _LATEST)
        self._prune(keep=name)

    def _prune(self, keep):
        names = sorted(p.name for p in self.path.glob("step-*") if p.is_dir())
        for old in names[:-_KEEP]:
            if old != keep:
                shutil.rmtree(self.path / old, ignore_errors=True)

    # ------------------------------------------------------------------ read
    def read(self):
        """The newest checkpoint as a snapshot dict, or None when there is none."""
        from safetensors.numpy import load_file

        latest = self.path / _LATEST
        if not latest.is_file():
            return None
        folder = self.path / latest.read_text().strip()
        try:
            meta = json.loads((folder / _META).read_text())
            tensors = load_file(str(folder / _TENSORS))
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"checkpoint_dir={str(self.path)!r}: the checkpoint {folder.name!r} cannot be "
                f"read ({exc}); remove the folder to start afresh."
            ) from exc
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"checkpoint_dir={str(self.path)!r} holds an unsupported checkpoint format "
                f"{meta.get('format')!r} version {meta.get('format_version')!r}."
            )
        arrays = {key[len("param/"):]: value for key, value in tensors.items()
                  if key.startswith("param/")}
        adam = {name: {"step": entry["step"],
                       "exp_avg": tensors[f"adam/{name}/exp_avg"],
                       "exp_avg_sq": tensors[f"adam/{name}/exp_avg_sq"]}
                for name, entry in meta["adam"].items()}
        return {
            "meta": meta, "arrays": arrays, "adam": adam, "fired": tensors["fired"],
            "rng_epoch": _rng_from(meta["rng_epoch"], tensors, "rng_epoch"),
            "rng_now": _rng_from(meta["rng_now"], tensors, "rng_now"),
        }

    def check_compatible(self, meta, *, class_name, params, fingerprint):
        """Raise unless the checkpoint was written by the same estimator on the same data."""
        where = f"checkpoint_dir={str(self.path)!r}"
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
        if meta["data"] != _jsonable(fingerprint):
            raise ValueError(
                f"{where} holds a checkpoint of a fit on other data ({meta['data']}, here "
                f"{_jsonable(fingerprint)}); resume on the same data, or use an empty "
                "checkpoint_dir to start afresh."
            )
