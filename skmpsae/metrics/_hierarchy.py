"""How well a dictionary keeps the concept tree of the synthetic hierarchy (arXiv 2506.03093)."""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

from .._concept_tree import ConceptTree, level_groups
from .._validation import check_atoms

__all__ = ["HierarchyRecovery", "hierarchy_recovery"]


class HierarchyRecovery(NamedTuple):
    """Output of :func:`hierarchy_recovery`: how well a dictionary keeps the concept tree.

    Parameters
    ----------
    flat_error : float
        Mean squared cosine error over pairs of concepts of the same level
        group.
    hierarchical_error : float
        Mean squared cosine error over (parent, child) pairs.
    matched_cosine : ndarray of shape (n_concepts,)
        Absolute cosine between each true direction and its matched atom.
    assignment : ndarray of shape (n_concepts,)
        Index of the atom matched to each concept.
    learned_cosine : ndarray of shape (n_concepts, n_concepts)
        Cosines among the matched atoms, in concept order.

    Examples
    --------
    >>> from skmpsae.datasets import make_hierarchical_concepts
    >>> from skmpsae.metrics import hierarchy_recovery
    >>> data = make_hierarchical_concepts(100, random_state=0)
    >>> result = hierarchy_recovery(data.directions, data.directions, data.tree)
    >>> result.flat_error, result.hierarchical_error  # the truth recovers itself
    (0.0, 0.0)
    """

    flat_error: float
    hierarchical_error: float
    matched_cosine: np.ndarray
    assignment: np.ndarray
    learned_cosine: np.ndarray


def _as_tree(tree, n_concepts):
    if isinstance(tree, Mapping):
        tree = ConceptTree(**{name: tree[name] for name in ConceptTree._fields})
    parents, standalone = np.asarray(tree.parents, int), np.asarray(tree.standalone, int)
    children = tuple(np.asarray(group, int) for group in tree.children)
    if len(children) != parents.size:
        raise ValueError(f"tree has {parents.size} parents but {len(children)} groups of "
                         "children; give one (possibly empty) group per parent.")
    every = np.concatenate([parents, standalone, *children])
    if every.size and (every.min() < 0 or every.max() >= n_concepts):
        raise ValueError(f"tree indices must lie in [0, {n_concepts}) (one per row of "
                         f"directions), got {every.min()} to {every.max()}.")
    return ConceptTree(parents, children, standalone)


def _as_index(pairs):
    """(rows, columns) index of a list of pairs, None when empty."""
    return tuple(np.array(pairs, dtype=int).T) if pairs else None


def _flat_pairs(tree):
    """Pairs ``i < j`` within each level group."""
    return _as_index([(group[i], group[j]) for group in level_groups(tree)
                      for i in range(len(group)) for j in range(i + 1, len(group))])


def _hierarchical_pairs(tree):
    """Each parent with each of its children."""
    return _as_index([(parent, child)
                      for parent, group in zip(tree.parents, tree.children, strict=True)
                      for child in group])


def _mean_at(values, index):
    return float(values[index].mean()) if index is not None else float("nan")


def hierarchy_recovery(dictionary: ArrayLike, directions: ArrayLike,
                       tree: ConceptTree | Mapping) -> HierarchyRecovery:
    """Match learned atoms to true concept directions and score the recovered structure.

    Each true direction is matched to one distinct atom by the Hungarian
    algorithm (``scipy.optimize.linear_sum_assignment``) maximising the sum
    of ``|cos|``; a matched atom whose cosine is negative is flipped. With
    ``S`` the cosines among the true directions and ``L`` those among their
    matched atoms (both ``n_concepts x n_concepts``)::

        flat_error         = mean over flat pairs of (L_ij - S_ij)^2
        hierarchical_error = mean over (parent, child) pairs of (L_ij - S_ij)^2

    Flat pairs are the pairs ``i < j`` within a level group: two top-level
    concepts (parents and standalone concepts), or two siblings. Hierarchical
    pairs are each parent with each of its children. A flat error means
    interference within a level is lost or distorted (the paper finds
    Matryoshka SAEs push siblings apart); a hierarchical error means children
    are no longer orthogonal to their parent (feature absorption, as in ReLU
    and BatchTopK SAEs). The paper finds MP-SAE keeps both low.

    Parameters
    ----------
    dictionary : array-like of shape (n_atoms, n_features) or fitted SAE
        Learned atoms as rows (an estimator's ``components_``), with
        ``n_atoms >= n_concepts``; rows are scaled to unit norm.
    directions : array-like of shape (n_concepts, n_features)
        True directions, as returned by
        :func:`~skmpsae.datasets.make_hierarchical_concepts`.
    tree : ~skmpsae.datasets.ConceptTree or mapping
        The tree of concepts, or a mapping with keys ``"parents"``,
        ``"children"`` (one sequence per parent) and ``"standalone"``.

    Returns
    -------
    result : HierarchyRecovery
        Named tuple ``(flat_error, hierarchical_error, matched_cosine,
        assignment, learned_cosine)``; an error is NaN when the tree has no
        pair of its kind.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.datasets import make_hierarchical_concepts
    >>> from skmpsae.metrics import hierarchy_recovery
    >>> _, _, directions, tree = make_hierarchical_concepts(10, random_state=0)
    >>> perfect = hierarchy_recovery(directions[::-1], directions, tree)  # order is irrelevant
    >>> round(perfect.flat_error, 12), round(perfect.hierarchical_error, 12)
    (0.0, 0.0)
    >>> perfect.assignment[:4]
    array([19, 18, 17, 16])
    >>> absorbed = directions.copy()
    >>> absorbed[1] = directions[0] + directions[1]  # a child atom absorbs its parent
    >>> result = hierarchy_recovery(absorbed, directions, tree)
    >>> bool(result.hierarchical_error > 0.01), float(result.matched_cosine[1].round(3))
    (True, 0.707)
    """
    D = check_atoms(dictionary).astype(np.float64)
    T = check_atoms(directions, name="directions").astype(np.float64)
    if D.shape[1] != T.shape[1]:
        raise ValueError(f"dictionary has {D.shape[1]} features but directions has "
                         f"{T.shape[1]}; both must live in the same space.")
    if D.shape[0] < T.shape[0]:
        raise ValueError(f"dictionary has {D.shape[0]} atoms, fewer than the {T.shape[0]} "
                         "true directions; each direction needs its own atom.")
    tree = _as_tree(tree, T.shape[0])
    cosine = T @ D.T  # (n_concepts, n_atoms)
    concepts, atoms = linear_sum_assignment(np.abs(cosine), maximize=True)
    signs = np.where(cosine[concepts, atoms] < 0, -1.0, 1.0)
    matched = D[atoms] * signs[:, None]
    squared = (matched @ matched.T - T @ T.T) ** 2
    return HierarchyRecovery(
        flat_error=_mean_at(squared, _flat_pairs(tree)),
        hierarchical_error=_mean_at(squared, _hierarchical_pairs(tree)),
        matched_cosine=np.abs(cosine[concepts, atoms]),
        assignment=atoms,
        learned_cosine=matched @ matched.T,
    )
