"""Benchmark the CUDA matching-pursuit kernel against torch loops on the same GPU.

Measures, in one process and on one GPU, the time to encode ``X`` (default
4096 x 768, float32) over 6144 unit-norm atoms with k=32 steps, the Gram
matrix given, data already on the GPU:

- ``GEMM X @ D.T``: the one product every encoder pays (cuBLAS through CuPy);
- ``kernel (CuPy)``: ``mp_encode`` with ``backend="cupy"`` on CuPy arrays, the
  fused kernel of ``skmpsae/_pursuit/kernels/mp_gram.cu`` (one block per sample);
- ``kernel, NumPy in/out``: the same from host arrays, transfers included;
- ``torch Gram-update loop``: ``C = R @ D.T`` once, then per step a batched
  argmax and ``C -= a * G[j]`` (skmpsae's torch engine), plus the scatter to
  dense codes;
- ``torch per-step loop``: ``C = R @ D.T`` recomputed at every step, the
  literal algorithm, plus the scatter.

Each timing is the median of ``--repeats`` calls after one warm-up call, each
call ending with a device synchronisation, the methods called in turn within
each repeat (as in ``bench_encode.py``). Parity with the NumPy reference is
checked on the first ``--check-rows`` rows: the kernel given the very same
correlations must reproduce the reference bit for bit, and codes computed end
to end (cuBLAS correlations) must agree up to rounding.

Without an NVIDIA GPU, CuPy or a CUDA build of torch, it says so and exits
with status 0.

Run::

    cd /work/main && .venv/bin/python benchmarks/bench_gpu.py
"""

import argparse
import sys

import numpy as np
from bench_encode import add_problem_arguments, interleaved_medians, make_data

from skmpsae import mp_encode
from skmpsae._pursuit import _cupy, _numpy, _torch


def gpu_or_exit():
    """CuPy and torch, or a message and exit status 0 when they cannot run on a GPU.

    Returns
    -------
    cupy : module
    torch : module
    """
    import torch

    if not _cupy.is_available():
        _, reason = _cupy._probe()
        print(f"bench_gpu: skipped, CuPy cannot run here ({type(reason).__name__}: {reason}).")
        sys.exit(0)
    if not torch.cuda.is_available():
        print("bench_gpu: skipped, torch has no CUDA device (a CPU-only build of torch?).")
        sys.exit(0)
    return _cupy.require_cupy(), torch


def kernel_parity(cp, X, D, G, k):
    """Whether the kernel reproduces ``_numpy.gram_pursuit`` bit for bit on ``X``.

    Parameters
    ----------
    cp : module
        CuPy.
    X, D, G : ndarray
        Samples, dictionary and its Gram matrix (NumPy, one float dtype).
    k : int
        Pursuit steps.

    Returns
    -------
    identical : bool
        Selections, coefficients and final correlations all equal.
    """
    C = np.ascontiguousarray(X @ D.T)
    n, n_components = C.shape
    idx = np.empty((n, k), np.int64)
    coef = np.empty((n, k), X.dtype)
    ref_C = C.copy()
    empty = np.empty(0, X.dtype)
    _numpy.gram_pursuit(ref_C, G, k, True, empty, empty, idx, coef)
    Cd, idx_d, coef_d = cp.asarray(C), cp.empty((n, k), np.int64), cp.empty((n, k), X.dtype)
    i32 = np.int32
    _cupy._kernel(cp, X.dtype)((n,), (_cupy._block_size(n_components),),
                               (Cd, cp.asarray(G), i32(n), i32(n_components), i32(k), i32(1),
                                i32(0), cp.asarray(empty), cp.asarray(empty), idx_d, coef_d,
                                i32(0)))
    return bool((cp.asnumpy(idx_d) == idx).all()
                and (cp.asnumpy(coef_d).view(np.uint8) == coef.view(np.uint8)).all()
                and (cp.asnumpy(Cd) == ref_C).all())


def main(argv=None):
    """Run the benchmark and print the table.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments (``sys.argv[1:]`` when None).
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_problem_arguments(p, repeats=11)
    p.add_argument("--block", type=int, default=_cupy._BLOCK,
                   help="threads per block of the kernel (a multiple of 32, <= 1024)")
    p.add_argument("--check-rows", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cp, torch = gpu_or_exit()
    _cupy._BLOCK = args.block
    rng = np.random.default_rng(args.seed)
    n, k, dtype = args.n_samples, args.k, np.dtype(args.dtype)
    D, X, _ = make_data(n, args.n_features, args.n_components, k, dtype, rng)
    G = np.ascontiguousarray(D @ D.T)
    Xc, Dc, Gc = cp.asarray(X), cp.asarray(D), cp.asarray(G)
    Xt, Dt, Gt = (torch.as_tensor(a, device="cuda") for a in (X, D, G))

    def synced(fn, framework):
        def call():
            out = fn()
            if framework is torch:
                torch.cuda.synchronize()
            else:
                cp.cuda.Device().synchronize()
            return out
        return call

    def torch_codes(idx, coef):
        Z = torch.zeros((idx.shape[0], Dt.shape[0]), dtype=coef.dtype, device="cuda")
        return Z.scatter_add_(1, idx, coef)

    methods = [
        ("GEMM X @ D.T", synced(lambda: Xc @ Dc.T, cp)),
        ("kernel (CuPy)", synced(lambda: mp_encode(Xc, Dc, n_steps=k, gram=Gc), cp)),
        ("kernel, NumPy in/out", synced(
            lambda: mp_encode(X, D, n_steps=k, gram=G, backend="cupy"), cp)),
        ("torch Gram-update loop", synced(
            lambda: torch_codes(*_torch.gram_pursuit(Xt @ Dt.T, Gt, k, True)), torch)),
        ("torch per-step loop", synced(
            lambda: torch_codes(*_torch.product_pursuit(Xt.clone(), Dt, k, True)), torch)),
    ]
    times, codes = interleaved_medians([fn for _, fn in methods], args.repeats)

    m = min(args.check_rows, n)
    ref = mp_encode(X[:m], D, n_steps=k, gram=G, backend="numpy")
    print(f"X ({n} x {args.n_features}) {args.dtype}, {args.n_components} atoms, k={k}, "
          f"block {args.block}, median of {args.repeats} after a warm-up, "
          f"{torch.cuda.get_device_name()}")
    head = (f"{'method':<24} {'time (ms)':>10} {'x GEMM':>8} {'kernel faster':>14} "
            f"{'max |dZ| vs NumPy':>18} {'same support':>13}")
    print(head)
    print("-" * len(head))
    kernel_time = times[1]
    for (name, _), seconds, Z in zip(methods, times, codes, strict=True):
        dz, support = "", ""
        if name != "GEMM X @ D.T":
            Z = Z.cpu().numpy() if isinstance(Z, torch.Tensor) else cp.asnumpy(Z)
            dz = f"{np.abs(Z[:m] - ref).max():.2e}"
            support = f"{np.mean((Z[:m] != 0) == (ref != 0)) * 100:.2f}%"
        print(f"{name:<24} {seconds * 1e3:>10.3f} {seconds / times[0]:>8.2f} "
              f"{seconds / kernel_time:>13.1f}x {dz:>18} {support:>13}")
    identical = kernel_parity(cp, X[:m], D, G, k)
    print(f"\nkernel on the reference's correlations ({m} rows): "
          f"{'bit-identical to NumPy' if identical else 'DIFFERS from NumPy'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
