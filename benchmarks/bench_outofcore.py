"""Out-of-core fit: one epoch over a 2 GB float32 memory-mapped array.

Prints the peak resident memory of the fit above the interpreter's baseline
(bar: under 1 GB, SPEC/issue "Scale") next to the throughput of the same fit
on an in-memory array of the same rows, both measured in fresh subprocesses of
this script (so one fit's memory does not count in the other's).

    python benchmarks/bench_outofcore.py [--gigabytes 2] [--folder /tmp]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_FEATURES = 768
PARAMS = {"n_components": 1536, "k": 16, "max_iter": 1, "batch_size": 1024,
          "random_state": 0, "device": "cpu", "revive_dead": False}
IN_MEMORY_ROWS = 120_000


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def write_data(path, n_rows, seed=0):
    """Sparse combinations of 2048 directions plus noise, written in 64 MB chunks."""
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((2048, N_FEATURES)).astype(np.float32)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(n_rows, N_FEATURES))
    step = (64 << 20) // (4 * N_FEATURES)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        codes = np.zeros((stop - start, atoms.shape[0]), dtype=np.float32)
        rows = np.repeat(np.arange(stop - start), 8)
        codes[rows, rng.integers(0, atoms.shape[0], rows.size)] = rng.exponential(
            1.0, rows.size)
        out[start:stop] = codes @ atoms + 0.05 * rng.standard_normal(
            (stop - start, N_FEATURES), dtype=np.float32)
        out.flush()
        out._mmap.madvise(__import__("mmap").MADV_DONTNEED)
    del out


def child(mode, path):
    """Fit one epoch and print a JSON line: seconds, rows, peak RSS above baseline."""
    from skmpsae import MatchingPursuitSAE

    warm = np.random.default_rng(1).standard_normal((4096, N_FEATURES)).astype(np.float32)
    MatchingPursuitSAE(**{**PARAMS, "n_components": 256}).fit(warm)  # imports and JIT
    del warm
    X = np.load(path, mmap_mode="r")
    if mode == "memory":
        X = np.array(X[:IN_MEMORY_ROWS])
    baseline = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    start = time.perf_counter()
    sae = MatchingPursuitSAE(**PARAMS).fit(X)
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") - baseline
    print(json.dumps({"seconds": seconds, "rows": int(X.shape[0]), "peak": peak,
                      "bytes": int(X.nbytes), "loss": sae.loss_curve_[-1]}))


def run_child(mode, path):
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--folder", default=tempfile.gettempdir())
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    n_rows = int(args.gigabytes * 2**30 // (4 * N_FEATURES))
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(folder) / "X.npy"
        t0 = time.perf_counter()
        write_data(path, n_rows)
        print(f"wrote {n_rows} x {N_FEATURES} float32 ({path.stat().st_size / 2**30:.2f} GiB) "
              f"in {time.perf_counter() - t0:.1f} s; MatchingPursuitSAE {PARAMS}")
        mem = run_child("memory", path)
        mm = run_child("memmap", path)
    print(f"{'fit (one epoch)':28s} {'rows':>9s} {'data GiB':>9s} {'time (s)':>9s} "
          f"{'rows/s':>9s} {'x memory':>9s} {'peak RSS above baseline':>24s}")
    for name, r in (("in-memory array", mem), ("memory-mapped array", mm)):
        rate = r["rows"] / r["seconds"]
        print(f"{name:28s} {r['rows']:9d} {r['bytes'] / 2**30:9.2f} {r['seconds']:9.1f} "
              f"{rate:9.0f} {rate / (mem['rows'] / mem['seconds']):9.2f} "
              f"{r['peak'] / 2**20:20.0f} MiB")
    verdict = "PASS" if mm["peak"] < 2**30 else "FAIL"
    print(f"  memmap peak RSS above baseline < 1 GiB: {mm['peak'] / 2**20:.0f} MiB   {verdict}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
