"""Fit under torchrun (gloo, CPU) and save each rank's parameters; see test_distributed.py."""

import os
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist
from sklearn.datasets import load_digits

from skmpsae import MatchingPursuitSAE, TopKSAE


def main(out):
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    X = load_digits().data / 16.0  # float64: the same array on every rank
    common = {"n_components": 64, "k": 4, "max_iter": 2, "random_state": 0,
              "device": "cpu"}
    results = {}
    mp = MatchingPursuitSAE(batch_size=32, atom_dropout=0.2, **common).fit(X)
    results.update(mp_components=mp.components_, mp_bias=mp.bias_,
                   mp_loss=np.array(mp.loss_curve_))
    topk = TopKSAE(batch_size=32, **common).fit(X)
    results.update(topk_encoder=topk.encoder_, topk_samples=topk.samples_since_fired_)
    # Each rank streams its own shard, of uneven length: rank 0 has more chunks.
    shard = np.array_split(X, 2)[rank]
    chunks = np.array_split(shard, 5 if rank == 0 else 3)
    stream = MatchingPursuitSAE(batch_size=64, **common).fit(chunks)
    results.update(stream_components=stream.components_)
    np.savez(Path(out) / f"rank{rank}.npz", **results)
    # Both ranks have saved; then leave without the interpreter's teardown. Gloo's
    # worker threads race it now and then (measured: 1 run in 8 beside a busy core
    # aborted with "terminate called without an active exception" after both
    # files were written), which failed the fixture though the fit was done.
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
