"""Buffers reused from one training step to the next, for the large CPU temporaries.

Fresh tensors of tens of MB come from pages that the C allocator has just
handed back to the system (it trims its heap once the step's temporaries are
freed), so every step paid for their page faults again: measured on 1024
rows, 6144 latents x 784 features, about 6k faults for the (batch,
n_components) pre-activations and 17k for AuxK's dense temporaries with 3500
dead latents, a step. A workspace belongs to one tensor of the trained
parameters and is freed with it, at the end of training.
"""

import weakref

import torch

__all__ = ["workspace"]


class _Workspace:
    """Named flat buffers, grown on demand, viewed at the shape asked for."""

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, like):
        """An uninitialised (``shape``) tensor of ``like``'s dtype and device.

        The view of ``name``'s buffer is valid until the next ``get`` of that
        name. Off the CPU (where caching allocators already reuse memory)
        a fresh tensor.
        """
        if like.device.type != "cpu":
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        numel = 1
        for size in shape:
            numel *= size
        buf = self.buffers.get(name)
        if buf is None or buf.dtype != like.dtype:
            buf = self.buffers[name] = torch.empty(numel, dtype=like.dtype)
        elif buf.numel() < numel:  # doubled: AuxK's dead latents grow step by step
            buf = self.buffers[name] = torch.empty(max(numel, 2 * buf.numel()),
                                                   dtype=like.dtype)
        return buf[:numel].view(shape)


#: Workspaces by ``id`` of their owner tensor, each dropped when that tensor
#: is (a ``WeakKeyDictionary`` would compare tensors with ``==``).
_workspaces = {}


def workspace(owner):
    """The workspace of the tensor ``owner`` (a trained parameter), created on first use."""
    ws = _workspaces.get(id(owner))
    if ws is None:
        ws = _workspaces[id(owner)] = _Workspace()
        weakref.finalize(owner, _workspaces.pop, id(owner), None)
    return ws
