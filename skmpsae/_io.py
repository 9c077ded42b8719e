"""File-system helpers shared by model persistence and training checkpoints.

Both write a folder that must appear whole or not at all, read JSON that may
have been damaged or crafted, and must never touch a file they did not write.
"""

import ctypes
import errno
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_text", "open_folder", "read_regular_file", "replace_folder",
           "to_jsonable"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: Deepest JSON nesting any skmpsae file uses is 4; anything far deeper is not ours.
MAX_JSON_DEPTH = 16


def to_jsonable(value):
    """``value`` with NumPy scalars, tuples and path-likes turned into JSON types."""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def json_depth(value):
    """Nesting depth of a parsed JSON value (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_folder(path):
    """A descriptor of the folder ``path``, to read its files through.

    They then come from one folder even if another process swaps a new one
    into ``path`` meanwhile.
    """
    return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def read_regular_file(path, max_bytes, *, dir_fd=None):
    """Bytes of ``path`` if it is a regular file (not a link) of at most ``max_bytes``.

    Raises ``OSError`` (``FileNotFoundError`` when missing) with the reason.
    Opening with ``O_NOFOLLOW`` and checking the open descriptor leaves no
    window between the check and the read; ``O_NONBLOCK`` keeps a FIFO from
    blocking the open.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"{Path(path).name} is a symbolic link, not a regular file") from exc
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(f"{Path(path).name} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise OSError(f"{Path(path).name} holds {info.st_size} bytes, more than the "
                          f"{max_bytes} a skmpsae file of this kind can need")
        return handle.read(info.st_size)


def _exchange(a, b):
    """Swap two paths in one step (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # a file system without exchange (some network ones)
    raise OSError(err, os.strerror(err), os.fspath(b))


def _inode(path):
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def replace_folder(fill, target, *, may_replace):
    """Build a folder with ``fill(tmp)`` and put it at ``target`` in one step.

    ``may_replace(path)`` must return True for an existing ``target`` that
    this code owns (it is called again on what was swapped out before that is
    deleted). An existing empty folder is replaced. Where the file system can
    exchange two paths, ``target`` holds the old or the new folder at every
    instant; elsewhere the old one is moved aside first. Concurrent writers
    end with one of their folders at ``target`` and each removes only what it
    swapped out.
    """
    target = Path(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    owned = True  # tmp holds our folder (False once it holds what was swapped out)
    try:
        fill(tmp)
        for _ in range(8):  # retried only when another writer got in between
            try:
                os.rename(tmp, target)  # atomic when target is absent or an empty folder
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            before = _inode(target)
            if not may_replace(target):
                if _inode(target) != before:
                    continue  # replaced by another writer while it was checked
                raise FileExistsError(errno.EEXIST, "not a folder this code wrote",
                                      os.fspath(target))
            if _exchange(tmp, target):
                # tmp now holds what was at target; remove it only if it is ours
                # (someone may have added files since the check).
                owned = may_replace(tmp)
                return
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                        dir=target.parent))
            try:
                os.replace(target, old / "model")
            except FileNotFoundError:
                shutil.rmtree(old, ignore_errors=True)
                continue  # another writer moved it; try again
            try:
                os.rename(tmp, target)
            except OSError:
                os.replace(old / "model", target)  # put it back; another writer won
                shutil.rmtree(old, ignore_errors=True)
                continue
            shutil.rmtree(old, ignore_errors=True)
            return
        raise FileExistsError(errno.EEXIST, "other writers kept replacing it",
                              os.fspath(target))
    finally:
        if owned and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
