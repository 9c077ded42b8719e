"""Metrics of SAEs: plain functions on array-likes (float32 and float64).

- reconstruction and sparsity: :func:`r2_score`, :func:`fvu`, :func:`l0`,
  :func:`dead_fraction`;
- coherence of the dictionary: :func:`babel_score` (global), its profile
  :func:`babel_curve` (every ``p``), :func:`babel_per_atom` and
  :func:`near_duplicate_count`, and at inference :func:`babel_selected` with
  its baseline :func:`babel_random_subsets`;
- how latents fire together: :func:`modality_score` and its summary
  :func:`cross_modal_share`, :func:`bridge_score`, :func:`effective_rank`;
- structure of the synthetic concept hierarchy
  (:func:`skmpsae.datasets.make_hierarchical_concepts`): :func:`hierarchy_recovery`.

Scorers for model selection are in :mod:`skmpsae.scorers`.
"""

from ._coactivation import bridge_score, effective_rank, modality_score
from ._coherence import babel_random_subsets, babel_score, babel_selected
from ._coherence_profile import babel_curve, babel_per_atom, near_duplicate_count
from ._cross_modal import cross_modal_share
from ._hierarchy import HierarchyRecovery, hierarchy_recovery
from ._reconstruction import dead_fraction, fvu, l0, r2_score

__all__ = [
    "HierarchyRecovery",
    "babel_curve",
    "babel_per_atom",
    "babel_random_subsets",
    "babel_score",
    "babel_selected",
    "bridge_score",
    "cross_modal_share",
    "dead_fraction",
    "effective_rank",
    "fvu",
    "hierarchy_recovery",
    "l0",
    "modality_score",
    "near_duplicate_count",
    "r2_score",
]
