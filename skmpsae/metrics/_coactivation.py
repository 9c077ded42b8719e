"""How latents fire together: modality score, bridge score, effective rank of co-activation."""

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from .._validation import check_atoms, check_codes

__all__ = ["bridge_score", "effective_rank", "image_mask", "modality_ratio", "modality_score"]


def image_mask(modality, n_samples, image_label=None):
    """Boolean mask of the image samples among two modality labels.

    ``image_label=None`` accepts the labels ``"image"`` and ``"text"``; any
    other pair of labels needs ``image_label`` to say which one is the image.
    """
    labels = np.asarray(modality)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise ValueError(f"modality must be 1-D with one label per sample ({n_samples}), "
                         f"got shape {labels.shape}.")
    values = np.unique(labels)
    if values.size != 2:
        raise ValueError(
            f"modality must hold exactly two distinct labels (image and text), got "
            f"{values.size}: {values.tolist()[:5]}; a modality score compares two modalities."
        )
    if image_label is None:
        if set(values.tolist()) != {"image", "text"}:
            raise ValueError(f"modality labels are {values.tolist()}; pass image_label= one of "
                             "them to say which is the image modality.")
        image_label = "image"
    if image_label not in values.tolist():
        raise ValueError(f"image_label={image_label!r} is not one of the modality labels "
                         f"{values.tolist()}.")
    return labels == image_label


def modality_ratio(mean_image, mean_text):
    """``mean_image / (mean_image + mean_text)``, NaN where both are zero."""
    total = mean_image + mean_text
    out = np.full(total.shape, np.nan)
    np.divide(mean_image, total, out=out, where=total > 0)
    return out


def modality_score(Z: ArrayLike, modality: ArrayLike, *, image_label: object = None) -> np.ndarray:
    """Modality score of each latent: the share of its mean activation that comes from images.

    For latent ``i``::

        score_i = E_image[|z_i|] / (E_image[|z_i|] + E_text[|z_i|])

    where ``E_image`` and ``E_text`` average over the samples of each modality
    (zeros included). 1 means the latent fires for images only, 0 for texts
    only, 0.5 as much for both (cross-modal). Absolute values make the score
    meaningful for signed codes; for non-negative SAE codes they change
    nothing. Means per modality, not sums, so the share of images in ``Z``
    does not bias the score.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes of image and text embeddings, in any order.
    modality : array-like of shape (n_samples,)
        Label of each sample, exactly two distinct values.
    image_label : object, default=None
        Which label is the image modality. None accepts the labels
        ``"image"`` and ``"text"`` and takes ``"image"``.

    Returns
    -------
    scores : ndarray of shape (n_components,), float64
        NaN for latents inactive in both modalities.

    References
    ----------
    I. Papadimitriou, H. Su, T. Fel, N. Saphra, S. Kakade, S. Gil,
    "Interpreting the linear structure of vision-language model embedding
    spaces", 2025, arXiv 2504.11695 (the modality score).

    Examples
    --------
    >>> from skmpsae.metrics import modality_score
    >>> Z = [[1.0, 2.0, 0.0, 0.0],
    ...      [0.0, 2.0, 1.0, 0.0]]
    >>> modality_score(Z, ["image", "text"])
    array([1. , 0.5, 0. , nan])
    >>> modality_score(Z, [1, 0], image_label=1)
    array([1. , 0.5, 0. , nan])
    """
    Z = abs(check_codes(Z))  # abs keeps sparse codes sparse
    images = image_mask(modality, Z.shape[0], image_label)
    mean_image = np.asarray(Z[images].mean(axis=0, dtype=np.float64)).ravel()
    mean_text = np.asarray(Z[~images].mean(axis=0, dtype=np.float64)).ravel()
    return modality_ratio(mean_image, mean_text)


def bridge_score(Z_image: ArrayLike, Z_text: ArrayLike,
                 dictionary: "ArrayLike | BaseEstimator") -> np.ndarray:
    """Bridge score of latent pairs across paired images and texts (Papadimitriou et al. 2025).

    For ``n`` image-text pairs with codes ``z^I_m`` (image ``m``) and ``z^T_m``
    (its caption), and unit-norm atoms ``d_i``::

        B = (1/n) sum_m z^I_m (z^T_m)^T  *  (D D^T)      (elementwise product)
        B[i, j] = E_pairs[z^I_i z^T_j] * cos(d_i, d_j)

    The first factor is the co-activation of latent ``i`` on an image with
    latent ``j`` on its paired text; the second is how aligned their
    directions are. A large ``B[i, j]`` marks two latents, possibly each
    unimodal, that fire together across the modalities and point the same way:
    a bridge that carries image-text alignment. For unit-norm atoms (an
    SAE's ``components_``), ``B.sum()`` is the mean inner product of the
    paired reconstructions without bias, ``mean_m <z^I_m D, z^T_m D>``.

    Parameters
    ----------
    Z_image : array-like of shape (n_pairs, n_components)
        Codes of the images.
    Z_text : array-like of shape (n_pairs, n_components)
        Codes of the texts, row ``m`` paired with row ``m`` of ``Z_image``.
    dictionary : array-like of shape (n_components, n_features) or fitted SAE
        Atoms as rows (an estimator's ``components_`` is used); rows are
        scaled to unit norm.

    Returns
    -------
    B : ndarray of shape (n_components, n_components)
        Rows index image latents, columns text latents. float32 when both
        codes and the dictionary are float32, else float64. It is dense:
        restrict the codes and atoms to the latents of interest for very large
        dictionaries.

    References
    ----------
    I. Papadimitriou, H. Su, T. Fel, N. Saphra, S. Kakade, S. Gil,
    "Interpreting the linear structure of vision-language model embedding
    spaces", 2025, arXiv 2504.11695 (the bridge score).

    Examples
    --------
    >>> from skmpsae.metrics import bridge_score
    >>> D = [[1.0, 0.0], [1.0, 1.0]]         # cos(d_0, d_1) = 0.7071
    >>> Z_image = [[2.0, 0.0], [0.0, 0.0]]
    >>> Z_text = [[0.0, 1.0], [0.0, 1.0]]    # pair 0: image latent 0 with text latent 1
    >>> bridge_score(Z_image, Z_text, D).round(4)  # (2 * 1 / 2) * 0.7071
    array([[0.    , 0.7071],
           [0.    , 0.    ]])
    """
    D = check_atoms(dictionary)
    Z_image = check_codes(Z_image, D.shape[0], name="Z_image")
    Z_text = check_codes(Z_text, D.shape[0], name="Z_text")
    if Z_image.shape != Z_text.shape:
        raise ValueError(f"Z_image and Z_text must have one row per pair (the same shape), got "
                         f"{Z_image.shape} and {Z_text.shape}.")
    dtype = np.result_type(Z_image.dtype, Z_text.dtype, D.dtype, np.float32)
    Z_image, Z_text, D = (a.astype(dtype, copy=False) for a in (Z_image, Z_text, D))
    coactivation = Z_image.T @ Z_text
    if sp.issparse(coactivation):  # (n_components, n_components) either way
        coactivation = coactivation.toarray()
    coactivation /= Z_image.shape[0]
    coactivation *= D @ D.T
    return coactivation


