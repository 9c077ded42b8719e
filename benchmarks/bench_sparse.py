"""Peak memory of MatchingPursuitSAE.transform: dense codes vs sparse_output=True.

Each case runs in a fresh Python process and reads its own peak resident set
(VmHWM in /proc/self/status) twice: after the inputs are ready (X, the
dictionary and its cached Gram matrix, warmed by encoding one row) and after
the transform. The difference is the memory that encoding itself needs.

    python benchmarks/bench_sparse.py                      # 200,000 x 768, 16,384 atoms, k=32
    python benchmarks/bench_sparse.py --dense-n 12500 25000 50000

Dense codes of 200,000 x 16,384 float32 are 13.1 GB; on a machine that cannot
hold them, pass the sizes at which the dense case runs (--dense-n) and read
its scaling (bytes per row) off the table.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _vmhwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(mode, n, n_features, n_components, k):
    from skmpsae import MatchingPursuitSAE
    from skmpsae.interop._common import build_estimator

    rng = np.random.default_rng(0)
    D = rng.standard_normal((n_components, n_features), dtype=np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n, n_features), dtype=np.float32)
    sae = build_estimator(MatchingPursuitSAE, {"n_components": n_components, "k": k,
                                               "device": "cpu",
                                               "sparse_output": mode == "sparse"},
                          {"components": D, "bias": np.zeros(n_features, np.float32)})
    sae.transform(X[:1])  # caches the Gram matrix: part of the inputs, not of encoding
    before = _vmhwm()
    start = time.perf_counter()
    codes = sae.transform(X)
    seconds = time.perf_counter() - start
    after = _vmhwm()
    nnz = int(codes.nnz) if mode == "sparse" else int(np.count_nonzero(codes))
    print(json.dumps({"mode": mode, "n": n, "before": before, "after": after,
                      "seconds": seconds, "nnz": nnz}))


def run_case(mode, n, args):
    cmd = [sys.executable, __file__, "--child", mode, str(n), "--features", str(args.features),
           "--atoms", str(args.atoms), "--k", str(args.k)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dense-n", type=int, nargs="*", default=None,
                        help="sizes of the dense cases (default: --n)")
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--atoms", type=int, default=16_384)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["dense", "sparse"],
                        choices=["dense", "sparse"])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"))
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), args.features, args.atoms, args.k)
    dense_n = args.dense_n or [args.n]
    cases = [("dense", n) for n in dense_n if "dense" in args.modes] + \
        [("sparse", n) for n in sorted({*dense_n, args.n}) if "sparse" in args.modes]
    print(f"MatchingPursuitSAE.transform, float32, {args.features} features, {args.atoms} atoms, "
          f"k={args.k}; load: {os.getloadavg()[0]:.1f}")
    print(f"{'mode':>6} {'n':>8} {'inputs MB':>10} {'peak MB':>9} {'encode MB':>10} "
          f"{'B/row':>8} {'dense codes MB':>15} {'nnz/row':>8} {'s':>7}")
    rows = []
    for mode, n in cases:
        r = run_case(mode, n, args)
        extra = r["after"] - r["before"]
        rows.append((mode, n, extra))
        print(f"{mode:>6} {n:>8} {r['before'] / 1e6:>10.0f} {r['after'] / 1e6:>9.0f} "
              f"{extra / 1e6:>10.0f} {extra / n:>8.0f} {n * args.atoms * 4 / 1e6:>15.0f} "
              f"{r['nnz'] / n:>8.1f} {r['seconds']:>7.1f}", flush=True)
    by = {(m, n): e for m, n, e in rows}
    for n in dense_n:
        if ("sparse", n) in by and ("dense", n) in by and by["sparse", n] > 0:
            ratio = by["dense", n] / by["sparse", n]
            print(f"n={n}: dense / sparse encoding memory = {ratio:.1f}x")


if __name__ == "__main__":
    main()
