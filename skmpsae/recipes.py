"""Training recipes: named sets of SAE parameters, to pass as ``SAE(**recipe)``.

skmpsae's defaults are tuned for small data on a CPU (8x latents, a high
learning rate, batches of 256, Adam). The paper trains at another scale;
:func:`paper_recipe` gives its setting, :func:`default_recipe` the library's,
over the same keys, so the two can be compared and mixed::

    MatchingPursuitSAE(k=32, **paper_recipe())
    MatchingPursuitSAE(k=32, **paper_recipe(batch_size=1024, max_iter=20))
"""

import inspect

__all__ = ["default_recipe", "paper_recipe"]

#: The parameters a recipe sets (every SAE has them).
RECIPE_KEYS = ("n_components", "expansion_factor", "learning_rate", "warmup", "max_iter",
               "batch_size", "weight_decay", "max_grad_norm", "init")

# Costa, Fel, Lubana, Tolooshams, Ba, NeurIPS 2025 (arXiv 2506.03093), appendix on training:
# expansion factor 25, 50 epochs, AdamW with weight decay 1e-5, learning rate warmed up from
# 1e-6 to 5e-4 then cosine-decayed to 1e-6, batches of 8000 tokens, MSE loss, unit-norm atoms.
_PAPER = {"n_components": None, "expansion_factor": 25, "learning_rate": 5e-4,
          "warmup": 0.05, "max_iter": 50, "batch_size": 8000, "weight_decay": 1e-5,
          "max_grad_norm": None, "init": "data"}


def _check_overrides(overrides):
    unknown = sorted(set(overrides) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"unknown recipe parameter(s) {unknown}; a recipe sets "
                         f"{list(RECIPE_KEYS)}. Pass the others to the estimator directly.")


def paper_recipe(**overrides: object) -> dict:
    """The training setting of the MP-SAE paper, as estimator parameters.

    - ``expansion_factor=25``: ``n_components = 25 * n_features``;
    - ``learning_rate=5e-4``, the peak of a linear warmup from 1e-6 and a
      cosine decay to 1e-6 (skmpsae's schedule starts and ends at 2e-3 times
      the peak, which is 1e-6 at this peak); ``warmup=0.05`` (the share of
      steps in warmup is not reported: skmpsae's default);
    - ``max_iter=50`` epochs, ``batch_size=8000`` (tokens per step in the
      ViT runs);
    - ``weight_decay=1e-5``: AdamW;
    - ``max_grad_norm=None`` (no clipping reported) and ``init="data"`` (not
      reported: skmpsae's default).

    The paper trains on about a million embeddings (ImageNet) or more; on a
    few thousand samples 8000-sample batches give a handful of optimizer
    steps per epoch, so override ``batch_size`` (and maybe ``max_iter``) for
    small data. Parameters outside a recipe (``k``, ``random_state``,
    ``device``, an SAE's own) go to the estimator directly.

    Parameters
    ----------
    **overrides
        Recipe parameters (names in ``skmpsae.recipes.RECIPE_KEYS``) to change.

    Returns
    -------
    params : dict
        Keyword arguments for any SAE of skmpsae.

    See Also
    --------
    default_recipe : The library's defaults over the same keys.

    References
    ----------
    V. Costa, T. Fel, E. S. Lubana, B. Tolooshams, D. Ba, "From flat to
    hierarchical: extracting sparse representations with matching pursuit",
    NeurIPS 2025, arXiv 2506.03093.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.recipes import paper_recipe
    >>> paper_recipe()["expansion_factor"], paper_recipe()["weight_decay"]
    (25, 1e-05)
    >>> X = load_digits().data[:400] / 16
    >>> sae = MatchingPursuitSAE(k=8, random_state=0,
    ...                          **paper_recipe(batch_size=256, max_iter=2)).fit(X)
    >>> sae.n_components_  # 25 x 64 features
    1600
    """
    _check_overrides(overrides)
    return {**_PAPER, **overrides}


def default_recipe(estimator: "str | type" = "MatchingPursuitSAE", **overrides: object) -> dict:
    """The library defaults of an SAE class, over the keys of :func:`paper_recipe`.

    Parameters
    ----------
    estimator : str or SAE class, default="MatchingPursuitSAE"
        The class (or its name in :mod:`skmpsae`) whose defaults to read;
        they differ between SAEs (``ReLUSAE`` has a higher learning rate).
    **overrides
        Recipe parameters (names in ``skmpsae.recipes.RECIPE_KEYS``) to change.

    Returns
    -------
    params : dict
        The constructor defaults, by name.

    See Also
    --------
    paper_recipe : The paper's setting over the same keys.

    Examples
    --------
    >>> from skmpsae.recipes import default_recipe, paper_recipe
    >>> defaults, paper = default_recipe(), paper_recipe()
    >>> {key: (defaults[key], paper[key]) for key in defaults if defaults[key] != paper[key]}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'expansion_factor': (8, 25), 'learning_rate': (0.005, 0.0005),
     'batch_size': (256, 8000), 'weight_decay': (0.0, 1e-05)}
    """
    import skmpsae

    if isinstance(estimator, str):
        if estimator not in skmpsae._ESTIMATORS:
            raise ValueError(f"estimator={estimator!r} is not an SAE of skmpsae; use one of "
                             f"{sorted(skmpsae._ESTIMATORS)} or the class itself.")
        estimator = getattr(skmpsae, estimator)
    from ._base import BaseSAE

    if not (inspect.isclass(estimator) and issubclass(estimator, BaseSAE)):
        raise ValueError(f"estimator={estimator!r} must be an SAE class of skmpsae (or its name).")
    _check_overrides(overrides)
    signature = inspect.signature(estimator).parameters
    return {**{key: signature[key].default for key in RECIPE_KEYS}, **overrides}
