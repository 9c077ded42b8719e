"""Real data sets available offline, shaped for SAE training."""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["load_image_patches"]


def load_image_patches(patch_size=8, n_patches=20000, *, remove_mean=True, random_state=0):
    """Grey-scale patches of scikit-learn's two sample photographs (china, flower).

    Natural-image patches are the classic sparse-coding data set: their
    dictionaries learn oriented edges.

    Parameters
    ----------
    patch_size : int, default=8
        Side of the square patches; each becomes ``patch_size**2`` features.
    n_patches : int, default=20000
        Patches drawn at random positions, half from each photograph.
    remove_mean : bool, default=True
        Subtract each patch's mean intensity (its DC component).
    random_state : int, RandomState instance or None, default=0
        Seeds the patch positions.

    Returns
    -------
    X : ndarray of shape (n_patches, patch_size**2), float32
        Intensities scaled to [0, 1] before mean removal.

    Examples
    --------
    >>> from skmpsae.datasets import load_image_patches
    >>> load_image_patches(n_patches=100).shape
    (100, 64)
    """
    from sklearn.datasets import load_sample_images
    from sklearn.feature_extraction.image import extract_patches_2d

    rng = check_random_state(random_state)
    images = load_sample_images().images
    per_image = [n_patches // len(images) + (i < n_patches % len(images))
                 for i in range(len(images))]
    parts = []
    for image, count in zip(images, per_image, strict=True):
        grey = image.astype(np.float32).mean(axis=2) / 255.0
        patches = extract_patches_2d(grey, (patch_size, patch_size), max_patches=count,
                                     random_state=rng)
        parts.append(patches.reshape(count, -1))
    X = np.concatenate(parts).astype(np.float32)
    if remove_mean:
        X -= X.mean(axis=1, keepdims=True)
    return X
