"""Seeing concepts: top-activating image crops with heat maps, and an HTML concept browser.

Needs matplotlib for the figures (the ``plot`` extra) and pillow for images.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from ._browser import concept_browser

__all__ = ["concept_browser", "plot_top_activations", "top_items"]


def _codes(estimator, X, n_steps, batch_size=4096):
    kwargs = {} if n_steps is None else {"n_steps": n_steps}
    blocks = [np.asarray(estimator.transform(X[start:start + batch_size], **kwargs))
              for start in range(0, len(X), batch_size)]
    return np.abs(np.concatenate(blocks))


def top_items(codes: ArrayLike, item_index: ArrayLike, latents: ArrayLike,
              n_top: int = 6) -> list:
    """Find the items where each latent fires most (an item's maximum over its rows).

    Parameters
    ----------
    codes : array-like of shape (n_rows, n_components)
        Codes of the rows (absolute values are ranked).
    item_index : array-like of shape (n_rows,)
        Item of each row (an embedder's ``item_index(X)``).
    latents : sequence of int
        Latents to rank items for.
    n_top : int, default=6
        Items kept per latent (fewer where a latent fires on fewer items).

    Returns
    -------
    top : list of ndarray
        For each latent, its top items, largest activation first.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.visualization import top_items
    >>> codes = np.array([[0.0, 1.0], [3.0, 0.0], [2.0, 0.5], [0.0, 0.0]])
    >>> top_items(codes, item_index=[0, 0, 1, 1], latents=[0, 1], n_top=2)
    [array([0, 1]), array([0, 1])]
    """
    codes = np.abs(np.asarray(codes))
    item_index = np.asarray(item_index)
    if codes.ndim != 2 or item_index.shape != (len(codes),):
        raise ValueError(f"item_index must give one item per row of codes: codes has shape "
                         f"{codes.shape}, item_index {item_index.shape}.")
    latents = np.asarray(latents, dtype=np.int64)
    if latents.size and (latents.min() < 0 or latents.max() >= codes.shape[1]):
        raise ValueError(f"latents must be in [0, {codes.shape[1] - 1}], got {latents.tolist()}.")
    best = np.zeros((item_index.max() + 1, len(latents)))
    np.maximum.at(best, item_index, codes[:, latents])
    order = np.argsort(-best, axis=0, kind="stable")[:n_top]
    return [order[:, j][best[order[:, j], j] > 0] for j in range(len(latents))]


def _heat(codes, rows, grid, latent):
    shape = grid[rows].max(axis=0) + 1
    heat = np.zeros(shape)
    heat[grid[rows, 0], grid[rows, 1]] = codes[rows, latent]
    return heat


def plot_top_activations(estimator: BaseEstimator, X: ArrayLike, images: Sequence,
                         item_index: ArrayLike, *, grid: ArrayLike | None = None,
                         latents: ArrayLike | None = None, n_top: int = 6,
                         n_steps: int | None = None, labels: Sequence | None = None,
                         panel_size: float = 1.5,
                         alpha: float = 0.55) -> "matplotlib.figure.Figure":  # noqa: F821
    """Each latent's top-activating images, its activation over the token grid overlaid.

    One row of panels per latent: the ``n_top`` images where the latent is
    strongest (an image's strength is the maximum over its rows), largest
    first, each titled with that activation. With ``grid`` (one row per
    grid cell, as from :meth:`skmpsae.embedders.ImageEmbedder.token_grid`),
    the latent's activation over the image's cells is drawn over it
    (brighter: stronger; the colour scale is the latent's largest shown
    activation; cells where it is silent are left clear).

    Parameters
    ----------
    estimator : fitted SAE
        Anything with ``transform`` giving codes (n_rows, n_components).
    X : array-like of shape (n_rows, n_features)
        The embeddings the SAE encodes.
    images : sequence of images
        The image behind each item (uint8 arrays or PIL images).
    item_index : array-like of shape (n_rows,)
        Item of each row of ``X``.
    grid : array-like of shape (n_rows, 2), default=None
        Grid cell (row, column) of each row; None: no overlay.
    latents : sequence of int, default=None
        Latents to show; None: the 12 of largest energy (mean activation)
        among those that fire on at least ``n_top`` images.
    n_top : int, default=6
        Images per latent.
    n_steps : int, default=None
        Sparsity at inference, passed to ``transform``.
    labels : sequence of str, default=None
        A label per latent, shown beside its row.
    panel_size : float, default=1.5
        Side of each panel, in inches.
    alpha : float, default=0.55
        Opacity of the heat map.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure (one row per latent, ``n_top`` columns).

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.visualization import plot_top_activations
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(6)]
    >>> X = rng.normal(size=(6 * 4, 8)).astype(np.float32)  # 4 tokens (2 x 2) per image
    >>> item_index, grid = np.repeat(np.arange(6), 4), np.tile([[0, 0], [0, 1], [1, 0], [1, 1]],
    ...                                                        (6, 1))
    >>> sae = MatchingPursuitSAE(n_components=8, k=2, max_iter=2, random_state=0).fit(X)
    >>> fig = plot_top_activations(sae, X, images, item_index, grid=grid, latents=[0, 1],
    ...                            n_top=3)
    >>> len(fig.axes)
    6
    """
    import matplotlib.pyplot as plt

    X = np.asarray(X)
    item_index = np.asarray(item_index)
    codes = _codes(estimator, X, n_steps)
    if grid is not None:
        grid = np.asarray(grid)
        if grid.shape != (len(X), 2):
            raise ValueError(f"grid must have shape (n_rows, 2) = ({len(X)}, 2), "
                             f"got {grid.shape}.")
    if latents is None:
        per_item = top_items(codes, item_index, np.arange(codes.shape[1]), n_top)
        enough = [j for j, items in enumerate(per_item) if len(items) >= n_top]
        latents = sorted(enough, key=lambda j: -codes[:, j].mean())[:12]
    latents = list(latents)
    if not latents:
        raise ValueError("no latent to show: none fires on n_top images; lower n_top.")
    tops = top_items(codes, item_index, latents, n_top)
    fig, axes = plt.subplots(len(latents), n_top, squeeze=False,
                             figsize=(panel_size * n_top, panel_size * len(latents)))
    for row, (latent, items) in enumerate(zip(latents, tops, strict=True)):
        scale = max((codes[item_index == i, latent].max() for i in items), default=1.0)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                label = f"latent {latent}"
                if labels is not None:
                    label += f"\n{labels[row]}"
                ax.set_ylabel(label, fontsize=8)
            if col >= len(items):
                ax.set_axis_off()
                continue
            image = np.asarray(images[items[col]])
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
            rows = np.flatnonzero(item_index == items[col])
            if grid is not None:
                height, width = image.shape[:2]
                heat = _heat(codes, rows, grid, latent)
                # cells where the latent is silent stay transparent: the image shows through
                ax.imshow(np.ma.masked_less_equal(heat, 0), cmap="inferno", vmin=0,
                          vmax=scale or 1.0, alpha=alpha, extent=(0, width, height, 0),
                          interpolation="bilinear")
            ax.set_title(f"{codes[rows, latent].max():.2f}", fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    return fig
