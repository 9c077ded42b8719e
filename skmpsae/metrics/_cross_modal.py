"""One-number summaries of the modality scores of an SAE's latents."""

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_codes
from ._coactivation import image_mask, modality_ratio

__all__ = ["CrossModalShare", "cross_modal_share"]


class CrossModalShare(NamedTuple):
    """Share of cross-modal latents, by count and by activation mass."""

    #: Share of the living latents whose modality score lies in the band.
    by_count: float
    #: Share of the total activation mass ``sum |z|`` carried by those latents.
    by_mass: float
    #: Number of living latents (those with a score).
    n_alive: int


def cross_modal_share(Z: ArrayLike, modality: ArrayLike, *, image_label: object = None,
                      band: tuple = (0.25, 0.75)) -> CrossModalShare:
    """Share of latents with a middle modality score, by count and by activation mass.

    With ``score_i = modality_score(Z, modality)[i]`` and the band
    ``(low, high)`` (open interval)::

        by_count = #{i alive : low < score_i < high} / #{i alive}
        by_mass  = sum_{i in band} sum_n |z_ni| / sum_i sum_n |z_ni|

    A latent is alive when it fires on some sample (it has a score). The
    count treats a latent that fires once like one that fires on every
    sample; the mass weighs each latent by how much of the codes it carries,
    so a handful of rare cross-modal latents cannot make an SAE look
    cross-modal. Report both (Costa et al. 2025 read the histogram of
    scores, which is the count).

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes of image and text embeddings.
    modality : array-like of shape (n_samples,)
        Label of each sample, exactly two distinct values.
    image_label : object, default=None
        Which label is the image modality (see
        :func:`~skmpsae.metrics.modality_score`).
    band : tuple of two floats, default=(0.25, 0.75)
        Open interval of scores counted as cross-modal, ``0 <= low < high <= 1``.

    Returns
    -------
    share : named tuple
        ``(by_count, by_mass, n_alive)`` with those fields (floats and an
        int); both shares are NaN when no latent fires.

    See Also
    --------
    modality_score : The score of each latent.

    Examples
    --------
    >>> from skmpsae.metrics import cross_modal_share
    >>> Z = [[1.0, 2.0, 0.0, 0.0],
    ...      [0.0, 2.0, 1.0, 0.0]]    # scores 1, 0.5, 0 and dead
    >>> share = cross_modal_share(Z, ["image", "text"])
    >>> round(share.by_count, 4), round(share.by_mass, 4), share.n_alive  # 1 of 3; 4 of 6
    (0.3333, 0.6667, 3)
    """
    try:
        low, high = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(f"band must be a pair (low, high) of floats, got {band!r}.") from None
    if not 0 <= low < high <= 1:
        raise ValueError(f"band must satisfy 0 <= low < high <= 1, got {band!r}.")
    Z = np.abs(check_codes(Z))
    images = image_mask(modality, Z.shape[0], image_label)
    scores = modality_ratio(Z[images].mean(axis=0, dtype=np.float64),
                            Z[~images].mean(axis=0, dtype=np.float64))
    alive = ~np.isnan(scores)
    n_alive = int(alive.sum())
    if n_alive == 0:
        return CrossModalShare(float("nan"), float("nan"), 0)
    middle = alive & (scores > low) & (scores < high)
    mass = Z.sum(axis=0, dtype=np.float64)
    return CrossModalShare(float(middle.sum() / n_alive), float(mass[middle].sum() / mass.sum()),
                           n_alive)