def effective_rank(Z: ArrayLike, *, centered: bool = False) -> float:
    """Effective rank of the co-activation matrix of the latents (Roy & Vetterli 2007).

    With ``A = (Z != 0)`` (which latents fire on which samples), ``n`` samples
    and the co-activation matrix ``C`` with singular values ``s_1 .. s_r``::

        centered=False:  C = A^T A / n                         (SPEC section 5)
        centered=True:   C = (A - m)^T (A - m) / n,  m = mean of A over samples
        p_k = s_k / sum_l s_l,    effective_rank = exp(-sum_k p_k log p_k)

    It lies between 1 (all firing patterns are multiples of one) and the
    number of latents that fire (latents that fire independently of each
    other with equal frequency). A wider range of latent combinations gives a
    higher effective rank.

    Which to use. The uncentred matrix holds the firing rates' outer product
    ``n m^T m`` besides the covariance. Its top singular value, the mean
    firing pattern, grows with the number of active latents per sample
    (about ``k`` times a typical one), so its share of the spectrum grows with
    ``k`` and the uncentred rank falls mechanically as ``k`` rises, even for
    latents that fire independently. The centred version (the covariance of
    the firing indicators) removes that mode and measures only how varied
    the combinations are; compare SAEs at several ``k`` with both.

    Dead latents change nothing and are dropped first (and, uncentred,
    all-zero rows); the singular values are the eigenvalues of the smaller of
    ``M^T M`` and ``M M^T`` (``M`` the matrix of indicators, centred or not).

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes; only their nonzero pattern is used.
    centered : bool, default=False
        Subtract each latent's firing rate before forming the co-activation
        matrix (a covariance instead of a second moment).

    Returns
    -------
    rank : float
        The effective rank; 0.0 when the matrix is zero (no latent fires or,
        centred, every latent fires on all samples or on none).

    References
    ----------
    O. Roy, M. Vetterli, "The effective rank: a measure of effective
    dimensionality", EUSIPCO 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.metrics import effective_rank
    >>> round(effective_rank(np.eye(3)), 6)  # three latents firing alone, equally often
    3.0
    >>> round(effective_rank(np.eye(3), centered=True), 6)  # I - 1/3: eigenvalues 1, 1, 0
    2.0
    >>> effective_rank([[1.0, 2.0], [3.0, 1.0]])  # always together: one pattern
    1.0
    >>> effective_rank(np.zeros((2, 3)))
    0.0
    """
    if not isinstance(centered, (bool, np.bool_)):
        raise ValueError(f"centered must be True or False, got {centered!r}.")
    A = check_codes(Z) != 0
    if sp.issparse(A):
        A = A[:, np.flatnonzero(A.getnnz(axis=0))].astype(np.float64)
        if centered:  # centring makes it dense; all-zero rows carry the firing rates
            A = A.toarray()
            A -= A.mean(axis=0)
        else:
            A = A[np.flatnonzero(A.getnnz(axis=1))]
    else:
        A = A[:, A.any(axis=0)].astype(np.float64)
        if centered:
            # All-zero rows carry the firing rates here: they stay.
            A -= A.mean(axis=0)
        else:
            A = A[A.any(axis=1)]
    if A.shape[0] * A.shape[1] == 0:
        return 0.0
    gram = A @ A.T if A.shape[0] <= A.shape[1] else A.T @ A
    gram = gram.toarray() if sp.issparse(gram) else gram
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    # Centring leaves eigenvalues that are zero up to rounding: below this share they are zero.
    eigenvalues[eigenvalues <= 1e-12 * max(eigenvalues.max(), 1e-300)] = 0.0
    if not eigenvalues.any():
        return 0.0
    p = eigenvalues[eigenvalues > 0] / eigenvalues.sum()
    return float(np.exp(-(p * np.log(p)).sum()))
