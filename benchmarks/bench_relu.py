"""ReLU and JumpReLU baselines on digits at a target mean L0, against TopK.

Fits each SAE on 80% of ``load_digits().data / 16`` (512 latents) and prints
the held-out R^2, the held-out mean L0, the near-duplicate atom pairs
(``|cos| > 0.9``, ``skmpsae.metrics.near_duplicate_count``), the dead latents
(never active on the training part) and the fit time, for each seed.

Run::

    python benchmarks/bench_relu.py                        # every SAE, k=8, seeds 0 1 2
    python benchmarks/bench_relu.py --sae ReLU --set l1_mode=unit max_iter=200
"""

import argparse
import ast
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skmpsae import JumpReLUSAE, ReLUSAE, TopKSAE
from skmpsae.metrics import dead_fraction, l0, near_duplicate_count, r2_score

SAES = {
    # ReLUSAE's defaults (unit-norm decoder, 50 epochs) and the decoder-norm recipe.
    "ReLU-old": lambda k, seed: ReLUSAE(k=k, l1_mode="unit", max_iter=50, learning_rate=1e-2,
                                        random_state=seed),
    "ReLU": lambda k, seed: ReLUSAE(k=k, l1_mode="decoder_norm", learning_rate=3e-2,
                                    random_state=seed),
    "JumpReLU": lambda k, seed: JumpReLUSAE(k=k, random_state=seed),
    "TopK": lambda k, seed: TopKSAE(k=k, random_state=seed),
}


def measure(est, X_train, X_test):
    """(held-out R^2, held-out mean L0, duplicate pairs, dead latents, fit seconds)."""
    start = time.perf_counter()
    est.fit(X_train)
    seconds = time.perf_counter() - start
    Z = est.transform(X_test)
    dead = round(dead_fraction(est.transform(X_train)) * est.n_components_)
    return (r2_score(X_test, est.inverse_transform(Z)), l0(Z),
            near_duplicate_count(est.components_, 0.9), dead, seconds)


def main(argv=None):
    """Parse arguments, fit, print one row per SAE and seed, then the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", nargs="+", default=list(SAES), choices=list(SAES))
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="PARAM=VALUE",
                        help="override estimator parameters (Python literals)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = ast.literal_eval(value)
    X = load_digits().data / 16
    print(f"load {os.getloadavg()[0]:.2f}; k={args.k}; overrides {overrides}")
    print(f"{'SAE':<10}{'seed':>5}{'R2 test':>9}{'L0':>7}{'dup>0.9':>9}{'dead':>6}{'fit s':>7}")
    for name in args.sae:
        rows = []
        for seed in args.seeds:
            X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
            est = SAES[name](args.k, seed).set_params(**overrides)
            rows.append(measure(est, X_train, X_test))
            r2, mean_l0, dup, dead, sec = rows[-1]
            print(f"{name:<10}{seed:>5}{r2:>9.4f}{mean_l0:>7.2f}{dup:>9d}{dead:>6d}{sec:>7.1f}")
        r2, mean_l0, dup, dead, sec = np.mean(rows, axis=0)
        print(f"{name:<10}{'mean':>5}{r2:>9.4f}{mean_l0:>7.2f}{dup:>9.1f}{dead:>6.1f}{sec:>7.1f}")


if __name__ == "__main__":
    main()
