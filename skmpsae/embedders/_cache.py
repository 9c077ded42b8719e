"""Where skmpsae keeps what it computes once per machine (converted weights, embeddings)."""

import os
from pathlib import Path

__all__ = ["cache_dir"]

CACHE_ENV = "SKMPSAE_CACHE_DIR"


def cache_dir(folder=None) -> Path:
    """The cache folder: ``folder`` if given, else ``$SKMPSAE_CACHE_DIR``, else the user cache.

    The user cache is ``$XDG_CACHE_HOME/skmpsae``, or ``~/.cache/skmpsae``.
    Nothing is created here.
    """
    if folder is not None:
        return Path(os.fspath(folder)).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "skmpsae"
