"""Data-parallel training over ``torch.distributed`` (launched with ``torchrun``).

When a process group is initialised with more than one rank, every rank
trains the same model on its own rows: after each backward pass the gradients
are summed across ranks, each weighted by its number of rows, and divided by
the global number of rows, which is exactly the gradient of the mean loss
over the global batch. With identical gradients and the same Adam state,
every rank takes the same step. What a rank's hooks do with data of its own
(reviving dead latents, thresholds) is made common by broadcasting rank 0's
parameters, buffers and optimizer moments at each epoch's end. gloo serves
CPU tensors, nccl CUDA tensors.
"""

import torch

__all__ = ["Sync"]


class Sync:
    """Collectives of one data-parallel fit (``None`` stands for a single process)."""

    def __init__(self, dist, device):
        self.dist = dist
        self.world = dist.get_world_size()
        self.rank = dist.get_rank()
        # nccl only reduces CUDA tensors; gloo reduces CPU tensors.
        self.device = device if dist.get_backend() == "nccl" else torch.device("cpu")

    @classmethod
    def detect(cls, device):
        """A ``Sync`` when a process group of several ranks is initialised, else None."""
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
            return None
        return cls(dist, device)

    def _reduce(self, tensor, op=None):
        buf = tensor.to(self.device)
        self.dist.all_reduce(buf, op=op or self.dist.ReduceOp.SUM)
        if buf is not tensor:
            tensor.copy_(buf)
        return tensor

    def counts(self, n_local, stop):
        """Global rows of this step and whether any rank asked to stop."""
        t = torch.tensor([float(n_local), float(stop)], dtype=torch.float64)
        self._reduce(t)
        return int(t[0]), bool(t[1] > 0)

    def average_gradients(self, params, n_local, n_total):
        """Replace each gradient by the row-weighted mean over ranks."""
        grads = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        flat = torch.cat([g.reshape(-1) for g in grads]) * n_local
        self._reduce(flat)
        flat /= n_total
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum_(self, tensor):
        """In-place sum across ranks."""
        return self._reduce(tensor)

    def max_(self, tensor):
        """In-place maximum across ranks."""
        return self._reduce(tensor, op=self.dist.ReduceOp.MAX)

    def broadcast_(self, tensors):
        """Overwrite ``tensors`` with rank 0's."""
        for t in tensors:
            buf = t.to(self.device)
            self.dist.broadcast(buf, src=0)
            if buf is not t:
                t.copy_(buf)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank (pickled)."""
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_same(self, value, what):
        """Raise on every rank unless all ranks hold the same ``value``."""
        values = [None] * self.world
        self.dist.all_gather_object(values, value)
        if len(set(values)) > 1:
            raise ValueError(
                f"{what} differs across ranks ({values}); under torchrun every rank passes "
                "the same array (each trains on its part of each global batch), or its own "
                "iterable of chunks."
            )

    def state_tensors(self, state):
        """Parameters, buffers and Adam moments: what makes the ranks' models equal."""
        tensors = []
        for p in state.params.values():
            tensors.append(p.data)
            entry = state.optimizer.state.get(p)
            if entry:
                tensors.extend(entry[key] for key in ("exp_avg", "exp_avg_sq"))
        return tensors
