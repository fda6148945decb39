"""Optuna storages for searches, with damaged files refused instead of silently replaced.

`open_storage(url)` gives an Optuna storage for an SQLite file, a journal file or an RDB
server. Before Optuna touches a file, it is checked:

- an existing SQLite or journal file of 0 bytes is refused (Optuna would take it for a new,
  empty study and start again from trial 0);
- an SQLite file whose header is not SQLite's is refused (random bytes, another format), and so
  is one SQLite cannot read (truncated: "database disk image is malformed");
- a journal whose last record is incomplete (a writer killed mid-append) is repaired under the
  journal's lock: the partial record, which no reader can use, is moved to
  `<journal>.partial-<offset>` with a warning, so the next append does not glue a new record
  to it (which would make every record after it unreadable). Every complete record is kept.

Errors are `StorageError` (a `ValueError`) naming the URL and the file.
"""

from __future__ import annotations

import os
import pathlib
import warnings

__all__ = ["DEFAULT_HEARTBEAT", "StorageError", "default_storage", "open_storage", "repair_journal_tail"]

# RDB storages record a heartbeat every `interval` s; a RUNNING trial whose heartbeat is older
# than `grace` s is failed by the next trial start (works across machines).
DEFAULT_HEARTBEAT = (10, 60)
_SQLITE_MAGIC = b"SQLite format 3\x00"


class StorageError(ValueError):
    """A storage URL or file that cannot be used; the message names it."""


def default_storage(study_name):
    """The embedded default: an SQLite file `<study_name>.db` in the working directory."""
    return f"sqlite:///{study_name}.db"


def open_storage(url, heartbeat=DEFAULT_HEARTBEAT):
    """An Optuna storage for `url`.

    * `sqlite:///path.db`, `postgresql+psycopg2://...`, `mysql+pymysql://...`: any SQLAlchemy
      URL, as `optuna.storages.RDBStorage` with a heartbeat (`heartbeat = (interval, grace)`
      seconds, or None for none), so trials of killed workers are failed;
    * `journal:///path.log` (relative; `journal:////abs/path.log` absolute), or a path ending
      in `.log`/`.journal`: Optuna's `JournalFileBackend` (append-only file with a lock file;
      several processes on one machine). Killed workers are detected by process id on resume;
    * a plain path ending in `.db`/`.sqlite`/`.sqlite3`: that SQLite file.
    """
    import optuna

    if not isinstance(url, str) or not url:
        raise StorageError(f"storage must be a non-empty URL or path, got {url!r}")
    if url.startswith("journal:"):
        path = url[len("journal:") :]
        path = path[3:] if path.startswith("///") else path  # like sqlite:///rel, sqlite:////abs
        return _journal(path, url)
    if "://" not in url:
        if url.endswith((".log", ".journal")):
            return _journal(url, url)
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            url = f"sqlite:///{url}"
        else:
            raise StorageError(
                f"storage {url!r}: not a URL; use sqlite:///FILE.db, journal:///FILE.log or an RDB URL"
            )
    if url.startswith("sqlite:///"):
        _check_sqlite_file(url, pathlib.Path(url[len("sqlite:///") :]))
    kwargs = {}
    if heartbeat:
        kwargs.update(heartbeat_interval=int(heartbeat[0]), grace_period=int(heartbeat[1]))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    import sqlalchemy.exc

    with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except sqlalchemy.exc.DatabaseError as e:
            if not url.startswith("sqlite:///"):
                raise
            reason = str(getattr(e, "orig", e)).splitlines()[0]
            raise StorageError(
                f"storage {url!r}: {url[len('sqlite:///') :]} is damaged ({reason}); it is not replaced. "
                "Restore it from a backup, or delete it to start a new study."
            ) from None


def _check_sqlite_file(url, path):
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    if not parent.is_dir():
        raise StorageError(f"storage {url!r}: directory {parent} does not exist")
    if not path.exists():
        return
    if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
        raise StorageError(f"storage {url!r}: {path} is not a readable and writable file")
    size = path.stat().st_size
    if size == 0:
        raise StorageError(
            f"storage {url!r}: {path} is empty (0 bytes), not a study database; it is not replaced. "
            "If it held a study, restore it from a backup; to start a new study, delete the file."
        )
    with open(path, "rb") as f:
        header = f.read(len(_SQLITE_MAGIC))
    if header != _SQLITE_MAGIC:
        raise StorageError(
            f"storage {url!r}: {path} is not an SQLite database (damaged, or another kind of file); "
            "it is not replaced"
        )


def _journal(path, url):
    import optuna

    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise StorageError(f"storage {url!r}: directory {path.parent} does not exist")
    if path.exists():
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            raise StorageError(f"storage {url!r}: {path} is not a readable and writable file")
        if path.stat().st_size == 0:
            raise StorageError(
                f"storage {url!r}: the journal {path} is empty (0 bytes); it is not replaced. "
                "If it held a study, restore it from a backup; to start a new study, delete the file."
            )
    lock = optuna.storages.journal.JournalFileOpenLock(str(path))
    backend = _repairing_backend(str(path), lock)
    repair_journal_tail(str(path), lock)
    return optuna.storages.JournalStorage(backend)


def repair_journal_tail(path, lock=None):
    """Move an incomplete last record of the journal `path` aside (see the module docstring).

    Returns the path of the file the partial record was moved to, or None if the journal
    ended with a complete record. Takes the journal's lock unless `lock` is None.
    """
    if lock is not None:
        lock.acquire()
    try:
        return _repair_tail_locked(path)
    finally:
        if lock is not None:
            lock.release()


def _repair_tail_locked(path):
    size = os.path.getsize(path) if os.path.exists(path) else 0
    if size == 0:
        return None
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        start = max(0, size - (1 << 20))  # look back at most 1 MiB for the last newline
        while True:
            f.seek(start)
            chunk = f.read(size - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0 or start == 0:
                break
            start = max(0, start - (1 << 20))
        keep = start + cut + 1 if cut >= 0 else 0
        f.seek(keep)
        partial = f.read()
        backup = f"{path}.partial-{keep}"
        with open(backup, "wb") as out:
            out.write(partial)
            out.flush()
            os.fsync(out.fileno())
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(
        f"journal {path}: its last record was incomplete ({len(partial)} bytes, a writer killed "
        f"mid-append?); moved it to {backup}. Every complete record is kept.",
        stacklevel=3,
    )
    return backup


_BACKEND = None


def _repairing_backend(path, lock):
    """Optuna's journal file backend whose every append first repairs an incomplete last record
    (the class is made on first use, so that importing this module does not import Optuna)."""
    global _BACKEND
    if _BACKEND is None:
        import json

        import optuna

        class RepairingJournalFileBackend(optuna.storages.journal.JournalFileBackend):
            def __init__(self, file_path, lock_obj):
                super().__init__(file_path, lock_obj=lock_obj)
                self._repair_lock = lock_obj

            def append_logs(self, logs):
                lines = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
                self._repair_lock.acquire()
                try:
                    _repair_tail_locked(self._file_path)
                    with open(self._file_path, "ab") as f:
                        f.write(lines.encode("utf-8"))
                        f.flush()
                        os.fsync(f.fileno())
                finally:
                    self._repair_lock.release()

        _BACKEND = RepairingJournalFileBackend
    return _BACKEND(path, lock)
