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
