"""Sizes that cannot fit in memory fail up front, naming the parameter and the bytes.

Each case must raise ``InsufficientMemoryError`` at once (no allocation, no
work): huge ``n_steps`` in ``mp_encode`` and ``transform``, huge
``n_components``/``expansion_factor``/``batch_size`` in every ``fit``,
huge dataset sizes. Cases near the limit patch the machine's memory so they
run the same anywhere.
"""

import re

import numpy as np
import pytest

import skmpsae
from skmpsae import _memory, mp_encode
from skmpsae.datasets import load_image_patches, make_hierarchical_concepts
from skmpsae.exceptions import InsufficientMemoryError

RNG = np.random.default_rng(0)
X = RNG.random((60, 8))
D = RNG.standard_normal((16, 8))
D /= np.linalg.norm(D, axis=1, keepdims=True)
ESTIMATORS = ["MatchingPursuitSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "ReLUSAE"]
FAST = dict(n_components=16, k=2, max_iter=1, batch_size=32, random_state=0)


def _refused(excinfo, *words):
    message = str(excinfo.value)
    assert isinstance(excinfo.value, MemoryError) and isinstance(excinfo.value, ValueError)
    assert re.search(r"needs at least [\d,]+ bytes", message), message
    for word in words:
        assert word in message, message


@pytest.fixture
def small_machine(monkeypatch):
    """A machine of 64 MiB, so that modest sizes are over the limit."""
    monkeypatch.setattr(_memory, "physical_memory", lambda: 64 << 20)


@pytest.mark.parametrize("sparse_output", [False, True])
@pytest.mark.parametrize("n_steps", [10**9, 10**12])
def test_mp_encode_huge_n_steps_is_refused_at_once(n_steps, sparse_output):
    with pytest.raises(InsufficientMemoryError) as excinfo:
        mp_encode(X, D, n_steps=n_steps, sparse_output=sparse_output)
    _refused(excinfo, f"n_steps={n_steps}", "60 samples")


def test_mp_encode_counts_every_sample(small_machine):
    # 16 bytes a step fit for one row; for 60_000 rows they do not.
    Xl = np.tile(X, (1000, 1))
    assert mp_encode(X[:1], D, n_steps=10_000).shape == (1, 16)
    with pytest.raises(InsufficientMemoryError) as excinfo:
        mp_encode(Xl, D, n_steps=10_000)
    _refused(excinfo, "n_steps=10000", "60000 samples")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_transform_huge_n_steps_is_refused(name, small_machine):
    sae = getattr(skmpsae, name)(**FAST).fit(X)
    n_steps = 10**5 if name == "MatchingPursuitSAE" else 16
    Xl = np.tile(X, (1000, 1))
    if name == "MatchingPursuitSAE":
        with pytest.raises(InsufficientMemoryError) as excinfo:
            sae.transform(Xl, n_steps=n_steps)
        _refused(excinfo, f"n_steps={n_steps}")
    # Dense codes of 2 million rows over 16 latents are 256 MB in float64.
    Xh = np.zeros((2_000_000, 8), dtype=np.float64)
    with pytest.raises(InsufficientMemoryError) as excinfo:
        sae.transform(Xh)
    _refused(excinfo, "2000000 samples")


def test_streamed_transform_checks_each_chunk(small_machine):
    sae = skmpsae.MatchingPursuitSAE(**FAST).fit(X)
    chunks = [X, np.tile(X, (1000, 1))]
    with pytest.raises(InsufficientMemoryError) as excinfo:
        sae.transform(chunks, n_steps=10**4)
    _refused(excinfo, "n_steps=10000", "60000 samples")


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("params", [dict(n_components=10**9), dict(n_components=None,
                                                                   expansion_factor=1e9)])
def test_fit_huge_n_components_is_refused(name, params):
    est = getattr(skmpsae, name)(**{**FAST, **params})
    with pytest.raises(InsufficientMemoryError) as excinfo:
        est.fit(X)
    _refused(excinfo, "n_components=")
    assert not hasattr(est, "components_")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_batch_that_cannot_fit_is_refused(name, small_machine):
    Xl = RNG.random((4096, 8)).astype(np.float32)
    params = {**FAST, "n_components": 2048, "batch_size": 4096}
    with pytest.raises(InsufficientMemoryError) as excinfo:
        getattr(skmpsae, name)(**params).fit(Xl)
    _refused(excinfo, "batch_size=4096", "n_components=2048")
    # The same latents in small batches fit.
    getattr(skmpsae, name)(**{**params, "batch_size": 64}).fit(Xl[:256])


def test_streamed_fit_batch_is_bounded_by_the_stream():
    # A huge batch_size over a stream of known length holds the stream's rows only.
    sae = skmpsae.TopKSAE(**{**FAST, "batch_size": 10**12}).fit([X[:30], X[30:]])
    assert sae.components_.shape == (16, 8)


def test_datasets_refuse_sizes_that_cannot_fit():
    with pytest.raises(InsufficientMemoryError) as excinfo:
        make_hierarchical_concepts(10**12)
    _refused(excinfo, "n_samples=1000000000000")
    with pytest.raises(InsufficientMemoryError) as excinfo:
        load_image_patches(n_patches=10**12)
    _refused(excinfo, "n_patches=1000000000000")


def test_sizes_within_memory_still_work():
    Z = mp_encode(X, D, n_steps=40)  # n_steps > n_components: atoms are picked again
    assert Z.shape == (60, 16)
    assert np.isfinite(Z).all()
