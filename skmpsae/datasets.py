"""Data sets for SAEs: real data available offline, and the synthetic concept hierarchy.

The metric of the hierarchy, ``hierarchy_recovery`` (with its result
``HierarchyRecovery``), moved to :mod:`skmpsae.metrics`; it stays importable
from here so that existing code keeps working.
"""

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from ._compat import Interval, validate_params
from ._concept_tree import ConceptTree, level_groups
from ._photos import load_photo_crops, load_photo_embeddings
from ._sentences import load_docstring_sentences, load_sentence_embeddings
from .metrics import HierarchyRecovery, hierarchy_recovery  # noqa: F401 (moved; kept importable)

__all__ = [
    "ConceptTree",
    "HierarchicalConcepts",
    "load_docstring_sentences",
    "load_image_patches",
    "load_photo_crops",
    "load_photo_embeddings",
    "load_sentence_embeddings",
    "make_hierarchical_concepts",
]


def load_image_patches(patch_size: int = 8, n_patches: int = 20000, *, remove_mean: bool = True,
                       random_state: "int | np.random.RandomState | None" = 0) -> np.ndarray:
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

    from ._memory import check_fits_in_memory

    # The patches of each image, then their concatenation (float32).
    check_fits_in_memory(2 * 4 * n_patches * patch_size**2,
                         f"n_patches={n_patches} patches of patch_size={patch_size}",
                         "choose a smaller n_patches or patch_size")
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


# ------------------------------------------------------- synthetic hierarchy
class HierarchicalConcepts(NamedTuple):
    """Output of :func:`make_hierarchical_concepts`: samples with their ground truth.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Samples, ``activations @ directions`` plus any noise.
    activations : ndarray of shape (n_samples, n_concepts)
        True activation of each concept in each sample.
    directions : ndarray of shape (n_concepts, n_features)
        Unit-norm direction of each concept.
    tree : ConceptTree
        Which concepts are parents, children (per parent) and standalone.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.datasets import make_hierarchical_concepts
    >>> data = make_hierarchical_concepts(100, random_state=0)
    >>> data.X.shape, data.activations.shape, data.directions.shape
    ((100, 20), (100, 20), (20, 20))
    >>> bool(np.allclose(data.activations @ data.directions, data.X, atol=1e-5))
    True
    """

    X: np.ndarray
    activations: np.ndarray
    directions: np.ndarray
    tree: ConceptTree


def _layout(n_parents, n_children, n_standalone):
    parents = np.arange(n_parents) * (n_children + 1)
    children = tuple(parent + 1 + np.arange(n_children) for parent in parents)
    standalone = n_parents * (n_children + 1) + np.arange(n_standalone)
    return ConceptTree(parents, children, standalone)


def _equicorrelated(Q, epsilon):
    """Unit rows mixing orthonormal rows ``Q`` so that every pair has cosine ``epsilon``.

    Multiplies by the square root ``a I + b 11^T`` of the target Gram matrix
    ``(1 - epsilon) I + epsilon 11^T``; row ``i`` is ``(a + b) q_i + b sum_{j != i} q_j``.
    """
    m = Q.shape[0]
    a = np.sqrt(1.0 - epsilon)
    b = (np.sqrt(1.0 + (m - 1) * epsilon) - a) / m
    return a * Q + b * Q.sum(axis=0)


def _directions(tree, n_features, epsilon, rng):
    n_concepts = len(tree.parents) * (1 + len(tree.children[0])) + len(tree.standalone)
    basis = np.linalg.qr(rng.standard_normal((n_features, n_concepts)))[0].T  # orthonormal rows
    directions = basis.copy()
    for group in level_groups(tree):
        directions[group] = _equicorrelated(basis[group], epsilon)
    return directions


def _categorical(probability, count, n, rng):
    """``n`` draws among ``count`` options of ``probability`` each, or ``count`` (none)."""
    weights = np.append(np.full(count, probability), max(0.0, 1.0 - count * probability))
    return rng.choice(count + 1, size=n, p=weights / weights.sum())


