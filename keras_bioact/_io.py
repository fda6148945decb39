"""File writing: the one atomic write of keras-bioact."""

import os
import tempfile

__all__ = ["atomic_write"]


def _umask():
    """The process's umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, data):
    """Write `data` (bytes, or text written as UTF-8) to `path` atomically: a reader sees the old
    file or the whole new one, never a part (a temporary file in the same folder, flushed to disk,
    then `os.replace`). Creates the folder; the file gets the permissions `open(path, "w")` would
    give it. Returns `path`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp's 0o600 is for the temporary name only
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
