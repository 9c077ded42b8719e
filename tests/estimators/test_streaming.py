"""Out-of-core training (memory-mapped arrays, iterables, DataLoader) and dask inference."""

import os

import numpy as np
import pytest
import torch

from skmpsae import MatchingPursuitSAE, TopKSAE
from skmpsae._training._data import _RowReader

FAST = {"n_components": 64, "k": 4, "max_iter": 2, "batch_size": 128, "random_state": 0}


def _fitted_arrays(est):
    return {name: getattr(est, name + "_") for name in est._array_names}


def _assert_same_fit(a, b):
    for name, value in _fitted_arrays(a).items():
        np.testing.assert_array_equal(value, getattr(b, name + "_"), err_msg=name)
    assert a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize("Estimator", [MatchingPursuitSAE, TopKSAE])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memmap_fit_equals_in_memory_fit(Estimator, dtype, digits, tmp_path):
    X = digits.astype(dtype)
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    streamed = Estimator(**FAST).fit(mm)
    in_memory = Estimator(**FAST).fit(X)
    _assert_same_fit(streamed, in_memory)
    assert streamed.components_.dtype == dtype
    assert streamed.n_features_in_ == 64
    np.testing.assert_array_equal(streamed.transform(X), in_memory.transform(X))


def test_memmap_partial_fit_and_view(digits, tmp_path):
    np.save(tmp_path / "X.npy", digits)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    sae = MatchingPursuitSAE(**FAST).partial_fit(mm[:900]).partial_fit(mm[900:])
    assert sae.n_iter_ == 2
    assert sae.score(digits) > 0.5


def test_memmap_errors(digits, tmp_path):
    bad = digits.copy()
    bad[5, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="X: row 5 contains NaN"):
        MatchingPursuitSAE(**FAST).fit(np.load(tmp_path / "nan.npy", mmap_mode="r"))
    np.save(tmp_path / "half.npy", digits.astype(np.float16))
    with pytest.raises(ValueError, match="float32 or float64, got float16"):
        MatchingPursuitSAE(**FAST).fit(np.load(tmp_path / "half.npy", mmap_mode="r"))
    sae = MatchingPursuitSAE(**FAST).fit(digits)
    np.save(tmp_path / "wide.npy", np.zeros((10, 65), dtype=np.float32))
    with pytest.raises(ValueError, match="65 features.*expecting 64"):
        sae.partial_fit(np.load(tmp_path / "wide.npy", mmap_mode="r"))


def _rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_row_reader_matches_fancy_indexing(digits, tmp_path, mode):
    np.save(tmp_path / "X.npy", digits.astype(np.float64))
    mm = np.load(tmp_path / "X.npy", mmap_mode=mode)
    rows = np.sort(np.random.default_rng(0).choice(800, 300, replace=False))
    # views: an offset, a stride over rows (one read per row), a column slice (fallback)
    for view in (mm, mm[100:], mm[1::2], mm[:, 8:40]):
        np.testing.assert_array_equal(_RowReader(view).rows(rows), view[rows])
        np.testing.assert_array_equal(_RowReader(view).block(5, 9), view[5:9])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_row_reader_keeps_pages_out_of_resident_memory(tmp_path):
    n_bytes = 96 << 20
    np.save(tmp_path / "big.npy", np.ones((n_bytes // 4096, 1024), dtype=np.float32))
    mm = np.load(tmp_path / "big.npy", mmap_mode="r")
    reader = _RowReader(mm)
    before = _rss_bytes()
    for start in range(0, mm.shape[0], 1024):  # 4 MB at a time, every row
        assert reader.block(start, start + 1024).sum() == 1024 * 1024
    assert _rss_bytes() - before < n_bytes // 8
    assert float(mm.sum(dtype=np.float64)) == mm.size  # through the mapping: resident
    assert _rss_bytes() - before > n_bytes // 2
    reader.release()
    assert _rss_bytes() - before < n_bytes // 8


def test_list_of_chunks(digits):
    chunks = np.array_split(digits, 7)
    sae = MatchingPursuitSAE(**FAST).fit(chunks)
    assert sae.n_features_in_ == 64 and sae.n_iter_ == 2
    assert not hasattr(sae, "feature_names_in_")
    assert sae.score(digits) > 0.5
    # Chunks are cut into batch_size rows whatever their sizes: the same
    # batches from differently sized chunks give the same model.
    again = MatchingPursuitSAE(**FAST).fit(np.array_split(digits, 3))
    _assert_same_fit(sae, again)


def test_generator_one_epoch_only(digits):
    def gen():
        yield from np.array_split(digits, 5)

    sae = MatchingPursuitSAE(**{**FAST, "max_iter": 1}).fit(gen())
    assert sae.n_iter_ == 1
    with pytest.raises(ValueError, match="one-shot iterator.*max_iter=2"):
        MatchingPursuitSAE(**FAST).fit(gen())
    sae.partial_fit(gen())
    assert sae.n_iter_ == 2


def test_dataloader(digits):
    data = torch.utils.data.TensorDataset(torch.from_numpy(digits))
    loader = torch.utils.data.DataLoader(data, batch_size=100, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    sae = TopKSAE(**FAST).fit(loader)
    assert sae.components_.dtype == np.float32
    assert sae.score(digits) > 0.3


@pytest.mark.parametrize(("chunks", "match"), [
    ([np.zeros((4, 64)), np.zeros((4, 63))], "chunk 1 has 63 features"),
    ([np.zeros((4, 64)), np.full((4, 64), np.inf)], "chunk 1, row 0 contains NaN or infinity"),
    ([np.zeros((4, 64)), np.zeros(64)], "chunk 1 must be a 2-D numeric array"),
    ([np.zeros((0, 64))], "yielded no samples"),
])
def test_chunk_errors_name_the_chunk(chunks, match):
    with pytest.raises(ValueError, match=match):
        MatchingPursuitSAE(**FAST).fit(chunks)


def test_failed_stream_keeps_previous_fit(digits):
    sae = MatchingPursuitSAE(**FAST).fit(digits)
    before = sae.components_.copy()
    with pytest.raises(ValueError, match="chunk 2"):
        sae.partial_fit([digits[:200], digits[200:400], np.full((10, 64), np.nan)])
    np.testing.assert_array_equal(sae.components_, before)
    assert sae.n_iter_ == 2


def test_dask_transform_blockwise(digits):
    da = pytest.importorskip("dask.array")
    sae = MatchingPursuitSAE(**FAST).fit(digits)
    X = da.from_array(digits, chunks=(400, 32))
    Z = sae.transform(X, n_steps=3)
    assert isinstance(Z, da.Array)
    # BLAS may block rows differently per chunk: equal up to float32 rounding.
    np.testing.assert_allclose(Z.compute(), sae.transform(digits, n_steps=3), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(sae.inverse_transform(Z).compute(),
                               sae.inverse_transform(Z.compute()), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected \\(n_samples, 64\\)"):
        sae.transform(da.zeros((10, 5), chunks=5))


def test_dask_fit_streams_blocks(digits):
    da = pytest.importorskip("dask.array")
    X = da.from_array(digits, chunks=(300, 16))
    sae = MatchingPursuitSAE(**FAST).fit(X)
    # Blocks come in order: the same rows as a list of the same chunks.
    _assert_same_fit(sae, MatchingPursuitSAE(**FAST).fit(np.array_split(digits, 6)))
    assert sae.n_features_in_ == 64
