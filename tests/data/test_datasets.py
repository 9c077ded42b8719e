"""The synthetic concept hierarchy, the recovery of its structure, and the image patches."""

import itertools

import numpy as np
import pytest

from skmpsae.datasets import (
    ConceptTree,
    hierarchy_recovery,
    load_image_patches,
    make_hierarchical_concepts,
)


@pytest.fixture(scope="module")
def paper_tree():
    return make_hierarchical_concepts(20000, random_state=0)


def test_layout_and_types(paper_tree):
    X, activations, directions, tree = paper_tree
    assert X.shape == (20000, 20) and activations.shape == (20000, 20)
    assert directions.shape == (20, 20)
    assert X.dtype == activations.dtype == directions.dtype == np.float32
    np.testing.assert_array_equal(tree.parents, [0, 4, 8])
    np.testing.assert_array_equal(np.stack(tree.children), [[1, 2, 3], [5, 6, 7], [9, 10, 11]])
    np.testing.assert_array_equal(tree.standalone, np.arange(12, 20))
    np.testing.assert_allclose(X, activations @ directions, atol=1e-5)  # noise=0


def test_directions_are_conditionally_orthogonal(paper_tree):
    directions, tree = paper_tree.directions.astype(np.float64), paper_tree.tree
    cos = directions @ directions.T
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-6)
    top = np.concatenate([tree.parents, tree.standalone])
    expected = np.zeros((20, 20))
    for group in [top, *tree.children]:
        expected[np.ix_(group, group)] = 0.1
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(cos, expected, atol=1e-6)


def test_sampling_follows_the_tree(paper_tree):
    active = paper_tree.activations != 0
    tree = paper_tree.tree
    top = np.concatenate([tree.parents, tree.standalone])
    assert active[:, top].sum(axis=1).max() == 1  # one top-level concept at most
    for parent, children in zip(tree.parents, tree.children, strict=True):
        assert not (active[:, children].any(axis=1) & ~active[:, parent]).any()
        assert active[:, children].sum(axis=1).max() == 1  # mutually exclusive
    freq = active.mean(axis=0)
    np.testing.assert_allclose(freq[tree.parents], 0.2, atol=0.015)
    np.testing.assert_allclose(freq[tree.standalone], 0.05, atol=0.01)
    np.testing.assert_allclose(freq[np.concatenate(tree.children)], 0.2 * 0.2, atol=0.01)
    assert active.sum(axis=1).mean() == pytest.approx(1.36, abs=0.03)  # the paper's L0
    magnitudes = paper_tree.activations[active]
    assert magnitudes.min() > 0
    assert magnitudes.mean() == pytest.approx(1.5, abs=0.01)
    assert magnitudes.std() == pytest.approx(0.25, abs=0.01)


def test_options_and_reproducibility():
    a = make_hierarchical_concepts(500, n_parents=2, n_children=4, n_standalone=0,
                                   n_features=32, parent_probability=0.5,
                                   child_probability=0.25, epsilon=0.3, noise=0.1,
                                   dtype=np.float64, random_state=3)
    b = make_hierarchical_concepts(500, n_parents=2, n_children=4, n_standalone=0,
                                   n_features=32, parent_probability=0.5,
                                   child_probability=0.25, epsilon=0.3, noise=0.1,
                                   dtype=np.float64, random_state=3)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X.dtype == np.float64 and a.X.shape == (500, 32) and a.directions.shape == (10, 32)
    cos = a.directions @ a.directions.T
    assert cos[1, 2] == pytest.approx(0.3) and cos[0, 5] == pytest.approx(0.3)
    assert cos[0, 1] == pytest.approx(0.0, abs=1e-12)
    residual = a.X - a.activations @ a.directions
    assert residual.std() == pytest.approx(0.1, rel=0.05)
    # Every sample has a parent: probabilities 2 * 0.5 sum to one; no child for none.
    assert (a.activations[:, a.tree.parents] != 0).sum(axis=1).min() == 1


def test_bad_parameters():
    with pytest.raises(ValueError, match="exceeds 1; one top-level concept"):
        make_hierarchical_concepts(10, parent_probability=0.3)
    with pytest.raises(ValueError, match="n_children \\* child_probability = 1.2"):
        make_hierarchical_concepts(10, child_probability=0.4)
    with pytest.raises(ValueError, match="n_features=10 is below the number of concepts"):
        make_hierarchical_concepts(10, n_features=10)
    with pytest.raises(ValueError, match="'epsilon' parameter"):
        make_hierarchical_concepts(10, epsilon=1.0)
    with pytest.raises(ValueError, match="'n_parents' parameter.*Got 0"):
        make_hierarchical_concepts(10, n_parents=0)
    with pytest.raises(ValueError, match="dtype must be np.float32 or np.float64"):
        make_hierarchical_concepts(10, dtype=np.int64)
    assert make_hierarchical_concepts(10, dtype=np.dtype("float64")).X.dtype == np.float64


