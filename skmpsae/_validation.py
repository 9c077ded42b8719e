"""Input errors that always say which argument is at fault."""

from contextlib import contextmanager

__all__ = ["naming"]


@contextmanager
def naming(name):
    """Prefix ``name: `` to ValueError/TypeError messages raised inside the block.

    scikit-learn's validation names the input in some messages ("Input X
    contains NaN") but not in others ("Found array with 0 sample(s)",
    "could not convert string to float").
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if message.startswith(f"{name}:"):
            raise
        raise type(exc)(f"{name}: {message}") from exc
