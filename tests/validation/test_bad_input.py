"""Bad input at every public entry point: a table of cases, each a clear error.

Every case must raise ValueError or TypeError (FileExistsError for save's
refusals) whose message names the argument at fault. ``summary()`` counts
the cases per entry point and outcome (``python tests/validation/test_bad_input.py``
prints it against the skmpsae on the path).
"""

import collections
import re

import numpy as np
import pytest

import skmpsae
from skmpsae import metrics

RNG = np.random.default_rng(0)
X = RNG.random((60, 8))
D = RNG.standard_normal((16, 8))
D /= np.linalg.norm(D, axis=1, keepdims=True)
ESTIMATORS = ["MatchingPursuitSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "ReLUSAE",
              "JumpReLUSAE"]
FAST = dict(n_components=16, k=2, max_iter=1, batch_size=32, random_state=0)

BAD_ARRAYS = {
    "nan": np.where(X > 0.9, np.nan, X),
    "inf": np.where(X > 0.9, np.inf, X),
    "empty-rows": np.empty((0, 8)),
    "empty-(0,0)": np.empty((0, 0)),
    "1-D": X[0],
    "3-D": X[None],
    "strings": np.full((4, 8), "a"),
    "complex": X + 1j,
    "object": np.array([[object()] * 8] * 3),
    "ragged": [[1.0, 2.0], [1.0]],
    "None": None,
    "huge-float32": (X * 1e19).astype(np.float32),
}
BAD_FEATURES = {**BAD_ARRAYS, "wrong-features": X[:, :5]}
BAD_PARAMS = {
    "k": [True, 0, -1, 1.5, "4", None],
    "n_components": [0, -3, True, 2.5, "16"],
    "max_iter": [0, True, 1.5],
    "batch_size": [0, True, np.bool_(True)],
    "learning_rate": [0.0, -1.0, np.nan, True, "fast"],
    "warmup": [-0.1, 1.5, np.nan],
    "device": ["mps", "meta", "nonsense", 3],
    "checkpoint_every": [0, True],
    "random_state": ["seed", 1.5],
    "bias_init": ["median"],
    "verbose": ["loud"],
}


def _fitted(name):
    cache = _fitted.__dict__.setdefault("cache", {})
    if name not in cache:
        cache[name] = getattr(skmpsae, name)(**FAST).fit(X)
    return cache[name]


