"""Learning-rate schedules: linear warmup then cosine decay, or constant."""

import math

__all__ = ["constant", "warmup_cosine"]

#: Final learning rate as a share of the peak (the paper decays 5e-4 to 1e-6).
FINAL_LR_RATIO = 2e-3


def warmup_cosine(total_steps, warmup_fraction):
    """Multiplier of the peak rate at optimizer step ``t`` (0-based)."""
    warmup = max(1, int(round(warmup_fraction * total_steps)))
    decay = max(1, total_steps - warmup)

    def factor(t):
        if t < warmup:
            return FINAL_LR_RATIO + (1 - FINAL_LR_RATIO) * (t + 1) / warmup
        progress = min(1.0, (t - warmup) / decay)
        return FINAL_LR_RATIO + (1 - FINAL_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def constant(t):
    """Constant schedule (``partial_fit``, where the total length is unknown)."""
    return 1.0
