"""Resolution of the ``device`` parameter to a torch device."""

import warnings

from .exceptions import DeviceFallbackWarning

__all__ = ["resolve_device", "validate_loaded_device"]


def resolve_device(device):
    """``"auto"`` gives CUDA when available, else CPU; an unusable device raises."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type not in ("cpu", "cuda"):
        # The pursuit engines and the training loop run on the CPU and CUDA only
        # ('mps' lacks float64, 'meta' holds no data).
        raise ValueError(
            f"device={device!r} is not supported; skmpsae runs on 'cpu' and 'cuda' "
            "('auto', 'cpu', 'cuda' or 'cuda:N')."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here; "
            "use device='cpu' or device='auto'."
        )
    return resolved


def validate_loaded_device(device):
    """Device for a model loaded from disk: a missing GPU falls back to CPU, with a warning."""
    import torch

    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"This model was saved with device={device!r} but CUDA is not available; "
            "it is loaded with device='cpu'.",
            DeviceFallbackWarning,
            stacklevel=3,
        )
        return "cpu"
    return device
