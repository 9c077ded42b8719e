"""Parallel search with joblib's loky backend, without thread oversubscription."""

import functools
import json
import os

import numpy as np
from sklearn.model_selection import GridSearchCV

from skmpsae import MatchingPursuitSAE


def _threads_scorer(estimator, X, y=None, *, folder):
    """R^2 score that also records the thread pools of the process it runs in."""
    import numba
    import torch
    from threadpoolctl import threadpool_info

    record = {"torch": torch.get_num_threads(), "numba": numba.get_num_threads(),
              "pools": [pool["num_threads"] for pool in threadpool_info()]}
    (folder / f"{os.getpid()}.json").write_text(json.dumps(record))
    return estimator.score(X)


def test_grid_search_loky_two_jobs_one_thread_each(digits, tmp_path):
    grid = {"k": [2, 4]}
    sae = MatchingPursuitSAE(n_components=64, max_iter=2, random_state=0)
    scorer = functools.partial(_threads_scorer, folder=tmp_path)
    parallel = GridSearchCV(sae, grid, cv=2, n_jobs=2, scoring=scorer).fit(digits)
    serial = GridSearchCV(sae, grid, cv=2, n_jobs=1).fit(digits)
    np.testing.assert_allclose(parallel.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=1e-6)
    assert parallel.best_params_ == serial.best_params_ == {"k": 4}
    workers = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")
               if p.stem != str(os.getpid())]
    assert workers, "the search did not run in worker processes"
    # Two workers on two cores: one thread per pool in each (loky's limits,
    # which skmpsae's own thread policy never raises).
    for record in workers:
        assert record["torch"] == 1 and record["numba"] == 1
        assert all(n == 1 for n in record["pools"])