# ------------------------------------------------------------ recovery
def test_recovery_of_the_truth_up_to_order_sign_and_extra_atoms(paper_tree):
    directions = paper_tree.directions
    rng = np.random.default_rng(0)
    order = rng.permutation(30)
    extra = rng.standard_normal((10, 20)) * 0.01 + directions[:10]  # weaker duplicates
    atoms = np.vstack([directions * rng.choice([-1, 1], size=(20, 1)), extra])[order]
    result = hierarchy_recovery(atoms * 3.0, directions, paper_tree.tree)
    assert result.flat_error == pytest.approx(0.0, abs=1e-10)
    assert result.hierarchical_error == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(result.matched_cosine, 1.0, atol=1e-6)
    np.testing.assert_array_equal(order[result.assignment], np.arange(20))
    np.testing.assert_allclose(result.learned_cosine, directions @ directions.T, atol=1e-6)


def test_recovery_hand_computed():
    tree = {"parents": [0], "children": [[1, 2]], "standalone": []}
    truth = np.eye(3)
    absorbed = np.array([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0]])  # child 1 absorbs its parent
    result = hierarchy_recovery(absorbed, truth, tree)
    # Parent-child pairs (0, 1): cos 1/sqrt(2), error 1/2; (0, 2): 0. Siblings (1, 2): 0.
    assert result.hierarchical_error == pytest.approx(0.25)
    assert result.flat_error == pytest.approx(0.0)
    np.testing.assert_allclose(result.matched_cosine, [1.0, np.sqrt(0.5), 1.0])
    pushed = np.array([[1.0, 0, 0], [0, 1.0, -1.0], [0, 0, 1.0]])  # siblings interfere
    result = hierarchy_recovery(pushed, truth, ConceptTree(**tree))
    assert result.flat_error == pytest.approx(0.5) and result.hierarchical_error == 0.0


def test_recovery_matching_is_optimal():
    rng = np.random.default_rng(1)
    truth, atoms = rng.standard_normal((2, 4, 6))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    cos = np.abs(unit(truth) @ unit(atoms).T)
    best = max(itertools.permutations(range(4)), key=lambda perm: cos[range(4), perm].sum())
    tree = {"parents": [0], "children": [[1, 2]], "standalone": [3]}
    np.testing.assert_array_equal(hierarchy_recovery(atoms, truth, tree).assignment, best)


def test_recovery_nan_without_pairs_and_estimator_input(digits):
    tree = {"parents": [0], "children": [[1]], "standalone": []}
    result = hierarchy_recovery(np.eye(2), np.eye(2), tree)
    assert np.isnan(result.flat_error) and result.hierarchical_error == 0.0

    from skmpsae import MatchingPursuitSAE

    data = make_hierarchical_concepts(400, random_state=0)
    sae = MatchingPursuitSAE(n_components=24, k=2, max_iter=2, random_state=0).fit(data.X)
    a = hierarchy_recovery(sae, data.directions, data.tree)
    b = hierarchy_recovery(sae.components_, data.directions, data.tree)
    assert a.flat_error == b.flat_error and a.hierarchical_error == b.hierarchical_error


def test_recovery_bad_input():
    tree = {"parents": [0], "children": [[1, 2]], "standalone": []}
    with pytest.raises(ValueError, match="dictionary has 2 atoms, fewer than the 3"):
        hierarchy_recovery(np.eye(3)[:2], np.eye(3), tree)
    with pytest.raises(ValueError, match="dictionary has 4 features but directions has 3"):
        hierarchy_recovery(np.eye(4), np.eye(3), tree)
    with pytest.raises(ValueError, match=r"tree indices must lie in \[0, 3\)"):
        hierarchy_recovery(np.eye(3), np.eye(3), {**tree, "standalone": [3]})
    with pytest.raises(ValueError, match="one \\(possibly empty\\) group per parent"):
        hierarchy_recovery(np.eye(3), np.eye(3), {**tree, "children": []})


def test_load_image_patches():
    X = load_image_patches(patch_size=4, n_patches=11, random_state=0)
    assert X.shape == (11, 16) and X.dtype == np.float32
    np.testing.assert_allclose(X.mean(axis=1), 0.0, atol=1e-6)


def test_hierarchy_recovery_moved_to_metrics_and_stays_importable():
    import skmpsae.datasets as datasets
    import skmpsae.metrics as metrics

    assert datasets.hierarchy_recovery is metrics.hierarchy_recovery
    assert datasets.HierarchyRecovery is metrics.HierarchyRecovery
    assert "hierarchy_recovery" in metrics.__all__ and "hierarchy_recovery" not in datasets.__all__
