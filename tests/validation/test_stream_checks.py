"""Streamed X (iterables of chunks, memory-mapped arrays) gets the in-memory checks per chunk.

A NaN, an inf or a value whose square overflows the dtype (1e300 in float64,
1e19 in float32) in chunk 7 fails in fit and transform with an error naming
the chunk and the row, as in-memory arrays fail naming X.
"""

import numpy as np
import pytest

from skmpsae import MatchingPursuitSAE, TopKSAE

RNG = np.random.default_rng(0)
FAST = dict(n_components=16, k=2, max_iter=1, batch_size=32, random_state=0)
BAD = {"nan": (np.float64, np.nan, "NaN or infinity"),
       "inf": (np.float64, -np.inf, "NaN or infinity"),
       "1e300": (np.float64, 1e300, "magnitude 1e\\+300"),
       "float32-1e19": (np.float32, 1e19, "magnitude 1e\\+19")}


def _chunks(dtype, bad):
    chunks = [RNG.random((20, 8)).astype(dtype) for _ in range(10)]
    chunks[7][3, 2] = bad
    return chunks


@pytest.mark.parametrize("estimator", [MatchingPursuitSAE, TopKSAE])
@pytest.mark.parametrize("case", list(BAD))
def test_fit_on_chunks_checks_each_chunk(estimator, case):
    dtype, bad, words = BAD[case]
    for source in (_chunks(dtype, bad), iter(_chunks(dtype, bad))):
        est = estimator(**FAST)
        with pytest.raises(ValueError, match=f"X: chunk 7, row 3 .*{words}"):
            est.fit(source)
        assert not hasattr(est, "components_")


@pytest.mark.parametrize("case", list(BAD))
def test_transform_of_chunks_checks_each_chunk(case):
    dtype, bad, words = BAD[case]
    chunks = _chunks(dtype, bad)
    sae = MatchingPursuitSAE(**FAST).fit(np.concatenate(chunks[:5]))
    with pytest.raises(ValueError, match=rf"X: chunk 7, row 3 \(row 143 of X\).*{words}"):
        sae.transform(chunks)


@pytest.mark.parametrize("case", list(BAD))
def test_memory_mapped_x_is_checked_block_by_block(case, tmp_path):
    dtype, bad, words = BAD[case]
    X = np.concatenate(_chunks(dtype, bad))
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(ValueError, match=f"X: row 143 .*{words}"):
        TopKSAE(**FAST).fit(mapped)
    sae = TopKSAE(**FAST).fit(X[:100])
    with pytest.raises(ValueError, match=f"row 143 of X.*{words}"):
        sae.transform(mapped)


def test_clean_streams_are_accepted_as_before():
    chunks = [RNG.random((20, 8)) for _ in range(5)]
    sae = MatchingPursuitSAE(**FAST).fit(chunks)
    np.testing.assert_array_equal(sae.transform(chunks), sae.transform(np.concatenate(chunks)))
