"""The request journal: acknowledged requests appended to a file of this process's before the acknowledgement.

Why a file and not only the ``inbox`` table: committing a row means handing the request to a writer (SQLite has
one write lock; PostgreSQL a round trip) and waiting for it, and under a burst that wait was most of an
acknowledgement's time. One ``os.write`` of one line to a file opened with ``O_APPEND`` is in the operating
system's page cache when it returns, so the request survives the process being killed (SIGKILL, OOM, a crash) as
surely as a committed row would; like SQLite in WAL mode with ``synchronous=NORMAL``, it is not flushed to the disk
for a power cut. The inbox's recorder thread then copies the lines into the ``inbox`` table in batches, after the
acknowledgement, and writes a "committed" line for them here; from the table on, the inbox's leases and replay take
over (bot/services/inbox.py).

One file per process (``<owner>.journal`` in the journal directory), held with an exclusive ``flock`` for the
process's life. A file nobody holds belongs to a process that stopped: the next process to look (at start and every
few seconds) takes it, copies the lines that have no "committed" line into the table, and deletes it. The file is
cut back to nothing whenever every line in it is committed, so it only grows during a burst; under load that never
pauses, a new file (``<owner>.<n>.journal``) starts past ``SEGMENT_BYTES`` and an old one is deleted once all its
lines are committed.

Lines are JSON: ``{"key", "kind", "payload"}`` for a request and ``{"committed": [keys]}`` for a batch in the
table. A line that does not parse (cut off by a power cut or a full disk) is skipped: it was never acknowledged,
because the acknowledgement waits for the whole line to be written.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JournalBroken", "OrphanJournal", "RequestJournal", "read_journal"]

log = logging.getLogger("contract_bot.journal")

SUFFIX = ".journal"


class JournalBroken(OSError):
    """The journal cannot take another line (a short write, a full disk); the caller records in the table."""


@dataclass
class OrphanJournal:
    """The journal of a process that stopped, held (locked) by this one until its lines are in the table."""

    path: Path
    fd: int
    entries: list[dict]  # the requests it holds that never reached the table, in the order they were written

    def release(self) -> None:
        """Delete it (once its entries are committed in the table) and let go of it."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)

    def keep(self) -> None:
        """Let go of it without deleting it (its entries could not be copied; another look will try again)."""
        os.close(self.fd)


SEGMENT_BYTES = (
    64 * 2**20
)  # under load that never pauses, a new file after this much; the old one goes when done


@dataclass
class _Segment:
    """One file of this process's journal."""

    number: int
    path: Path
    fd: int
    outstanding: int = 0  # lines written (or being written) here whose "committed" line is not written yet
    size: int = 0


