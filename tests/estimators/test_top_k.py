"""The row-wise top-k kernel against ``torch.topk``."""

import numpy as np
import pytest
import torch

from skmpsae._top_k import row_top_k


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,k", [((64, 3072), 16), ((33, 520), 32), ((5, 40), 2),
                                     ((7, 17), 1), ((2, 1000), 60), ((4, 100), 80),
                                     ((64, 3000), 392)])
def test_same_entries_as_torch_topk(shape, k, dtype):
    pre = torch.from_numpy(np.random.default_rng(0).standard_normal(shape)).to(dtype)
    idx = row_top_k(pre, k)
    assert idx.shape == (shape[0], k) and idx.dtype == torch.int64
    expected = pre.topk(k, dim=1).indices
    assert torch.equal(idx.sort(dim=1).values, expected.sort(dim=1).values)


def test_ties_keep_k_distinct_entries_of_the_largest_values():
    rng = np.random.default_rng(1)
    pre = torch.tensor(np.round(rng.standard_normal((50, 256))), dtype=torch.float32)
    pre[0] = 0
    idx = row_top_k(pre, 8)
    assert all(len(set(row.tolist())) == 8 for row in idx)
    assert torch.equal(pre.gather(1, idx).sort(dim=1).values,
                       pre.topk(8, dim=1).values.sort(dim=1).values)


def test_infinite_values():
    pre = torch.full((3, 64), -np.inf)
    pre[0, 5] = np.inf
    idx = row_top_k(pre, 2)
    assert 5 in idx[0].tolist() and all(len(set(row.tolist())) == 2 for row in idx)


def test_several_threads_give_the_same_entries(monkeypatch):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    monkeypatch.setattr("skmpsae._top_k._PARALLEL_FROM", 0)
    pre = torch.randn(301, 1024, generator=torch.Generator().manual_seed(0))
    previous = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(2)
    torch.set_num_threads(2)
    try:
        idx = row_top_k(pre, 16)
    finally:
        numba.set_num_threads(previous[0])
        torch.set_num_threads(previous[1])
    assert torch.equal(idx.sort(dim=1).values, pre.topk(16, dim=1).indices.sort(dim=1).values)


def test_torch_thread_count_is_kept():
    previous = torch.get_num_threads()
    pre = torch.randn(1024, 2048, generator=torch.Generator().manual_seed(0))
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row_top_k(pre, 16)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("threads", [2, 3])
def test_large_k_on_several_threads_gives_the_serial_entries(monkeypatch, threads):
    # k > 64: NumPy's introselect, its rows split between threads from
    # _PARALLEL_FROM; the blocks of rows give back the one-thread indices.
    pre = torch.randn(301, 700, generator=torch.Generator().manual_seed(0))
    serial = row_top_k(pre, 100)
    monkeypatch.setattr("skmpsae._top_k._PARALLEL_FROM", 0)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        idx = row_top_k(pre, 100)
    finally:
        torch.set_num_threads(previous)
    assert idx.shape == (301, 100) and idx.is_contiguous()
    assert torch.equal(idx, serial)
    assert torch.equal(idx.sort(dim=1).values, pre.topk(100, dim=1).indices.sort(dim=1).values)
