"""A write-ahead journal: durable appends now, the database later.

Each change is appended to the current segment as one frame (length, CRC-32,
record bytes) and made durable with ``fdatasync``; concurrent writers share
one sync (group commit).  A checkpoint makes the database durable and drops
the segments it covers.  Replay reads the segments in order and stops a
segment at its first torn or damaged frame: that frame was never
acknowledged.

Failures are where journals lose data, so they are handled one way:
after any failed write or sync the segment is *poisoned*.  Its descriptor is
closed and never used again (a closed descriptor number is soon another
file's or a client's socket), the file is cut back to the length known to be
durable (so a refused change can never come back on replay), frames appended
without a sync since then are appended again to a fresh segment, and every
caller whose frame was not yet durable gets an error.  A segment that cannot
be opened (no space, no inodes) is retried by the next append, so the
journal recovers by itself once there is room.
"""

import contextlib
import os
import struct
import threading

from mig.errors import DiskFull, SystemFailure
from mig.store import fileio, records

_FRAME = struct.Struct(">II")  # length, crc32 of the payload
_PREFIX = "journal-"
_SUFFIX = ".log"


class JournalError(SystemFailure):
    """An append or sync that did not reach the disk; nothing of it is kept."""


class JournalFull(JournalError, DiskFull):
    """As JournalError, because the disk has no blocks or inodes left."""


def _failure(what, exc):
    if fileio.is_full(exc):
        return JournalFull("could not %s the job journal: the disk is full (no space or "
                           "no inodes left); nothing was saved" % what)
    return JournalError("could not %s the job journal: %s" % (what, exc.strerror or exc))


