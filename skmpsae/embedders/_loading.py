"""Lazy imports of the embedder extra and resolution of a model name to something loadable."""

import os
import re
from contextlib import contextmanager
from pathlib import Path

__all__ = ["import_pil", "import_torch", "import_transformers", "load_pretrained", "model_source",
           "quiet_loading"]

_EXTRA_HINT = 'install the embedders extra: pip install "skmpsae[embedders]"'

# A Hugging Face Hub id is "name" or "owner/name"; anything else is meant as a folder.
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def import_transformers():
    """``transformers``, or an ImportError that names the extra to install."""
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(f"skmpsae.embedders needs transformers; {_EXTRA_HINT}.") from exc
    return transformers


def import_pil():
    """``PIL.Image``, or an ImportError that names the extra to install."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(f"skmpsae.embedders needs pillow to read images; {_EXTRA_HINT}.") from exc
    return Image


def import_torch():
    """``torch`` (a core dependency, imported only when a model runs)."""
    import torch

    return torch


def model_source(model):
    """``(source, is_folder)``: an existing folder, or a Hub id to look up.

    A string that cannot be a Hub id (an absolute or relative path, a path
    object) and is not a folder raises FileNotFoundError at once, rather than
    a confusing Hub error later.
    """
    path = Path(os.fspath(model)).expanduser()
    if path.is_dir():
        return str(path), True
    if isinstance(model, os.PathLike) or not _HUB_ID.fullmatch(str(model)):
        raise FileNotFoundError(
            f"model={os.fspath(model)!r} is not a folder. Pass a folder written by a "
            "transformers model's save_pretrained (with its processor or tokenizer), or a "
            "Hugging Face Hub id such as 'openai/clip-vit-base-patch32'."
        )
    return str(model), False


def load_pretrained(loader, model, *, local_files_only, owner, **kwargs):
    """``loader.from_pretrained`` with an error that says how to provide a missing model.

    ``owner`` is the embedder's class name, used in the suggested fix.
    """
    source, is_folder = model_source(model)
    try:
        return loader.from_pretrained(source, local_files_only=local_files_only, **kwargs)
    except (OSError, ValueError) as exc:
        if is_folder:
            raise OSError(
                f"model={source!r}: {loader.__name__} could not load this folder ({exc}). "
                "It must hold what a model's save_pretrained writes (config.json, weights) "
                "and its processor's or tokenizer's files."
            ) from exc
        folder = source.rsplit("/", 1)[-1]
        raise OSError(
            f"model={source!r} (local_files_only={local_files_only}) is neither a local folder "
            "nor in the Hugging Face cache, and it could not be downloaded here. On a machine "
            f"with network access, save it to a folder (for instance `hf download {source} "
            f"--local-dir {folder}`), copy the folder here and pass its path: "
            f"{owner}(model='path/to/{folder}'). Original error: {exc}"
        ) from exc


@contextmanager
def quiet_loading(transformers, quiet):
    """Hide transformers' own progress bars (weights loading) while ``quiet``, then restore."""
    logging = transformers.utils.logging
    shown = logging.is_progress_bar_enabled()
    if quiet and shown:
        logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and shown:
            logging.enable_progress_bar()
