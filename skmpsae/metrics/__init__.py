"""Metrics of SAEs: plain functions on array-likes (float32 and float64).

- reconstruction and sparsity: :func:`r2_score`, :func:`fvu`, :func:`l0`,
  :func:`dead_fraction`;
- coherence of the dictionary: :func:`babel_score` (global), and at inference
  :func:`babel_selected` with its baseline :func:`babel_random_subsets`;
- how latents fire together: :func:`modality_score`, :func:`bridge_score`,
  :func:`effective_rank`.

Scorers for model selection are in :mod:`skmpsae.scorers`; the structure
errors of the synthetic hierarchy in :func:`skmpsae.datasets.hierarchy_recovery`.
"""

from ._coactivation import bridge_score, effective_rank, modality_score
from ._coherence import babel_random_subsets, babel_score, babel_selected
from ._reconstruction import dead_fraction, fvu, l0, r2_score

__all__ = [
    "babel_random_subsets",
    "babel_score",
    "babel_selected",
    "bridge_score",
    "dead_fraction",
    "effective_rank",
    "fvu",
    "l0",
    "modality_score",
    "r2_score",
]
