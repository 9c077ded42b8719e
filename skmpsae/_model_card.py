"""Model cards (README.md) for saved SAEs, the metrics they report, and ``push_to_hub``.

``save`` writes a card beside ``config.json`` so that a folder pushed to a
model hub explains itself: what the model is, its parameters, the data it was
trained on, the metrics measured at the end of ``fit`` and how to load it.
The card follows the Hugging Face Hub's conventions (YAML front matter with
``library_name`` and ``tags``).
"""

import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["PendingFitMetrics", "end_of_fit_metrics", "model_card", "push_to_hub",
           "write_model_card"]

CARD = "README.md"
#: Training rows encoded at the end of fit to measure R^2, L0 and dead latents.
METRIC_ROWS = 4096


class PendingFitMetrics:
    """What ``end_of_fit_metrics`` needs, kept at the end of ``fit`` and measured on first use.

    Up to ``METRIC_ROWS`` training rows, evenly spaced over those the source
    holds (the whole array, or an iterable's first chunks; no random state),
    copied so that later changes to the caller's array do not reach them; the
    source's row count; and the estimator's parameters, so that a
    ``set_params`` in between does not change the metrics of the trained model.
    Encoding the rows is a pursuit of up to 4096 rows (0.24 s of a 1.6 s
    one-epoch MP-SAE fit of 20480 x 384 with 3072 atoms): a fit whose metrics
    are never read, saved or pickled does not pay for it.
    """

    def __init__(self, estimator, source):
        sample = source.sample()
        n = len(sample)
        rows = np.unique(np.linspace(0, n - 1, min(n, METRIC_ROWS)).astype(np.int64))
        self.X = np.ascontiguousarray(sample[rows])
        self.n_rows = source.n_rows()
        self.params = estimator.get_params(deep=False)

    def measure(self, estimator):
        """The metrics dict of ``estimator``'s fitted state at the parameters of its fit."""
        # A shallow copy by hand: copy.copy would pickle-reduce, which measures.
        trained = object.__new__(type(estimator))
        trained.__dict__.update(estimator.__dict__)
        trained.set_params(**self.params)
        return end_of_fit_metrics(trained, self.X, self.n_rows)


def end_of_fit_metrics(estimator, X, n_rows):
    """R^2, mean L0 and dead fraction of ``estimator`` at its trained ``k`` on the rows ``X``.

    ``n_rows``: the training rows in all (``None`` when the source did not say).
    """
    from .metrics import dead_fraction, l0, r2_score

    Z = estimator._metric_codes(X, estimator._check_n_steps(None))
    X_hat = estimator._decode(Z)
    return {"n_samples_fit": None if n_rows is None else int(n_rows),
            "metric_rows": int(X.shape[0]),
            "r2": float(r2_score(X, X_hat)), "l0": float(l0(Z)),
            "dead_fraction": float(dead_fraction(Z))}


def check_fit_metrics(value):
    """Whether ``value`` has the form ``end_of_fit_metrics`` returns (for loading)."""
    keys = {"n_samples_fit", "metric_rows", "r2", "l0", "dead_fraction"}
    return (isinstance(value, dict) and set(value) == keys
            and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and math.isfinite(v)) for v in value.values()))


