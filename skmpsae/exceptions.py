"""Warning categories raised by skmpsae.

Every warning skmpsae raises is a :class:`SkmpsaeWarning`, so one filter
silences or escalates all of them.
"""

__all__ = ["DeviceFallbackWarning", "SkmpsaeWarning", "TrainingInterruptedWarning"]


class SkmpsaeWarning(UserWarning):
    """Base class of every warning skmpsae raises.

    Examples
    --------
    >>> import warnings
    >>> from skmpsae.exceptions import SkmpsaeWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", SkmpsaeWarning)  # make them errors, as in tests
    ...     try:
    ...         warnings.warn("stand-in", SkmpsaeWarning)
    ...     except SkmpsaeWarning as exc:
    ...         print("raised:", exc)
    raised: stand-in
    """


class DeviceFallbackWarning(SkmpsaeWarning):
    """A requested device is not available and work moves to another one.

    Raised, for example, when a model saved on a CUDA device is loaded where
    CUDA is not available: it loads on the CPU instead.

    Examples
    --------
    >>> import warnings
    >>> from skmpsae.exceptions import DeviceFallbackWarning, SkmpsaeWarning
    >>> issubclass(DeviceFallbackWarning, SkmpsaeWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeviceFallbackWarning)  # expected on a CPU host
    ...     warnings.warn("cuda is not available; using cpu", DeviceFallbackWarning)
    """


class TrainingInterruptedWarning(SkmpsaeWarning):
    """Training stopped early (Ctrl-C); the estimator holds the last completed step.

    ``fit`` returns normally with this warning, so a notebook or a script
    keeps the partly trained model; with ``checkpoint_dir`` set, calling
    ``fit`` again resumes.

    Examples
    --------
    >>> import warnings
    >>> from skmpsae.exceptions import TrainingInterruptedWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", TrainingInterruptedWarning)
    ...     warnings.warn("training was interrupted", TrainingInterruptedWarning)
    >>> [w.category.__name__ for w in caught]
    ['TrainingInterruptedWarning']
    """
