"""Mini-batch training loop shared by the SAE estimators.

An estimator provides hooks (see ``skmpsae._base.BaseSAE``): the loss of a
batch, what to do after each optimizer step, and at the end of an epoch. This
module owns the parameters, the Adam optimizer, the schedule, shuffling, the
progress bar and the bookkeeping of which latents fired.
"""

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["EpochResult", "TrainState", "run_epoch"]


class TrainState:
    """Parameters being trained, their optimizer, buffers and the step counter.

    ``params`` holds every array by name: the trained ones as ``nn.Parameter``
    and the ``buffer_names`` (state such as thresholds or penalty weights,
    updated by the estimator's hooks) as plain tensors outside the optimizer.
    """

    def __init__(self, arrays, *, learning_rate, device, optimizer_state=None, step=0,
                 buffer_names=()):
        self.params = {}
        for name, value in arrays.items():
            tensor = torch.as_tensor(np.ascontiguousarray(value)).to(device)
            self.params[name] = tensor if name in buffer_names else torch.nn.Parameter(tensor)
        self.learning_rate = learning_rate
        trained = [p for name, p in self.params.items() if name not in buffer_names]
        self.optimizer = torch.optim.Adam(trained, lr=learning_rate)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        self.step = step

    def arrays(self):
        """Parameters as NumPy arrays (copies, on the CPU)."""
        return {name: p.detach().cpu().numpy().copy() for name, p in self.params.items()}

    def optimizer_state(self):
        """Optimizer state with every tensor on the CPU (picklable anywhere)."""
        state = self.optimizer.state_dict()
        return {
            "state": {
                key: {name: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                      for name, v in entry.items()}
                for key, entry in state["state"].items()
            },
            "param_groups": state["param_groups"],
        }

    def reset_moments(self, name, rows):
        """Forget Adam's moments of some rows of a parameter (revived latents)."""
        entry = self.optimizer.state.get(self.params[name])
        if entry:
            for key in ("exp_avg", "exp_avg_sq"):
                entry[key][rows] = 0


class EpochResult(NamedTuple):
    """Mean loss over an epoch and how often each latent fired (n_components,)."""

    loss: float
    fired: np.ndarray


def _batches(n_samples, batch_size, rng):
    order = rng.permutation(n_samples)
    for start in range(0, n_samples, batch_size):
        yield np.sort(order[start:start + batch_size])


def run_epoch(estimator, state, X, *, rng, schedule, epoch, n_components, progress=None):
    """One pass over ``X`` in shuffled mini-batches; returns an ``EpochResult``."""
    device = next(iter(state.params.values())).device
    total, seen = 0.0, 0
    fired = torch.zeros(n_components, dtype=torch.int64, device=device)
    batch_size = min(estimator.batch_size, X.shape[0])
    for rows in _batches(X.shape[0], batch_size, rng):
        xb = torch.from_numpy(np.ascontiguousarray(X[rows])).to(device)
        for group in state.optimizer.param_groups:
            group["lr"] = state.learning_rate * schedule(state.step)
        loss, batch_fired = estimator._batch_loss(state.params, xb, epoch=epoch, rng=rng)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        with torch.no_grad():
            estimator._after_step(state.params)
        state.step += 1
        fired += batch_fired
        total += float(loss.detach()) * len(rows)
        seen += len(rows)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total / seen:.4g}", refresh=False)
    return EpochResult(total / max(seen, 1), fired.cpu().numpy())
