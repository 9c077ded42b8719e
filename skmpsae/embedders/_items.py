"""Raw input items (images and texts): validation, modality, loading, cache keys."""

from pathlib import Path

import numpy as np

from ._loading import import_pil

__all__ = ["check_items", "item_modality", "items_cache_key", "load_image"]

IMAGE, TEXT = "image", "text"


def _is_pil_image(item):
    # Only a PIL image can be one, so PIL is not imported to find out.
    return type(item).__module__.startswith("PIL.") and hasattr(item, "convert")


def _modality(item, index):
    if isinstance(item, str):
        return TEXT
    if isinstance(item, Path) or _is_pil_image(item):
        return IMAGE
    if isinstance(item, np.ndarray):
        if not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (1, 3, 4))):
            raise ValueError(f"X[{index}]: an image array must have shape (H, W) or (H, W, C) "
                             f"with C in 1, 3, 4; got shape {item.shape}.")
        if 0 in item.shape[:2]:
            raise ValueError(f"X[{index}]: the image array of shape {item.shape} has no pixels; "
                             "an image needs a height and a width of at least 1.")
        return IMAGE
    raise TypeError(f"X[{index}]: items must be str (text), PIL images, (H, W, C) arrays or "
                    f"pathlib.Path image files, got {type(item).__name__}.")


def _as_list(X):
    if isinstance(X, (str, bytes, Path)) or _is_pil_image(X):
        raise TypeError("X must be a sequence of items (texts, images), got a single "
                        f"{type(X).__name__}; wrap it in a list: [X].")
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim == 3 and X.shape[2] in (1, 3, 4):
        # (H, W, C) read as a stack would give H images of one pixel row each: refuse.
        raise ValueError(
            f"X is one array of shape {X.shape}, which reads as a single (H, W, C) image, not "
            "as a sequence of images: pass [X] for one image, a list of images, or a 4-D "
            "(n, H, W, C) stack (a stack of grayscale images whose width is 1, 3 or 4 "
            "pixels must be passed as a list)."
        )
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim in (3, 4):
        return list(X)  # a stack of images, (n, H, W) or (n, H, W, C)
    try:
        return list(X)
    except TypeError:
        raise TypeError(f"X must be a sequence of items (texts, images), got "
                        f"{type(X).__name__}.") from None


def check_items(X, accepted=(IMAGE, TEXT), owner="the embedder"):
    """List of items and their modalities; wrong types and missing files fail with the index.

    Images are not read here (corrupt files fail when their batch is loaded).
    """
    items = _as_list(X)
    if not items:
        raise ValueError("X is empty: nothing to embed.")
    modalities = []
    for index, item in enumerate(items):
        modality = _modality(item, index)
        if modality not in accepted:
            raise TypeError(f"X[{index}]: {owner} embeds {' and '.join(accepted)}s, got "
                            f"a {modality} ({type(item).__name__}).")
        if isinstance(item, Path):
            _check_path(item, index)
        modalities.append(modality)
    return items, np.array(modalities)


def _check_path(path, index):
    # A FIFO or a device would block or stream forever once opened: only regular files.
    if not path.exists():
        raise FileNotFoundError(f"X[{index}]: image file '{path}' does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"X[{index}]: '{path}' is a folder, not an image file; pass "
                                "the image files inside it, e.g. sorted(folder.glob('*.jpg')).")
    if not path.is_file():
        raise ValueError(f"X[{index}]: '{path}' is not a regular file (a FIFO, socket or "
                         "device); pass an image file.")


def item_modality(X: object) -> np.ndarray:
    """Modality of each item: ``"image"`` or ``"text"``.

    The labels :func:`skmpsae.metrics.modality_score` expects, in the order of
    ``X``. Nothing is read or embedded. Where an embedder gives several rows
    per item (``tokens="all"``), use its ``modality(X)`` method instead, which
    repeats each label once per row.

    Parameters
    ----------
    X : sequence of items
        Texts (``str``), PIL images, ``(H, W)`` or ``(H, W, C)`` arrays, or
        :class:`pathlib.Path` image files.

    Returns
    -------
    modality : ndarray of shape (n_items,), dtype str
        ``"image"`` for PIL images, arrays and paths, ``"text"`` for strings.

    Examples
    --------
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skmpsae.embedders import item_modality
    >>> item_modality(["a cat", np.zeros((8, 8, 3), np.uint8), Path("cat.jpg")])
    array(['text', 'image', 'image'], dtype='<U5')
    """
    items = _as_list(X)
    return np.array([_modality(item, index) for index, item in enumerate(items)], dtype="<U5")


def _array_to_pil(array, index):
    Image = import_pil()
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint8:
        return Image.fromarray(array)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
            raise ValueError(f"X[{index}]: a float image array must hold finite values in "
                             "[0, 1]; scale it, or pass uint8 values in [0, 255].")
        return Image.fromarray(np.round(array * 255).astype(np.uint8))
    raise ValueError(f"X[{index}]: an image array must be uint8 (0-255) or float (0-1), "
                     f"got dtype {array.dtype}.")


def load_image(item, index):
    """An RGB PIL image from a PIL image, an array or a file; errors name ``X[index]``."""
    if isinstance(item, np.ndarray):
        return _array_to_pil(item, index).convert("RGB")
    if isinstance(item, Path):
        Image = import_pil()
        _check_path(item, index)  # it may have changed since the items were checked
        try:
            with Image.open(item) as image:
                return image.convert("RGB")  # reads the whole file: truncation fails here
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"X[{index}]: image file '{item}' does not exist.") from exc
        except Image.DecompressionBombError as exc:
            raise ValueError(
                f"X[{index}]: image file '{item}' declares more pixels than PIL's limit of "
                f"{2 * Image.MAX_IMAGE_PIXELS} (a possible decompression bomb): {exc} If the "
                "file is trusted, raise PIL.Image.MAX_IMAGE_PIXELS before embedding."
            ) from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise OSError(f"X[{index}]: cannot read image file '{item}': {exc}") from exc
    return item.convert("RGB")


def _item_key(item):
    if isinstance(item, Path):
        try:
            stat = item.stat()
        except OSError:
            return ("path", str(item))
        return ("path", str(item.resolve()), stat.st_mtime_ns, stat.st_size)
    if _is_pil_image(item):
        return ("pil", item.mode, item.size, item.tobytes())
    return item


def items_cache_key(items):
    """What identifies the items for a cache: file paths with their time and size, pixels."""
    return [_item_key(item) for item in items]
