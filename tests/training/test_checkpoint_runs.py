"""A checkpoint folder belongs to one run: searches and clones never resume each other.

The first fit claims ``checkpoint_dir`` (``run.json``) before training; a fit
of other parameters or other data is refused at once, naming
``checkpoint_dir``, sequentially or in parallel, before it writes anything.
"""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skmpsae import MatchingPursuitSAE

X = np.random.default_rng(0).random((200, 8))
FAST = dict(n_components=16, k=2, max_iter=2, batch_size=64, random_state=0)


def _steps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("step-"))


def _every_checkpoint_is_of_the_claimed_run(folder):
    claim = json.loads((folder / "run.json").read_text())
    for name in _steps(folder):
        meta = json.loads((folder / name / "checkpoint.json").read_text())
        assert meta["data"] == claim["data"] and meta["params"] == claim["params"], name


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_candidates_never_share_a_run(tmp_path, n_jobs):
    folder = tmp_path / "ckpt"
    search = GridSearchCV(MatchingPursuitSAE(**FAST, checkpoint_dir=folder), {"k": [2, 3]},
                          cv=2, n_jobs=n_jobs, error_score="raise")
    with pytest.raises(ValueError, match="checkpoint_dir=.*GridSearchCV"):
        search.fit(X)
    _every_checkpoint_is_of_the_claimed_run(folder)


def test_a_clone_on_other_data_is_refused_before_training(tmp_path):
    sae = MatchingPursuitSAE(**FAST, checkpoint_dir=tmp_path).fit(X[:100])
    before = {name: (tmp_path / name / "checkpoint.json").read_bytes()
              for name in _steps(tmp_path)}
    for other, data in ((clone(sae), X[100:]), (clone(sae).set_params(k=3), X[:100])):
        with pytest.raises(ValueError, match="checkpoint_dir"):
            other.fit(data)
        assert not hasattr(other, "components_")
    after = {name: (tmp_path / name / "checkpoint.json").read_bytes()
             for name in _steps(tmp_path)}
    assert after == before
    # The same run (same parameters, same data) still resumes there.
    again = clone(sae).fit(X[:100])
    np.testing.assert_array_equal(again.components_, sae.components_)


def test_a_damaged_claim_is_a_clear_error(tmp_path):
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(ValueError, match="run.json"):
        MatchingPursuitSAE(**FAST, checkpoint_dir=tmp_path).fit(X)
