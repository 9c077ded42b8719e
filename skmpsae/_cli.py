"""The main job: train SAEs on a real data set and compare them at equal budget.

``python -m skmpsae --data digits`` trains MP-SAE, TopK, BatchTopK, Matryoshka,
ReLU and JumpReLU SAEs (same k, same dictionary size, default training) on
scikit-learn's digits (or ``--data patches`` for natural-image patches,
``--data sentences`` for the packaged MiniLM's embeddings of docstring
sentences, ``--data photos`` for MobileNetV2 features of photo crops, or a
``.npy`` file of embeddings) and prints R^2 and L0 on held-out samples in
two accountings (:mod:`skmpsae.comparison`): equal per-sample L0 (every SAE
at exactly k codes per sample: MP with k steps, the others with
``n_steps=k``) and equal mean L0 (one global threshold per SAE calibrated
to mean L0 k on a validation split), after R^2 and mean L0 with each SAE's
own inference rule (plain ``transform``). Then each SAE's R^2 at budgets from 1
to 8k in both accountings, and a plot of the two sets of curves.
"""

import argparse
import time
from pathlib import Path

import numpy as np

__all__ = ["accountings", "main", "print_accountings"]

_STEPS = (1, 2, 4, 8, 16, 32, 64)


def _load(data, random_state, n_sentences=6000):
    if data == "digits":
        from sklearn.datasets import load_digits

        return load_digits().data.astype(np.float32), "scikit-learn digits (8x8 images)"
    if data == "patches":
        from .datasets import load_image_patches

        return load_image_patches(random_state=random_state), "8x8 patches of sample photos"
    if data == "sentences":
        from .datasets import load_sentence_embeddings

        start = time.perf_counter()
        X = load_sentence_embeddings(n_sentences, random_state=random_state).X
        return X, (f"all-MiniLM-L6-v2 embeddings of {len(X)} docstring sentences "
                   f"(unit norm; loaded in {time.perf_counter() - start:.0f} s)")
    if data == "photos":
        from .datasets import load_photo_embeddings

        start = time.perf_counter()
        X = load_photo_embeddings().X
        return X, (f"MobileNetV2 feature-map cells of photo crops ({len(X)} rows; loaded in "
                   f"{time.perf_counter() - start:.0f} s)")
    path = Path(data)
    if path.suffix != ".npy" or not path.is_file():
        raise SystemExit(
            f"--data must be 'digits', 'patches', 'sentences', 'photos' or an existing .npy "
            f"file, got {data!r}"
        )
    X = np.load(path)
    if X.ndim != 2:
        raise SystemExit(f"{data} must hold a 2-D array (n_samples, n_features), got {X.shape}")
    return X.astype(np.float32, copy=False), f"{path.name} {X.shape}"


SAES = {
    "MP-SAE": "MatchingPursuitSAE",
    "TopK": "TopKSAE",
    "BatchTopK": "BatchTopKSAE",
    "Matryoshka": "MatryoshkaSAE",
    "ReLU": "ReLUSAE",
    "JumpReLU": "JumpReLUSAE",
}


def estimators(k, *, n_components=None, max_iter=None, random_state=0, verbose=0, only=None):
    """Every SAE (or those named in ``only``) at sparsity ``k``, default training."""
    import skmpsae

    common = dict(n_components=n_components, k=k, random_state=random_state, verbose=verbose)
    if max_iter is not None:
        common["max_iter"] = max_iter
    return {label: getattr(skmpsae, name)(**common) for label, name in SAES.items()
            if only is None or label in only}


def accountings(est, X_val, X_test, m):
    """``(own, per_sample, mean)``: ``(R2, mean L0)`` on ``X_test`` three ways at ``m``.

    ``own`` is the SAE's own inference rule (plain ``transform`` at the
    ``k`` it was trained with; each SAE spends its own mean L0 there, so it
    is no equal-budget comparison). The other two are the accountings of
    :mod:`skmpsae.comparison`: equal per-sample L0 is ``m`` codes for every
    sample; equal mean L0 is a global threshold (MP-SAE: on the
    coefficients, at most ``2 m`` steps; the others: on the activations)
    calibrated to mean L0 ``m`` on ``X_val``, held out from training.
    """
    from .comparison import r2_at_l0
    from .metrics import l0, r2_score

    Z = est.transform(X_test)
    return ((float(r2_score(X_test, est.inverse_transform(Z))), float(l0(Z))),
            r2_at_l0(est, X_test, m),
            r2_at_l0(est, X_test, m, accounting="mean", X_calibration=X_val))


_TABLES = (
    ("Own inference rule at the trained k (plain transform: MP k steps, TopK its k\n"
     "largest, BatchTopK and Matryoshka their inference threshold, JumpReLU its\n"
     "per-latent thresholds, ReLU every positive activation); each SAE spends its\n"
     "own budget, so this is no equal-budget comparison (* = mean L0 more than 10%\n"
     "off k)"),
    ("Equal per-sample L0: every SAE at exactly k codes per sample (MP: k steps;\n"
     "the others: n_steps=k, the k largest activations; mean L0 below k where a\n"
     "code is zero)"),
    ("Equal mean L0 k: one global threshold per SAE calibrated on a validation\n"
     "split (MP-SAE: on its coefficients; the others: on their activations), so\n"
     "that codes go where each SAE puts them (* = mean L0 more than 10% off k)"),
)


