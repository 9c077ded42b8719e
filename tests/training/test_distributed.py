"""Data-parallel training with ``torchrun --nproc_per_node=2`` on CPU (gloo)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skmpsae import MatchingPursuitSAE

SCRIPT = Path(__file__).parents[1] / "scripts" / "ddp_fit.py"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[2]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(SCRIPT), str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def test_every_rank_ends_with_identical_parameters(ranks):
    assert set(ranks[0]) == set(ranks[1])
    for key in ranks[0]:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)


def test_two_ranks_agree_with_one_process_on_the_global_batch(ranks):
    # Two ranks of 32 rows each step as one process does with 64: the gradient
    # of the mean loss over the same 64 rows, summed in another order.
    X = load_digits().data / 16.0
    single = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0, device="cpu",
                                batch_size=64, atom_dropout=0.2).fit(X)
    np.testing.assert_allclose(ranks[0]["mp_components"], single.components_, atol=1e-10)
    np.testing.assert_allclose(ranks[0]["mp_bias"], single.bias_, atol=1e-10)
    np.testing.assert_allclose(ranks[0]["mp_loss"], single.loss_curve_, rtol=1e-10)
