"""The thread policy of small training steps: one thread, the spare core given back, limits kept."""

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from skmpsae import MatchingPursuitSAE, _threads


def _blas_threads():
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


def test_spare_core_gives_back_the_threads_outside_the_step(monkeypatch):
    monkeypatch.setattr(_threads, "_spare_core", lambda: True)
    outside = _blas_threads()
    with _threads.step_threads(1e6):
        assert _blas_threads() == 1
        with _threads.spare_core_threads(1e9):
            assert _blas_threads() == outside
        with _threads.spare_core_threads(1e6):  # too small a product to pay for the threads
            assert _blas_threads() == 1
        assert _blas_threads() == 1
    assert _blas_threads() == outside


def test_spare_core_keeps_a_busy_machine_and_the_users_limit(monkeypatch):
    monkeypatch.setattr(_threads, "_spare_core", lambda: False)
    with _threads.step_threads(1e6), _threads.spare_core_threads(1e9):
        assert _blas_threads() == 1
    monkeypatch.setattr(_threads, "_spare_core", lambda: True)
    with threadpool_limits(1, user_api="blas"):
        with _threads.step_threads(1e6), _threads.spare_core_threads(1e9):
            assert _blas_threads() == 1  # the user's limit, not the machine's cores
    outside = _blas_threads()
    with threadpool_limits(1, user_api="blas"), _threads.spare_core_threads(1e9):
        assert _blas_threads() == 1  # outside a one-thread step it changes nothing
    assert _blas_threads() == outside


def test_spare_core_reads_the_load_average_until_it_has_measured(monkeypatch):
    monkeypatch.setattr(_threads, "_others_busy", lambda: None)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert _threads._spare_core()
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (2.1, 2.0, 2.0))
    assert not _threads._spare_core()


def test_spare_core_measures_what_other_processes_take(monkeypatch):
    # Two cores; this process takes one. Other processes' busy time over the
    # window decides, not this process's own, and not the lagging load average.
    clock = {"now": 100.0, "busy": 50.0, "own": 10.0}
    monkeypatch.setattr(_threads, "_last_reading", [None])
    monkeypatch.setattr(_threads.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(_threads, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(_threads.os, "times",
                        lambda: type("T", (), {"user": clock["own"], "system": 0.0})())
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (1.9, 1.9, 1.9))
    assert not _threads._spare_core()  # no window yet: the load average's answer
    clock.update(now=101.0, busy=51.2, own=11.0)  # others: 0.2 of a core
    assert _threads._spare_core()
    clock.update(now=101.1, busy=51.4, own=11.1)  # within the window: the last answer
    assert _threads._spare_core()
    clock.update(now=102.0, busy=53.0, own=11.9)  # others: 0.9 of a core
    assert not _threads._spare_core()
    clock.update(now=103.0, busy=55.0, own=13.8)  # this process on both cores
    assert _threads._spare_core()


def test_spare_core_gives_the_kernel_its_threads(monkeypatch):
    import numba

    outside = numba.get_num_threads()
    for spare in (True, False):
        monkeypatch.setattr(_threads, "_spare_core", lambda spare=spare: spare)
        with _threads.step_threads(1e6):
            assert numba.get_num_threads() == 1
            with _threads.spare_core_kernel(1e8):
                assert numba.get_num_threads() == (outside if spare else 1)
            with _threads.spare_core_kernel(1e3):  # too small to pay for the threads
                assert numba.get_num_threads() == 1
            assert numba.get_num_threads() == 1
        assert numba.get_num_threads() == outside
        with _threads.spare_core_kernel(1e8):  # outside a one-thread step: nothing
            assert numba.get_num_threads() == outside


def test_training_is_the_same_with_the_spare_core(monkeypatch):
    # The Gram matrix and the correlations are the same pieces on one thread or
    # two, and the pursuit's samples do not depend on its threads: the same bits.
    X = np.random.default_rng(0).standard_normal((512, 48)).astype(np.float64)
    fits = []
    monkeypatch.setattr(_threads, "_PARALLEL_PRODUCT_FROM", 1)
    monkeypatch.setattr(_threads, "_SERIAL_KERNEL_BELOW", 1)
    for spare in (False, True):
        monkeypatch.setattr(_threads, "_spare_core", lambda spare=spare: spare)
        fits.append(MatchingPursuitSAE(n_components=96, k=4, batch_size=128, max_iter=2,
                                       random_state=0).fit(X))
    np.testing.assert_array_equal(fits[0].components_, fits[1].components_)
    assert fits[0].loss_curve_ == fits[1].loss_curve_


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_thread_pool_is_made_once_and_anew_in_a_forked_child():
    pool = _threads.thread_pool(2)
    assert _threads.thread_pool(2) is pool
    assert pool.submit(lambda: 41 + 1).result() == 42
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's pool has no threads here
        os.write(write, b"1" if not _threads._pools else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)


def test_one_blas_thread_holds_for_onednn_products_too():
    # oneDNN's products (``_products``) run on torch's threads: a small
    # product's one-thread limit covers them, and is lifted afterwards.
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with _threads.blas_threads(0):
            assert torch.get_num_threads() == 1
            assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}
        assert torch.get_num_threads() == 2
        with _threads.blas_threads(1e12):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