def _cases():
    """(entry point, case id, callable, word the message must hold)."""
    out = []
    for name in ESTIMATORS:
        cls = getattr(skmpsae, name)
        for label, bad in BAD_ARRAYS.items():
            out.append((f"{name}.fit", f"X={label}", lambda c=cls, b=bad: c(**FAST).fit(b), "X"))
            out.append((f"{name}.partial_fit", f"X={label}",
                        lambda c=cls, b=bad: c(**FAST).partial_fit(b), "X"))
        for label, bad in BAD_FEATURES.items():
            for method in ("transform", "score"):
                out.append((f"{name}.{method}", f"X={label}",
                            lambda n=name, m=method, b=bad: getattr(_fitted(n), m)(b), "X"))
            out.append((f"{name}.inverse_transform", f"X={label}",
                        lambda n=name, b=bad: _fitted(n).inverse_transform(b), "X"))
        for param, values in BAD_PARAMS.items():
            for value in values:
                out.append((f"{name}(params).fit", f"{param}={value!r}",
                            lambda c=cls, p=param, v=value: c(**{**FAST, p: v}).fit(X), param))
        for value in (-1, True, 1.5, "3", 10**15):
            out.append((f"{name}.transform", f"n_steps={value!r}",
                        lambda n=name, v=value: _fitted(n).transform(X, n_steps=v), "n_steps"))
        out.append((f"{name}.transform", "unfitted",
                    lambda c=cls: c().transform(X), name))
        for label, path in (("''", ""), ("None", None), ("'/'", "/")):
            out.append((f"{name}.save", f"path={label}",
                        lambda n=name, p=path: _fitted(n).save(p), "path"))
    out.append(("MatryoshkaSAE(params).fit", "group_sizes=[1, 2]",
                lambda: skmpsae.MatryoshkaSAE(**FAST, group_sizes=[1, 2]).fit(X), "group_sizes"))
    out.append(("MatryoshkaSAE(params).fit", "group_sizes=[True]*16",
                lambda: skmpsae.MatryoshkaSAE(**FAST, group_sizes=[True] * 16).fit(X),
                "group_sizes"))
    for value in (np.nan, -1.0, True):
        out.append(("MatchingPursuitSAE.transform", f"tol={value!r}",
                    lambda v=value: _fitted("MatchingPursuitSAE").transform(X, tol=v), "tol"))
    out.append(("skmpsae.load", "path=None", lambda: skmpsae.load(None), "path"))
    out.append(("skmpsae.load", "path=missing", lambda: skmpsae.load("/nonexistent/x"),
                "nonexistent"))
    # mp_encode: every argument.
    for label, bad in BAD_FEATURES.items():
        out.append(("mp_encode", f"X={label}",
                    lambda b=bad: skmpsae.mp_encode(b, D, n_steps=2), "X"))
    bad_dicts = {"non-unit": D * 2, "nan": np.where(D > 0.5, np.nan, D), "1-D": D[0],
                 "strings": np.full((4, 8), "a")}
    for label, bad in bad_dicts.items():
        out.append(("mp_encode", f"dictionary={label}",
                    lambda b=bad: skmpsae.mp_encode(X, b, n_steps=2), "dictionary"))
    for value in (-1, True, 1.5, None):
        out.append(("mp_encode", f"n_steps={value!r}",
                    lambda v=value: skmpsae.mp_encode(X, D, n_steps=v), "n_steps"))
    G = D @ D.T
    bad_grams = {"shape": G[:4], "diagonal": G * 2,
                 "not-symmetric": np.triu(G) + 0.5 * np.tril(G, -1),
                 "other-dictionary": np.eye(16), "nan": np.where(G > 0.5, np.nan, G)}
    for label, bad in bad_grams.items():
        out.append(("mp_encode", f"gram={label}",
                    lambda b=bad: skmpsae.mp_encode(X, D, n_steps=2, gram=b), "gram"))
    for label, bad in (("shape", np.zeros(3)), ("nan", np.full(8, np.nan))):
        out.append(("mp_encode", f"bias={label}",
                    lambda b=bad: skmpsae.mp_encode(X, D, n_steps=2, bias=b), "bias"))
    out.append(("mp_encode", "backend='gpu'",
                lambda: skmpsae.mp_encode(X, D, n_steps=2, backend="gpu"), "backend"))
    # Metrics: each argument named.
    for label, bad in BAD_ARRAYS.items():
        if label == "huge-float32":
            continue  # a valid (finite) input for a metric
        out.append(("metrics.r2_score", f"X={label}", lambda b=bad: metrics.r2_score(b, X), "X"))
        out.append(("metrics.fvu", f"X_hat={label}", lambda b=bad: metrics.fvu(X, b), "X_hat"))
        for fn in (metrics.l0, metrics.dead_fraction, metrics.effective_rank):
            out.append((f"metrics.{fn.__name__}", f"Z={label}", lambda f=fn, b=bad: f(b), "Z"))
        out.append(("metrics.babel_score", f"dictionary={label}",
                    lambda b=bad: metrics.babel_score(b, 2), "dictionary"))
    out.append(("metrics.r2_score", "shapes", lambda: metrics.r2_score(X, X[:5]), "X_hat"))
    out.append(("metrics.modality_score", "modality=short",
                lambda: metrics.modality_score(X, [0, 1]), "modality"))
    out.append(("metrics.modality_score", "modality=one label",
                lambda: metrics.modality_score(X, np.zeros(60)), "modality"))
    out.append(("metrics.babel_score", "p=True", lambda: metrics.babel_score(D, True), "p"))
    out.append(("metrics.babel_selected", "Z=wrong columns",
                lambda: metrics.babel_selected(D, np.ones((3, 5))), "Z"))
    out.append(("metrics.bridge_score", "Z_text=shape",
                lambda: metrics.bridge_score(np.ones((3, 16)), np.ones((2, 16)), D), "Z_text"))
    return out


CASES = _cases()


def outcome(fn, word):
    """``"clear error"``, ``"unclear error"`` (raised, but without the name) or ``"accepted"``."""
    try:
        fn()
    except (ValueError, TypeError, FileExistsError) as exc:
        named = re.search(rf"\b{re.escape(word)}\b", str(exc)) is not None
        return "clear error" if named else f"unclear error: {type(exc).__name__}: {exc}"[:300]
    except Exception as exc:  # noqa: BLE001 - a raw library error is the finding
        return f"raw error: {type(exc).__name__}: {exc}"[:300]
    return "accepted"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("entry", "case", "fn", "word"), CASES,
                         ids=[f"{e}:{c}" for e, c, _, _ in CASES])
def test_bad_input_gives_a_clear_error(entry, case, fn, word):
    assert outcome(fn, word) == "clear error"


def summary():
    """Counts of cases per outcome, and per entry point."""
    import warnings

    by_outcome, by_entry, odd = collections.Counter(), collections.Counter(), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry, case, fn, word in CASES:
            result = outcome(fn, word)
            kind = result.split(":")[0]
            by_outcome[kind] += 1
            by_entry[entry.split("(")[0].split(".")[0], kind] += 1
            if kind != "clear error":
                odd.append(f"{entry} {case}: {result}")
    return by_outcome, by_entry, odd


if __name__ == "__main__":
    counts, entries, odd = summary()
    print(f"{len(CASES)} cases:", dict(counts))
    for (entry, kind), n in sorted(entries.items()):
        print(f"  {entry:28s} {kind:14s} {n}")
    print("\n".join(odd))
