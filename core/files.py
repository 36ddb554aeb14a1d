"""Writing files the user asked for: whole or not at all, with the mode the user's umask gives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path | str, text: str, remove_stale: bool = False) -> None:
    """Write `text` to `path` through a temp file and a rename, so a crash leaves the old file or
    the new one, never half of one.

    The file keeps the mode of the file it replaces, else gets what the umask allows (mkstemp's
    0600 would make a shared database unreadable to others). With `remove_stale`, temp files that a
    killed writer left beside `path` are removed first; call it only under the file's lock.
    """
    path = Path(path)
    if remove_stale:
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def cache_dir() -> Path:
    """This machine's diffaccel files (live searches, saved test pipelines): $DIFFACCEL_CACHE or
    ~/.cache/diffaccel."""
    return Path(os.environ.get("DIFFACCEL_CACHE") or Path.home() / ".cache" / "diffaccel")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def save_user_file(path: Path | str, text: str) -> Path:
    """Write a file the user asked for; a path that cannot be written is a clear error, not a
    traceback, and leaves nothing behind.

    A symlink is written through (its target is replaced, the link stays); a device or pipe
    (`-o /dev/stdout`) is written into, not replaced by a file; a file without write permission is
    refused rather than replaced. Missing parent directories are created.
    """
    from core.errors import DiffaccelError

    path = Path(path).expanduser()
    if path.is_dir():
        raise DiffaccelError(f"{path} is a directory: name a file, e.g. {path / 'pipeline.py'}")
    try:
        if path.exists() and not path.is_file():  # a device, a pipe (/dev/stdout): write into it
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            return path
        target = path.resolve() if path.is_symlink() else path
        if target.is_file() and not target.stat().st_mode & 0o222:
            raise DiffaccelError(f"{path} is read-only: choose another path, or make it writable first")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text)
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise DiffaccelError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}; "
                             "choose another path") from None
    return path
