"""Warning categories raised by skmpsae."""

__all__ = ["DeviceFallbackWarning", "SkmpsaeWarning", "TrainingInterruptedWarning"]


class SkmpsaeWarning(UserWarning):
    """Base class of every warning skmpsae raises."""


class DeviceFallbackWarning(SkmpsaeWarning):
    """A requested device is not available and work moves to another one."""


class TrainingInterruptedWarning(SkmpsaeWarning):
    """Training stopped early (Ctrl-C); the estimator holds the last completed step."""
