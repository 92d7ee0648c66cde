"""The process that trains a run folder: ``process.json``, locked while that process lives.

``kzoo train`` (rank 0 of a data-parallel run) holds an exclusive ``flock`` on the run's ``process.json`` from
the moment the folder is its own until training ends, and writes into it who it is (pid, host, command, start)
and, at the end, how training ended: ``finished``, ``interrupted`` (Ctrl-C) or ``failed`` (a diverged loss or
any other error, with its first line). The operating system drops the lock when the process dies, whatever
kills it, so a reader knows honestly whether a run is being trained now: the lock is held (``running``), or the
record has an outcome, or the process is gone without one (killed or crashed). A second ``kzoo train --resume``
of a folder that is being trained stops with an error instead of writing into it too.

The file is rewritten in place, never renamed over: a lock belongs to one file, and a new file would carry none.
A reader tolerates a half-written record (it only reads it to name the process). Where ``fcntl`` is missing
(Windows) nothing is locked, and whether a record without an outcome is live cannot be told (``None``).
"""

import json
import os
import socket
import sys
import time

from kzoo.errors import KzooError, TrainingDiverged, TrainingInterrupted, first_line

PROCESS = "process.json"
_ATTEMPTS = 5  # a reader's shared lock lasts microseconds; a starting trainer tries again before giving up

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunProcess:
    """This process's hold on a run folder (:func:`hold_run`); :meth:`release` records the outcome."""

    def __init__(self, run_dir, fd, record):
        self.run_dir, self._fd, self.record = run_dir, fd, record
        self._started = time.time()

    def _write(self, record):
        data = (json.dumps(record, indent=2) + "\n").encode()
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        os.ftruncate(self._fd, len(data))
        os.fsync(self._fd)

    def release(self, error=None):
        """Record how training ended (``error``: the exception that ended it, or ``None``) and unlock."""
        if self._fd is None:
            return
        outcome, reason = outcome_of(error)
        record = dict(self.record, ended=_now(), outcome=outcome,
                      wall_s=round(self.record.get("wall_s", 0.0) + time.time() - self._started, 1))
        if reason:
            record["reason"] = reason
        try:
            self._write(record)
            self.record = record
        except OSError:  # a full disk: the lock still goes, and the run reads as stopped without a word
            pass
        finally:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def outcome_of(error):
    """``(outcome, reason)`` of the exception that ended training (``None``: it finished)."""
    if error is None:
        return "finished", None
    if isinstance(error, (TrainingInterrupted, KeyboardInterrupt)):
        return "interrupted", "Ctrl-C"
    if isinstance(error, TrainingDiverged):
        return "failed", f"diverged: {first_line(error)}"
    return "failed", f"{type(error).__name__}: {first_line(error, 'no message')}"


def hold_run(run_dir):
    """Lock ``run_dir`` for this process and record it; the previous sessions' wall time is carried over.

    Raises:
        KzooError: another live process is training this folder.
    """
    path = os.path.join(run_dir, PROCESS)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        for attempt in range(_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _ATTEMPTS - 1:
                    os.close(fd)
                    raise _busy(run_dir, read_process(run_dir)[0]) from None
                time.sleep(0.02)
    previous = _parse(os.read(fd, 1 << 16)) or {}
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
              "created": previous.get("created") or _now(), "started": _now(),
              "wall_s": float(previous.get("wall_s") or 0.0), "sessions": int(previous.get("sessions") or 0) + 1}
    process = RunProcess(run_dir, fd, record)
    process._write(record)
    return process


def refuse_if_running(run_dir):
    """Raise :class:`KzooError` when a live process trains ``run_dir`` now."""
    record, live = read_process(run_dir)
    if live:
        raise _busy(run_dir, record)


def _busy(run_dir, record):
    record = record or {}
    return KzooError(f"{run_dir} is being trained by process {record.get('pid', '?')} on {record.get('host', '?')}; "
                     f"wait for it to end (or stop it) before training this folder.")


def _parse(data):
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError:  # empty, or being rewritten this very moment
        return None
    return record if isinstance(record, dict) else None


def read_process(run_dir):
    """``(record, live)``: the folder's process record (``None`` when it has none) and whether its process
    holds the lock now (``None``: this system cannot tell)."""
    path = os.path.join(run_dir, PROCESS)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, False
    try:
        record = _parse(os.read(fd, 1 << 16))
        if fcntl is None:  # pragma: no cover - Windows
            return record, None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return record, True
        return record, False
    finally:
        os.close(fd)  # drops the shared lock, if taken

