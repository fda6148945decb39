"""Optuna storages for searches: files that are not a study's are refused, never taken over or
silently replaced, and a password in a storage URL never leaves the process.

`open_storage(url)` gives an Optuna storage for an SQLite file, a journal file or an RDB
server. Before Optuna touches a file, it is checked:

- an existing SQLite or journal file of 0 bytes is refused (Optuna would take it for a new,
  empty study and start again from trial 0);
- an SQLite file whose header is not SQLite's is refused (random bytes, another format), and so
  is one SQLite cannot read (truncated: "database disk image is malformed"), and an SQLite
  database with tables but none of Optuna's (another program's: Optuna would add its tables);
- a non-empty journal whose first record is not an Optuna journal record (a log file of another
  program, say) is refused, and left byte for byte as it was;
- `sqlite:///:memory:` (and `sqlite://`) is refused: the study would be lost at exit;
- a directory or file that cannot be written is reported as such ("permission denied",
  "read-only file system"), naming the path, not as damage;
- a journal whose last record is incomplete (a writer killed mid-append) is repaired under the
  journal's lock: the partial record, which no reader can use, is moved to
  `<journal>.partial-<offset>` with a warning, so the next append does not glue a new record
  to it (which would make every record after it unreadable). Every complete record is kept.

Errors are `StorageError` (a `BioactError`, so a `ValueError`) naming the URL, shown by
`display_url` (password hidden), and the file. A password is best left out of the URL:
PostgreSQL's client reads it from the `PGPASSWORD` environment variable or `~/.pgpass`.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import urllib.parse
import warnings

from keras_bioact.errors import BioactError
from keras_bioact.search.spec.checks import default_storage

__all__ = [
    "DEFAULT_HEARTBEAT",
    "JOURNAL_LOCK_GRACE",
    "StorageError",
    "default_storage",
    "display_url",
    "journal_lock_grace",
    "open_storage",
    "redact",
    "repair_journal_tail",
]

# RDB storages record a heartbeat every `interval` s; a RUNNING trial whose heartbeat is older
# than `grace` s is failed by the next trial start (works across machines).
DEFAULT_HEARTBEAT = (10, 60)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OPTUNA_TABLES = {"studies", "version_info"}
_JOURNAL_MAGIC = b'{"op_code":'  # every record of Optuna's journal starts so
_SECRET_KEY = re.compile(r"pass|secret|token", re.IGNORECASE)
_LOCAL = ("sqlite:", "journal:")


class StorageError(BioactError):
    """A storage URL or file that cannot be used; the message names it (password hidden)."""


def _secret_spans(url):
    """`(start, end)` of the password and of `password=`-like query values in an RDB URL."""
    if not isinstance(url, str) or "://" not in url or url.startswith(_LOCAL):
        return []
    start = url.index("://") + 3
    end = url.find("?", start)
    end = len(url) if end < 0 else end
    spans = []
    at = url.rfind("@", start, end)  # the last '@': an unencoded '@' in the password stays hidden
    colon = url.find(":", start, at) if at >= 0 else -1
    if colon >= 0:
        spans.append((colon + 1, at))
    pos = end + 1
    for item in url[end + 1 :].split("&") if end < len(url) else []:
        key, eq, value = item.partition("=")
        if eq and value and _SECRET_KEY.search(key):
            spans.append((pos + len(key) + 1, pos + len(item)))
        pos += len(item) + 1
    return spans


def display_url(url):
    """`url` as every message, log, progress line and stored attribute shows it: the password
    (and any `password=`-like query value) replaced by `***`, like SQLAlchemy's
    `make_url(url).render_as_string(hide_password=True)` but also for a password holding an
    unencoded '@' and for query values. Paths and SQLite/journal URLs are returned as they are."""
    if not isinstance(url, str):
        return url
    for start, end in sorted(_secret_spans(url), reverse=True):
        url = url[:start] + "***" + url[end:]
    return url


def redact(text, url):
    """`text` (an error message, say) with `url` shown by `display_url` and its secrets, as
    written or percent-decoded, replaced by `***`."""
    text = str(text)
    if not isinstance(url, str):
        return text
    secrets = set()
    for start, end in _secret_spans(url):
        raw = url[start:end]
        secrets |= {raw, urllib.parse.unquote(raw), urllib.parse.unquote_plus(raw)}
    text = text.replace(url, display_url(url))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def open_storage(url, heartbeat=DEFAULT_HEARTBEAT, create=True):
    """An Optuna storage for `url`.

    * `sqlite:///path.db`, `postgresql+psycopg2://...`, `mysql+pymysql://...`: any SQLAlchemy
      URL, as `optuna.storages.RDBStorage` with a heartbeat (`heartbeat = (interval, grace)`
      seconds, or None for none), so trials of killed workers are failed;
    * `journal:///path.log` (relative; `journal:////abs/path.log` absolute), or a path ending
      in `.log`/`.journal`: Optuna's `JournalFileBackend` (append-only file with a lock file;
      several processes on one machine). Killed workers are detected by process id on resume;
    * a plain path ending in `.db`/`.sqlite`/`.sqlite3`: that SQLite file.

    With `create=False` (reading a study), a missing SQLite or journal file is an error
    instead of a new, empty study.
    """
    if not isinstance(url, str) or not url:
        raise StorageError(f"storage must be a non-empty URL or path, got {type(url).__name__} {url!r}")
    shown = display_url(url)
    if url.startswith("journal:"):
        path = url[len("journal:") :]
        path = path[3:] if path.startswith("///") else path  # like sqlite:///rel, sqlite:////abs
        return _journal(path, shown, create)
    if "://" not in url:
        if url.endswith((".log", ".journal")):
            return _journal(url, shown, create)
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            url = shown = f"sqlite:///{url}"
        else:
            raise StorageError(
                f"storage {url!r}: not a URL; use sqlite:///FILE.db, journal:///FILE.log or an RDB URL"
            )
    path = None
    if url.startswith("sqlite://"):
        path = _sqlite_path(url)
        _check_sqlite_file(shown, path, create)
    elif url.partition("?")[0].count("@") > 1:
        raise StorageError(
            f"storage {shown!r}: '@' in the user name or password must be percent-encoded (%40); "
            "better, leave the password out of the URL (PostgreSQL: PGPASSWORD or ~/.pgpass)"
        )
    import optuna

    kwargs = {}
    if heartbeat:
        kwargs.update(heartbeat_interval=int(heartbeat[0]), grace_period=int(heartbeat[1]))
    engine_kwargs = {"connect_args": {"timeout": 60}} if path is not None else {}
    with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except Exception as e:  # unreachable server, missing driver, unwritable or damaged file
            kind = type(e).__name__
            reason = redact(" ".join(str(getattr(e, "orig", None) or e).split()), url)
    if path is not None and ("malformed" in reason or "not a database" in reason):
        raise StorageError(
            f"storage {shown!r}: {path} is damaged ({reason}); it is not replaced. "
            "Restore it from a backup, or delete it to start a new study."
        )
    raise StorageError(f"storage {shown!r}: cannot open {path or 'it'}: {kind}: {reason}")


def _sqlite_path(url):
    """The file of an `sqlite://` URL; an in-memory database is refused."""
    path, _, query = url[len("sqlite://") :].partition("?")
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:") or path.startswith("file::memory:") or "mode=memory" in query:
        raise StorageError(
            f"storage {url!r}: an in-memory SQLite database; the study would be lost when the "
            "process exits. Use a file: sqlite:///FILE.db"
        )
    return pathlib.Path(path)


def _unwritable(path):
    """Why this process cannot write (create files in) `path`, or None."""
    if os.access(path, os.W_OK | (os.X_OK if os.path.isdir(path) else 0)):
        return None
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def _check_file(shown, path, create, kind):
    """Checks shared by SQLite and journal files: the directory exists and, to write, can be
    written (both storages add files next to `path`), and an existing `path` is a non-empty,
    readable (and to write, writable) file."""
    parent = path.parent
    if not parent.is_dir():
        raise StorageError(f"storage {shown!r}: directory {parent} does not exist")
    why = _unwritable(parent) if create else None
    if why and not path.exists():
        raise StorageError(f"storage {shown!r}: cannot create {path}: directory {parent}: {why}")
    if why:
        raise StorageError(
            f"storage {shown!r}: cannot write next to {path} (the {kind} adds files there): "
            f"directory {parent}: {why}"
        )
    if not path.exists():
        if not create:
            raise StorageError(f"storage {shown!r}: no such file {path}")
        return False
    if not path.is_file():
        raise StorageError(f"storage {shown!r}: {path} is not a file")
    if not os.access(path, os.R_OK):
        raise StorageError(f"storage {shown!r}: cannot read {path}: permission denied")
    why = _unwritable(path) if create else None
    if why:
        raise StorageError(f"storage {shown!r}: cannot write {path}: {why}")
    if path.stat().st_size == 0:
        raise StorageError(
            f"storage {shown!r}: the {kind} {path} is empty (0 bytes), not a study; it is not replaced. "
            "If it held a study, restore it from a backup; to start a new study, delete the file."
        )
    return True


def _check_sqlite_file(shown, path, create):
    import sqlite3

    if not _check_file(shown, path, create, "SQLite database"):
        return
    with open(path, "rb") as f:
        header = f.read(len(_SQLITE_MAGIC))
    if header != _SQLITE_MAGIC:
        raise StorageError(
            f"storage {shown!r}: {path} is not an SQLite database (damaged, or another kind of file); "
            "it is not replaced"
        )
    # immutable: read the file as it is, without locks, journals or WAL files (writes nothing)
    uri = f"{path.absolute().as_uri()}?mode=ro&immutable=1"
    try:
        with sqlite3.connect(uri, uri=True) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise StorageError(
            f"storage {shown!r}: {path} is damaged ({e}); it is not replaced. "
            "Restore it from a backup, or delete it to start a new study."
        ) from None
    if tables and not _OPTUNA_TABLES <= tables:
        listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StorageError(
            f"storage {shown!r}: {path} is an SQLite database of another program (tables: {listed}); "
            "refusing to add Optuna's tables to it"
        )


JOURNAL_LOCK_GRACE = 30
"""Seconds a journal's lock file may stay unchanged before a waiting process takes it for the
lock of a killed process and breaks it (Optuna's default). The environment variable
`KERAS_BIOACT_JOURNAL_LOCK_GRACE` sets another value (an integer of at least 3), for example for
tests that kill writers on purpose; a lock is held only while one record is appended."""


def journal_lock_grace():
    """`JOURNAL_LOCK_GRACE`, or `KERAS_BIOACT_JOURNAL_LOCK_GRACE` when that is set."""
    raw = os.environ.get("KERAS_BIOACT_JOURNAL_LOCK_GRACE")
    if raw is None:
        return JOURNAL_LOCK_GRACE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 3:
        raise StorageError(f"KERAS_BIOACT_JOURNAL_LOCK_GRACE must be an integer >= 3 (seconds), got {raw!r}")
    return value


def _journal(path, shown, create):
    import optuna

    path = pathlib.Path(path)
    if _check_file(shown, path, True, "journal"):  # the lock file is created even to read
        _check_journal_file(shown, path)
    elif not create:
        raise StorageError(f"storage {shown!r}: no such file {path}")
    try:
        lock = optuna.storages.journal.JournalFileOpenLock(str(path), grace_period=journal_lock_grace())
        backend = _repairing_backend(str(path), lock)
        repair_journal_tail(str(path), lock)
        return optuna.storages.JournalStorage(backend)
    except OSError as e:
        raise StorageError(f"storage {shown!r}: cannot open {path}: {e.strerror or e}") from None


def _check_journal_file(shown, path):
    """Refuse a file whose first record is not an Optuna journal record (never repair it)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    line, newline, _ = head.partition(b"\n")
    ours = line.startswith(_JOURNAL_MAGIC)
    if ours and newline:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        ours = isinstance(record, dict) and "worker_id" in record
    if not ours:
        raise StorageError(
            f"storage {shown!r}: {path} is not an Optuna journal (its first line is not a journal "
            "record: another program's file?); refusing to use it. Name a new file for a new study."
        )


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