def print_accountings(rows, ks, extra=None):
    """Print the three tables of :func:`accountings`, one column pair per ``k``.

    ``rows`` maps each SAE's name to the list of :func:`accountings` results
    at each budget of ``ks``; ``extra`` is an optional ``(header, {name:
    text})`` last column.
    """
    header = "".join(f"{'k=' + str(k) + ' R2':>10}{'mean L0':>9}" for k in ks)
    if extra is not None:
        width = 2 + max(len(extra[0]), *map(len, extra[1].values()))
        header += f"{extra[0]:>{width}}"
    for which, heading in enumerate(_TABLES):
        print(f"\n({'abc'[which]}) {heading}")
        print(f"{'SAE':<12}{header}")
        for name, results in rows.items():
            line = f"{name:<12}"
            for k, result in zip(ks, results, strict=True):
                r2, sparsity = result[which]
                flag = "*" if which != 1 and abs(sparsity - k) > 0.1 * k else " "
                line += f"{r2:>10.4f}{sparsity:>8.2f}{flag}"
            if extra is not None:
                line += f"{extra[1][name]:>{width}}"
            print(line)


def _curves(est, X_val, X_test, steps):
    """R2 on ``X_test`` at each budget of ``steps``: per sample, and (mean L0, R2) pairs."""
    from .comparison import pareto_curve

    steps = [min(s, est.n_components_) for s in steps]
    per_sample = pareto_curve(est, X_test, steps, accounting="per_sample")[:, 1]
    return per_sample, pareto_curve(est, X_test, steps, X_calibration=X_val)


def _plot(curves, steps, k, title, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot (pip install 'skmpsae[plot]').")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for name, (per_sample, mean) in curves.items():
        left.plot(steps, per_sample, marker="o", label=name)
        right.plot(mean[:, 0], mean[:, 1], marker="o", label=name)
    left.set(xlabel="codes per sample (n_steps at inference)",
             title="equal per-sample L0")
    right.set(xlabel="mean L0 (global threshold calibrated on validation rows)",
              title="equal mean L0")
    for ax in (left, right):
        ax.axvline(k, color="grey", linestyle=":", label=f"trained k={k}")
        ax.set_xscale("log", base=2)
        ax.set_ylabel("R² on held-out samples")
        # A TopK SAE far from its k can reach very negative R²; keep the top readable.
        ax.set_ylim(bottom=max(ax.get_ylim()[0], -0.25))
        ax.grid(alpha=0.3)
    left.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"plot saved to {path}")


def main(argv=None):
    """Run the main job; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m skmpsae", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits",
                        help="digits, patches, sentences (real MiniLM embeddings), photos "
                             "(MobileNetV2 features of photo crops), or a .npy file")
    parser.add_argument("--n-sentences", type=int, default=6000,
                        help="sentences embedded for --data sentences (default 6000)")
    parser.add_argument("--k", type=int, default=8, help="sparsity in training (default 8)")
    parser.add_argument("--n-components", type=int, default=None,
                        help="atoms (default 8x features)")
    parser.add_argument("--max-iter", type=int, default=None, help="epochs (estimator default)")
    parser.add_argument("--plot", default="skmpsae_r2_vs_steps.png", help="PNG to write")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--sae", nargs="+", choices=list(SAES), default=None,
                        help="SAEs to compare (default: all)")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)

    from sklearn.model_selection import train_test_split

    from .metrics import dead_fraction

    X, title = _load(args.data, args.random_state, args.n_sentences)
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=args.random_state)
    # MP-SAE's mean-L0 threshold is calibrated on rows no SAE trains on.
    X_train, X_val = train_test_split(X_train, test_size=0.15, random_state=args.random_state)
    print(f"data: {title}; train {X_train.shape}, validation {X_val.shape}, "
          f"test {X_test.shape}")
    steps = [s for s in _STEPS if s <= 8 * args.k]
    rows, curves, budgets = [], {}, {}
    saes = estimators(args.k, n_components=args.n_components, max_iter=args.max_iter,
                      random_state=args.random_state, verbose=args.verbose, only=args.sae)
    for name, est in saes.items():
        start = time.perf_counter()
        est.fit(X_train)
        seconds = time.perf_counter() - start
        rows.append((name, est.n_components_, dead_fraction(est.transform(X_train)), seconds))
        curves[name] = _curves(est, X_val, X_test, steps)
        budgets[name] = [accountings(est, X_val, X_test, args.k)]
    print("\nEach SAE as trained (dead = never active on train)")
    print(f"{'SAE':<12}{'atoms':>7}{'dead':>7}{'fit s':>8}")
    for name, atoms, dead, seconds in rows:
        print(f"{name:<12}{atoms:>7}{dead:>7.3f}{seconds:>8.1f}")
    print(f"\nHeld-out R2 and mean L0 (trained k={args.k}), three ways:")
    print_accountings(budgets, [args.k])
    print(f"\nR2 on the test set at each budget (trained k={args.k}). Equal per-sample L0")
    print("(n_steps = m; for the linear-encoder SAEs, the m largest activations):")
    print(f"{'SAE':<12}" + "".join(f"{s:>8}" for s in steps))
    for name, (per_sample, _) in curves.items():
        print(f"{name:<12}" + "".join(f"{v:>8.4f}" for v in per_sample))
    print("Equal mean L0 (threshold calibrated to mean L0 m on the validation rows;")
    print("R2 with the mean L0 reached on the test rows in brackets):")
    print(f"{'SAE':<12}" + "".join(f"{s:>15}" for s in steps))
    for name, (_, mean) in curves.items():
        print(f"{name:<12}" + "".join(f"{r2:>8.4f} ({n:>4.1f})" for n, r2 in mean))
    print()
    _plot(curves, steps, args.k, f"{title}: held-out R² at equal budgets", args.plot)
    return 0
