"""MatryoshkaSAE: BatchTopK codes whose nested prefixes must each reconstruct the input."""

from numbers import Integral

import numpy as np

from ._topk_sae import _COMMON_DOC, BatchTopKSAE

__all__ = ["MatryoshkaSAE"]


def default_group_sizes(n_components):
    """Groups whose prefixes hold 1/16, 1/8, 1/4, 1/2 and all of the latents."""
    ends = sorted({max(1, n_components // d) for d in (16, 8, 4, 2)} | {n_components})
    return list(np.diff([0] + ends))


class MatryoshkaSAE(BatchTopKSAE):
    __doc__ = """Matryoshka sparse autoencoder (Bussmann et al. 2025, arXiv 2503.17547).

    Latents are split into consecutive groups; the loss sums the
    reconstruction errors of every prefix of groups (the first group alone,
    the first two, ..., all), so early latents learn general features and later
    ones refine them. Codes are BatchTopK (see :class:`BatchTopKSAE`): the
    ``k * batch_size`` largest activations of a batch in training, the
    threshold ``threshold_`` at inference.
""" + _COMMON_DOC.format(
        k_note=", on average over a batch",
        extra_params="""
    group_sizes : list of int, default=None
        Sizes of the consecutive groups, summing to ``n_components``. None:
        prefixes of 1/16, 1/8, 1/4, 1/2 and all of the latents.""",
        extra_attrs="""
    threshold_ : ndarray of shape (1,)
        Inference threshold on activations.
    group_sizes_ : list of int
        The group sizes used.""") + """
    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatryoshkaSAE
    >>> X = load_digits().data / 16
    >>> sae = MatryoshkaSAE(k=8, max_iter=3, random_state=0).fit(X)
    >>> sae.group_sizes_
    [32, 32, 64, 128, 256]
    """

    _parameter_constraints: dict = {**BatchTopKSAE._parameter_constraints,
                                    "group_sizes": ["array-like", None]}

    def __init__(self, n_components=None, *, expansion_factor=8, k=16, group_sizes=None,
                 max_iter=50, batch_size=256, learning_rate=5e-3, warmup=0.05, init="data",
                 bias_init="geometric_median", aux_k=None, aux_coef=0.25, dead_after=10000,
                 random_state=None, device="auto", verbose=0, sparse_output=False,
                 warm_start=False, checkpoint_dir=None, checkpoint_every=None,
                 weight_decay=0.0, max_grad_norm=None):
        super().__init__(
            n_components, expansion_factor=expansion_factor, k=k, max_iter=max_iter,
            batch_size=batch_size, learning_rate=learning_rate, warmup=warmup, init=init,
            bias_init=bias_init, aux_k=aux_k, aux_coef=aux_coef, dead_after=dead_after,
            random_state=random_state, device=device, verbose=verbose,
            sparse_output=sparse_output, warm_start=warm_start, checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every, weight_decay=weight_decay,
            max_grad_norm=max_grad_norm)
        self.group_sizes = group_sizes

    def _resolve_groups(self, n_components):
        if self.group_sizes is None:
            return [int(g) for g in default_group_sizes(n_components)]
        sizes = list(self.group_sizes)
        if (not sizes or not all(isinstance(g, Integral) and not isinstance(g, bool) and g > 0
                                     for g in sizes)
                or sum(sizes) != n_components):
            raise ValueError(
                f"group_sizes={self.group_sizes!r} must be positive integers summing to "
                f"n_components={n_components}; pass None for the default prefixes."
            )
        return [int(g) for g in sizes]

    def _resolve_n_components(self, n_features):
        n_components = super()._resolve_n_components(n_features)
        self._resolve_groups(n_components)  # fail before training starts
        return n_components

    def _reconstruction_loss(self, params, xb, codes):
        D = params["components"]
        x_hat = params["bias"].expand_as(xb)
        total, start = 0.0, 0
        for size in self._resolve_groups(D.shape[0]):
            x_hat = x_hat + codes.columns(start, start + size).decode(D)
            total = total + ((xb - x_hat) ** 2).sum(dim=1).mean()
            start += size
        return total, x_hat

    @property
    def group_sizes_(self):
        """Group sizes of the fitted model."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self._resolve_groups(self.n_components_)
