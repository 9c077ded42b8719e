"""Warning categories raised by skmpsae."""

__all__ = ["DeviceFallbackWarning", "SkmpsaeWarning"]


class SkmpsaeWarning(UserWarning):
    """Base class of every warning skmpsae raises."""


class DeviceFallbackWarning(SkmpsaeWarning):
    """A requested device is not available and work moves to another one."""