class Journal:
    def __init__(self, folder, files=fileio.OS):
        self.folder = folder
        self.files = files
        fileio.make_folder(folder, files)
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()
        numbers = self.segments()
        self.number = (numbers[-1] + 1) if numbers else 1
        self.fd = None  # opened by the first append
        self.written = 0  # bytes appended to the current segment
        self.synced = 0  # bytes of the current segment known to be on disk
        self.unsynced = []  # (end offset, frame, durable) appended since the last sync
        self.poisoned = {}  # segment number -> length known durable when it failed
        self.repair = None  # (number, length) of a poisoned segment not yet cut back

    # -- segments ------------------------------------------------------------------
    def segments(self):
        numbers = []
        for name in os.listdir(self.folder):
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                with contextlib.suppress(ValueError):
                    numbers.append(int(name[len(_PREFIX):-len(_SUFFIX)]))
        return sorted(numbers)

    def _path(self, number):
        return os.path.join(self.folder, "%s%08d%s" % (_PREFIX, number, _SUFFIX))

    def _ready(self):
        """A usable segment: repair a poisoned one, open a new one. Lock held."""
        if self.repair is not None:
            number, length = self.repair
            try:
                self.files.truncate(self._path(number), length)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _failure("repair", exc) from None
            self.repair = None
        if self.fd is None:
            path = self._path(self.number)
            try:
                fd = self.files.open_append(path)
            except OSError as exc:
                raise _failure("open a segment of", exc) from None
            try:
                self.files.fsync_dir(self.folder)  # its name is durable before we rely on it
            except OSError as exc:
                self.files.close(fd)
                raise _failure("open a segment of", exc) from None
            self.fd, self.written, self.synced = fd, 0, 0
            carried, self.unsynced = self.unsynced, []
            for _end, frame, _durable in carried:  # non-durable frames a failure cut away
                self._write(frame, False)

    def _write(self, frame, durable):
        """Append one frame to the open segment, or poison it and raise. Lock held."""
        try:
            self.files.write_all(self.fd, frame)
        except OSError as exc:
            self._poison()
            raise _failure("write", exc) from None
        self.written += len(frame)
        self.unsynced.append((self.written, frame, durable))

    def _poison(self):
        """After a failed write or sync: never touch this descriptor again. Lock held."""
        with contextlib.suppress(OSError):
            self.files.close(self.fd)
        self.fd = None
        self.poisoned[self.number] = self.synced
        self.repair = (self.number, self.synced)
        # Frames not yet durable: the durable ones are refused to their
        # callers; the others were acknowledged as "saved, not synced" and
        # go into the next segment.
        self.unsynced = [item for item in self.unsynced if not item[2]]
        self.number += 1

    # -- writing -----------------------------------------------------------------------
    def append_many(self, encoded, durable=True):
        """Append several records, given as (bytes, crc32) from records.encode,
        with one write (and one sync when durable); raises JournalError when
        they are not (all) kept."""
        frames = []
        for payload, crc in encoded:
            frames.append(_FRAME.pack(len(payload), crc))
            frames.append(payload)
        frame = b"".join(frames)
        with self.lock:
            self._ready()
            self._write(frame, durable)
            mine, number = self.written, self.number
        if durable:
            self._sync(number, mine)

    def sync(self):
        """Make every append so far durable (one fdatasync for a batch of them)."""
        with self.lock:
            if self.fd is None and self.unsynced:
                self._ready()  # frames carried over from a poisoned segment
            mine, number = self.written, self.number
        self._sync(number, mine)

    def _sync(self, number, upto):
        """Group commit: one fdatasync covers every append made before it."""
        with self.sync_lock:
            with self.lock:
                lost = self.poisoned.get(number)
                if lost is not None and upto > lost:
                    raise JournalError("could not sync the job journal: an earlier write "
                                       "or sync of it failed")
                if number != self.number or self.synced >= upto or self.fd is None:
                    return  # a rotation or another writer's sync already covered it
                fd, target = self.fd, self.written
            try:
                self.files.fdatasync(fd)
            except OSError as exc:
                with self.lock:
                    if self.number == number and self.fd == fd:
                        self._poison()
                raise _failure("sync", exc) from None
            with self.lock:
                if number == self.number:
                    self.synced = max(self.synced, target)
                    self.unsynced = [item for item in self.unsynced if item[0] > self.synced]

    def rotate(self):
        """Start a new segment (opened by the next append); returns the numbers
        of the segments before it, all durable (or cut back after a failure)."""
        with self.sync_lock, self.lock:
            if self.fd is None and self.unsynced:
                self._ready()  # carried frames first, so that the rotation covers them
            if self.fd is not None:
                try:
                    self.files.fdatasync(self.fd)
                except OSError as exc:
                    self._poison()
                    raise _failure("sync", exc) from None
                with contextlib.suppress(OSError):
                    self.files.close(self.fd)
                self.fd, self.unsynced = None, []
                self.number += 1
            old = self.number - 1
        return [n for n in self.segments() if n <= old]

    def drop(self, numbers):
        """Remove segments a checkpoint covers.  The removal needs no sync: a
        segment a power cut brings back holds nothing newer than the database,
        and anything newer is in a later segment, whose creation synced the
        folder (and so the removal) before a byte went into it."""
        for number in numbers:
            with contextlib.suppress(FileNotFoundError):
                self.files.unlink(self._path(number))
            self.poisoned.pop(number, None)

    def close(self):
        with self.sync_lock, self.lock:
            if self.fd is not None:
                with contextlib.suppress(OSError):
                    self.files.fdatasync(self.fd)
                with contextlib.suppress(OSError):
                    self.files.close(self.fd)
                self.fd = None

    # -- reading ------------------------------------------------------------------------
    def replay(self, numbers=None, damaged=None):
        """Yield the records in the given (default: all) segments, oldest first.

        A torn or damaged frame ends its segment: it was never acknowledged.
        A frame whose checksum holds but whose contents do not load is
        reported through damaged(message) and skipped.
        """
        for number in (self.segments() if numbers is None else numbers):
            try:
                handle = open(self._path(number), "rb")
            except FileNotFoundError:
                continue
            with handle:
                size = os.fstat(handle.fileno()).st_size
                offset = 0
                while offset + _FRAME.size <= size:
                    length, crc = _FRAME.unpack(handle.read(_FRAME.size))
                    if length > size - offset - _FRAME.size:
                        break  # torn: never read (or allocate) past the end
                    data = handle.read(length)
                    try:
                        item = records.decode(data, crc)
                    except records.DamagedRecord as exc:
                        if "checksum" in str(exc):
                            break
                        if damaged is not None:
                            damaged("journal segment %d at byte %d: %s" % (number, offset, exc))
                        item = None
                    offset += _FRAME.size + length
                    if item is not None:
                        yield item