def _cell(value):
    text = repr(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|")


def _summary(estimator):
    doc = (type(estimator).__doc__ or "").strip().splitlines()
    return doc[0] if doc else type(estimator).__name__


def model_card(estimator, folder_name="path/to/folder"):
    """The Markdown model card of a fitted estimator.

    Parameters
    ----------
    estimator : BaseSAE
        A fitted SAE.
    folder_name : str, default="path/to/folder"
        The folder shown in the loading instructions.

    Returns
    -------
    card : str
        Markdown with YAML front matter.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae._model_card import model_card
    >>> X = load_digits().data / 16
    >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> print(model_card(sae).splitlines()[6])
    # MatchingPursuitSAE: a skmpsae sparse autoencoder
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    name = type(estimator).__name__
    dtype = np.asarray(estimator.components_).dtype
    lines = ["---", "library_name: skmpsae", "tags:", "- skmpsae", "- sparse-autoencoder",
             "---", f"# {name}: a skmpsae sparse autoencoder", "", _summary(estimator), "",
             "## Model", "", "| | |", "|---|---|", f"| class | `skmpsae.{name}` |",
             f"| input features (`n_features_in_`) | {estimator.n_features_in_} |",
             f"| latents (`n_components_`) | {estimator.n_components_} |",
             f"| trained sparsity (`k`) | {estimator.k} |",
             f"| weights dtype | {dtype} |",
             f"| epochs run (`n_iter_`) | {estimator.n_iter_} |"]
    if estimator.loss_curve_:
        lines.append(f"| final training loss | {estimator.loss_curve_[-1]:.6g} |")
    # The package is initialised before any of its submodules: read its version
    # there instead of importing it back (no import cycle).
    lines.append(f"| skmpsae version | {sys.modules[__package__].__version__} |")
    metrics = getattr(estimator, "fit_metrics_", None)
    lines += ["", "## Training data", ""]
    n_fit = metrics and metrics.get("n_samples_fit")
    lines.append(f"{n_fit if n_fit is not None else 'An unknown number of'} samples "
                 f"of {estimator.n_features_in_} features.")
    lines += ["", "## Metrics at the end of fit", ""]
    if metrics:
        lines += [f"Measured on {metrics['metric_rows']} evenly spaced training rows, "
                  f"at the trained sparsity:", "", "| metric | value |", "|---|---|",
                  f"| R² (explained variance) | {metrics['r2']:.4f} |",
                  f"| mean L0 (active latents per sample) | {metrics['l0']:.2f} |",
                  f"| dead fraction (latents never active on those rows) | "
                  f"{metrics['dead_fraction']:.4f} |"]
    else:
        lines.append("Not recorded (the model was not fitted by skmpsae's `fit`, "
                     "e.g. it was converted from another library).")
    lines += ["", "## Parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| `{key}` | `{_cell(value)}` |"
              for key, value in sorted(estimator.get_params(deep=False).items())]
    lines += ["", "## How to load", "", "```python", "import skmpsae", "",
              f'sae = skmpsae.load("{folder_name}")  # safetensors + JSON, no pickle',
              "codes = sae.transform(X)  # X: (n_samples, "
              f"{estimator.n_features_in_}) float array", "```", "",
              "`pip install skmpsae`; the folder holds `config.json` (class, parameters, "
              "fitted scalars) and `arrays.safetensors` (the fitted arrays).", ""]
    return "\n".join(lines)


def write_model_card(estimator, folder, name=None):
    """Write ``model_card(estimator)`` to ``folder / "README.md"``.

    ``name`` is the folder name shown in the loading instructions (``folder``'s
    own name when None).
    """
    folder = Path(folder)
    (folder / CARD).write_text(model_card(estimator, name or folder.name), encoding="utf-8")


def push_to_hub(estimator: BaseEstimator, repo_id: str, *, token: str | None = None,
                private: bool = False, commit_message: str = "Upload skmpsae model") -> object:
    """Save a fitted SAE (with its model card) and upload the folder to the Hugging Face Hub.

    Needs ``huggingface_hub`` (``pip install 'skmpsae[hub]'``) and network
    access to the hub. The repository is created when missing; the uploaded
    files are those of :meth:`save`, and ``skmpsae.load`` reads the folder
    back after ``huggingface_hub.snapshot_download(repo_id)``.

    Parameters
    ----------
    estimator : BaseSAE
        A fitted SAE.
    repo_id : str
        ``"user/name"`` of the model repository.
    token : str, default=None
        Hub token; None uses the one ``huggingface_hub`` finds (``hf auth login``).
    private : bool, default=False
        Create the repository as private.
    commit_message : str, default="Upload skmpsae model"
        Message of the upload commit.

    Returns
    -------
    commit : object
        What ``HfApi.upload_folder`` returns (the commit's information).

    Examples
    --------
    >>> from skmpsae import push_to_hub
    >>> callable(push_to_hub)  # push_to_hub(sae, "me/digits-sae") uploads
    True
    """
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise ImportError("push_to_hub needs huggingface_hub: pip install 'skmpsae[hub]'"
                          ) from exc
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"repo_id must be 'owner/name', got {repo_id!r}.")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / repo_id.split("/")[1]
        estimator.save(folder)
        return api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                                 commit_message=commit_message, repo_type="model")