class RequestJournal:
    """This process's journal; thread-safe. ``append`` is the acknowledgement path: one write, no waiting.

    The journal is one file (``<owner>.journal``) that is cut back to nothing whenever all its lines are committed.
    Under load that never leaves that moment, the file would only grow: past ``segment_bytes`` the next line starts
    a new file (``<owner>.<n>.journal``), and an old file is deleted once all its lines are committed."""

    def __init__(
        self, directory: str | os.PathLike, owner: str, *, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.directory = Path(directory)
        self.stem = re.sub(r"[^A-Za-z0-9_.-]", "_", owner)
        self.segment_bytes = segment_bytes
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._where: dict[str, int] = {}  # key of an uncommitted line -> the segment it is in
        self._lock = threading.Lock()
        self.broken = False

    @property
    def path(self) -> Path:
        """The file lines are appended to now."""
        return self._current.path if self._current is not None else self.directory / f"{self.stem}{SUFFIX}"

    def open(self) -> RequestJournal:
        """Create and lock the first file."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._current = self._new_segment(0)
        return self

    def _new_segment(self, number: int) -> _Segment:
        """Create and lock a file (under a temporary name first, so no other process ever sees it unlocked)."""
        path = self.directory / f"{self.stem}{f'.{number}' if number else ''}{SUFFIX}"
        tmp = self.directory / f".{path.name}.new"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, path)
        except BaseException:
            os.close(fd)
            raise
        segment = self._segments[number] = _Segment(number, path, fd)
        return segment

    @property
    def usable(self) -> bool:
        """True while lines can be appended."""
        return self._current is not None and not self.broken

    def files(self) -> list[Path]:
        """This process's journal files."""
        with self._lock:
            return [s.path for s in self._segments.values()]

    def append(self, key: str, kind: str, payload_json: str) -> None:
        """Write one request (its payload already JSON); when this returns, it survives the process. Raises
        JournalBroken if it could not. ``key`` and ``kind`` are plain identifiers (the inbox makes them)."""
        data = f'{{"key":"{key}","kind":"{kind}","payload":{payload_json}}}\n'.encode()
        with (
            self._lock
        ):  # NOTE: no system call under this lock (but once per segment_bytes): a thread blocked
            # on it would queue for the GIL behind the holder too
            if not self.usable:
                raise JournalBroken(errno.EIO, "the request journal is closed or broken")
            segment = self._current
            if segment.size >= self.segment_bytes and segment.outstanding:
                try:
                    segment = self._current = self._new_segment(segment.number + 1)
                except OSError as exc:
                    self._break(f"could not start a new journal file: {exc}")
                    raise JournalBroken(exc.errno or errno.EIO, str(exc)) from exc
            segment.outstanding += 1
            segment.size += len(data)
            self._where[key] = segment.number
        try:
            written = os.write(segment.fd, data)  # O_APPEND: lines from many threads never interleave
        except OSError as exc:
            self._give_up(key, segment, f"write failed: {exc}")
            raise JournalBroken(exc.errno or errno.EIO, str(exc)) from exc
        if written != len(data):
            # A partial line would run into the next one; stop using the file (the reader skips the partial line).
            self._give_up(key, segment, f"short write ({written} of {len(data)} bytes)")
            raise JournalBroken(errno.ENOSPC, "short write to the request journal")

    def committed(self, keys: list[str]) -> None:
        """Note that these requests are in the table. A file with nothing left uncommitted is cut back (the one
        being appended to) or deleted (an older one). Called by one thread (the inbox's recorder)."""
        by_segment: dict[int, list[str]] = {}
        with self._lock:
            for key in keys:
                number = self._where.pop(key, None)
                if number is not None:
                    by_segment.setdefault(number, []).append(key)
        for number, done in by_segment.items():
            with self._lock:
                segment = self._segments.get(number)
                if segment is None:
                    continue
                segment.outstanding -= len(done)
                if segment.outstanding == 0:
                    # Every line in the file is in the table and no append to it is under way (it would be
                    # outstanding): a quiet moment, so the appends rarely wait for this lock.
                    try:
                        if segment is self._current:
                            os.ftruncate(segment.fd, 0)
                            segment.size = 0
                        else:
                            segment.path.unlink(missing_ok=True)
                            os.close(segment.fd)
                            del self._segments[number]
                    except OSError as exc:
                        log.warning(
                            "could not cut back or delete the request journal %s: %s", segment.path, exc
                        )
                    continue
            try:
                os.write(segment.fd, (json.dumps({"committed": done}, separators=(",", ":")) + "\n").encode())
            except OSError as exc:  # the lines stay uncommitted here; an import later finds them in the table
                log.warning("could not mark %s journal line(s) committed: %s", len(done), exc)

    def close(self, *, remove: bool) -> None:
        """Close the files; ``remove`` deletes those with every line committed (a clean stop)."""
        with self._lock:
            for segment in self._segments.values():
                if remove and segment.outstanding == 0:
                    segment.path.unlink(missing_ok=True)
                os.close(
                    segment.fd
                )  # closing lets go of the lock: a file left behind is taken by the next process
            self._segments.clear()
            self._current = None

    def _give_up(self, key: str, segment: _Segment, why: str) -> None:
        with self._lock:
            segment.outstanding -= 1
            self._where.pop(key, None)
            self._break(why)

    def _break(self, why: str) -> None:
        if not self.broken:
            self.broken = True
            log.error(
                "request journal %s: %s; requests are now recorded in the inbox table before the "
                "acknowledgement",
                self.path,
                why,
            )

    # ---- journals of processes that stopped --------------------------------------------------------------------

    def orphans(self) -> Iterator[OrphanJournal]:
        """The journals in the directory that no live process holds, each locked for the caller until released."""
        try:
            own = {p.name for p in self.files()}
            names = sorted(
                p for p in self.directory.iterdir() if p.name.endswith(SUFFIX) and p.name not in own
            )
        except FileNotFoundError:
            return
        for path in names:
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another process took it first
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # its process is alive
                continue
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # taken and deleted by another process between our open and our lock
                os.close(fd)
                continue
            yield OrphanJournal(path, fd, read_journal(fd))


def read_journal(source: int | str | os.PathLike) -> list[dict]:
    """The requests in a journal (an open descriptor or a path) that have no "committed" line, in order."""
    if isinstance(source, int):
        size = os.fstat(source).st_size
        raw = os.pread(source, size, 0) if size else b""
    else:
        raw = Path(source).read_bytes()
    entries: dict[str, dict] = {}
    done: set[str] = set()
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            log.warning("skipped a journal line that does not parse (%s bytes)", len(line))
            continue
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("committed"), list):
            done.update(k for k in item["committed"] if isinstance(k, str))
        elif (
            isinstance(item.get("key"), str)
            and isinstance(item.get("kind"), str)
            and isinstance(item.get("payload"), dict)
        ):
            entries.setdefault(item["key"], item)
    return [e for k, e in entries.items() if k not in done]
