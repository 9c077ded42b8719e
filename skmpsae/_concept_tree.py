"""The tree of concepts of the synthetic hierarchy, shared by its data set and its metric.

``skmpsae.datasets`` builds data on a ``ConceptTree`` and
``skmpsae.metrics.hierarchy_recovery`` scores a dictionary against one; both
import it from here, so neither imports the other's module.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["ConceptTree", "level_groups"]

class ConceptTree(NamedTuple):
    """Indices of the concepts of :func:`~skmpsae.datasets.make_hierarchical_concepts`, by role.

    Concepts are numbered depth first: each parent, then its children, then
    the next parent; the standalone concepts come last.

    Parameters
    ----------
    parents : ndarray of shape (n_parents,)
        Index of each parent concept.
    children : tuple of ndarray
        Indices of the children of each parent: one array of shape
        (n_children,) per parent.
    standalone : ndarray of shape (n_standalone,)
        Index of each standalone concept.

    Examples
    --------
    >>> from skmpsae.datasets import make_hierarchical_concepts
    >>> tree = make_hierarchical_concepts(10, random_state=0).tree
    >>> tree.parents
    array([0, 4, 8])
    >>> tree.children[1]  # the children of parent 4
    array([5, 6, 7])
    >>> tree.standalone
    array([12, 13, 14, 15, 16, 17, 18, 19])
    """

    parents: np.ndarray
    children: tuple
    standalone: np.ndarray



def level_groups(tree):
    """Groups of concepts that share a level: the top level, and each set of siblings."""
    return [np.concatenate([tree.parents, tree.standalone]), *tree.children]