def _activations(tree, n_samples, probabilities, magnitude, magnitude_std, rng):
    p_parent, p_child, p_standalone = probabilities
    n_parents, n_standalone = len(tree.parents), len(tree.standalone)
    top_concepts = np.concatenate([tree.parents, tree.standalone])
    weights = np.append(np.full(n_parents, p_parent), np.full(n_standalone, p_standalone))
    weights = np.append(weights, max(0.0, 1.0 - weights.sum()))
    top = rng.choice(weights.size, size=n_samples, p=weights / weights.sum())
    active = np.zeros((n_samples, top_concepts.size + n_parents * len(tree.children[0])), bool)
    rows = np.flatnonzero(top < top_concepts.size)
    active[rows, top_concepts[top[rows]]] = True
    rows = np.flatnonzero(top < n_parents)
    child = _categorical(p_child, len(tree.children[0]), rows.size, rng)
    keep = child < len(tree.children[0])
    active[rows[keep], np.stack(tree.children)[top[rows[keep]], child[keep]]] = True
    # The floor keeps an active concept active (the normal law reaches 0 once in ~1e9 at 6 sd).
    scale = np.maximum(rng.normal(magnitude, magnitude_std, active.shape), 0.01 * magnitude)
    return active * scale


def _check_probabilities(n_parents, n_children, n_standalone, probabilities):
    p_parent, p_child, p_standalone = probabilities
    top = n_parents * p_parent + n_standalone * p_standalone
    # 1e-9 forgives rounding: the paper's 3 * 0.2 + 8 * 0.05 is 1.0000000000000002.
    if top > 1.0 + 1e-9:
        raise ValueError(
            f"n_parents * parent_probability + n_standalone * standalone_probability = {top:g} "
            "exceeds 1; one top-level concept at most is active per sample: lower them."
        )
    if n_children * p_child > 1.0 + 1e-9:
        raise ValueError(
            f"n_children * child_probability = {n_children * p_child:g} exceeds 1; one child "
            "at most is active per parent: lower child_probability."
        )


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_parents": [Interval(Integral, 1, None, closed="left")],
        "n_children": [Interval(Integral, 1, None, closed="left")],
        "n_standalone": [Interval(Integral, 0, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left"), None],
        "parent_probability": [Interval(Real, 0, 1, closed="both")],
        "child_probability": [Interval(Real, 0, 1, closed="both")],
        "standalone_probability": [Interval(Real, 0, 1, closed="both")],
        "epsilon": [Interval(Real, 0, 1, closed="left")],
        "magnitude": [Interval(Real, 0, None, closed="neither")],
        "magnitude_std": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "dtype": [type, str, np.dtype],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_hierarchical_concepts(n_samples: int = 10000, *, n_parents: int = 3,
                               n_children: int = 3, n_standalone: int = 8,
                               n_features: int | None = None, parent_probability: float = 0.2,
                               child_probability: float = 0.2,
                               standalone_probability: float = 0.05, epsilon: float = 0.1,
                               magnitude: float = 1.5, magnitude_std: float = 0.25,
                               noise: float = 0.0, dtype: "type | np.dtype" = np.float32,
                               random_state: "int | np.random.RandomState | None" = None,
                               ) -> HierarchicalConcepts:
    """Draw samples from a two-level tree of concepts, the synthetic data of the MP-SAE paper.

    Each sample activates at most one top-level concept: parent ``p`` with
    probability ``parent_probability`` each, standalone concept ``s`` with
    ``standalone_probability`` each, nothing with the remaining probability.
    When a parent is active, at most one of its children is: each with
    ``child_probability``, none with the rest (the paper's "none" child).
    Children are thus mutually exclusive and never active without their
    parent. An active concept's activation is ``N(magnitude, magnitude_std)``
    (floored at ``0.01 * magnitude``), and::

        X = activations @ directions + noise * N(0, I)

    Directions start as a random orthonormal basis ``q_1 .. q_n`` and are
    mixed within each level group: the top level (parents and standalone
    concepts together) and each set of siblings. In a group of ``m``
    concepts, ``d_i = a q_i + b sum_{j in group} q_j`` with ``a = sqrt(1 - epsilon)``
    and ``b = (sqrt(1 + (m - 1) epsilon) - a) / m``: unit norm, cosine exactly
    ``epsilon`` between any two concepts of the same group, and 0 between
    groups, so every parent is orthogonal to its children (conditional
    orthogonality). This is the paper's mixing ``(1 - e) q_i + e / (m - 1)
    sum_{j != i} q_j``, renormalised, with ``e`` solved for the cosine (its
    notebook's ``e = 0.3`` for 11 top-level concepts and ``0.0895`` for 3
    siblings give 0.1).

    The defaults are the paper's tree: 3 parents (0.2 each) with 3 children
    (0.2 each, none 0.4) and 8 standalone concepts (0.05 each), 20 concepts
    in 20 dimensions, magnitude ``1.5 + 0.25 N(0, 1)``, mean L0 of 1.36.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of samples.
    n_parents : int, default=3
        Parent concepts.
    n_children : int, default=3
        Children of each parent.
    n_standalone : int, default=8
        Top-level concepts without children.
    n_features : int, default=None
        Dimension of ``X``, at least the number of concepts
        ``n_parents * (1 + n_children) + n_standalone`` (its value when None).
    parent_probability : float, default=0.2
        Probability of each parent.
    child_probability : float, default=0.2
        Probability of each child given its parent.
    standalone_probability : float, default=0.05
        Probability of each standalone concept.
    epsilon : float, default=0.1
        Cosine between two concepts of the same level group, in [0, 1).
    magnitude : float, default=1.5
        Mean activation of an active concept.
    magnitude_std : float, default=0.25
        Its standard deviation.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to each feature.
    dtype : {np.float32, np.float64}, default=np.float32
        Dtype of the arrays returned.
    random_state : int, RandomState instance or None, default=None
        Seeds the directions and the samples.

    Returns
    -------
    data : HierarchicalConcepts
        Named tuple ``(X, activations, directions, tree)``: samples (n_samples,
        n_features), true activations (n_samples, n_concepts), unit-norm
        directions (n_concepts, n_features), and the :class:`ConceptTree`
        (indices of the parents, the children of each parent and the
        standalone concepts; depth-first numbering).

    See Also
    --------
    skmpsae.metrics.hierarchy_recovery : Structure errors of a learned dictionary on this data.

    References
    ----------
    V. Costa, T. Fel, E. S. Lubana, B. Tolooshams, D. Ba, "From flat to
    hierarchical: extracting sparse representations with matching pursuit",
    NeurIPS 2025, arXiv 2506.03093 (synthetic experiment; tree of
    github.com/mpsae/MP-SAE).

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.datasets import make_hierarchical_concepts
    >>> X, activations, directions, tree = make_hierarchical_concepts(1000, random_state=0)
    >>> X.shape, activations.shape, directions.shape
    ((1000, 20), (1000, 20), (20, 20))
    >>> tree.parents, tree.children[0], tree.standalone[:3]
    (array([0, 4, 8]), array([1, 2, 3]), array([12, 13, 14]))
    >>> cosines = directions @ directions.T
    >>> # siblings, two parents, a parent and its child
    >>> print(np.round([cosines[1, 2], cosines[0, 4], cosines[0, 1]], 3))
    [0.1 0.1 0. ]
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype}.")
    probabilities = (parent_probability, child_probability, standalone_probability)
    _check_probabilities(n_parents, n_children, n_standalone, probabilities)
    tree = _layout(n_parents, n_children, n_standalone)
    n_concepts = n_parents * (1 + n_children) + n_standalone
    n_features = n_concepts if n_features is None else n_features
    if n_features < n_concepts:
        raise ValueError(f"n_features={n_features} is below the number of concepts "
                         f"({n_concepts}); their orthonormal basis needs n_features >= "
                         f"{n_concepts} (or None).")
    from ._memory import check_fits_in_memory

    # float64 activations and samples, then their dtype copies; an orthonormal basis.
    check_fits_in_memory(
        n_samples * (n_concepts + n_features) * (8 + dtype.itemsize) + 8 * n_features**2,
        f"n_samples={n_samples} samples of n_features={n_features} features and "
        f"{n_concepts} concepts", "choose a smaller n_samples or n_features")
    rng = check_random_state(random_state)
    directions = _directions(tree, n_features, epsilon, rng)
    activations = _activations(tree, n_samples, probabilities, magnitude, magnitude_std, rng)
    X = activations @ directions
    if noise:
        X += noise * rng.standard_normal(X.shape)
    return HierarchicalConcepts(X.astype(dtype), activations.astype(dtype),
                                directions.astype(dtype), tree)
