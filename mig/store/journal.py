"""A write-ahead journal: durable appends now, record files later.

Creating and fsyncing one file per change costs a new inode, two fsyncs
and, on some disks, most of a millisecond.  Instead each change is appended
to the current journal segment as one framed pickle (length, CRC32, data)
and made durable with ``fdatasync``; concurrent writers share one sync
(group commit).  A checkpoint later writes the newest version of every
changed record to its own file, syncs, and drops the old segments.  After a
crash, replay reads the segments in order and stops at the first torn or
damaged frame, so a kill -9 at any instant loses nothing acknowledged.
"""

import contextlib
import os
import pickle
import struct
import threading
import zlib

from mig.errors import SystemFailure

_FRAME = struct.Struct(">II")  # length, crc32 of the payload
_PREFIX = "journal-"
_SUFFIX = ".log"


class Journal:
    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()
        self.written = 0  # bytes appended to the current segment
        self.synced = 0  # bytes of the current segment known to be on disk
        numbers = self.segments()
        self.number = (numbers[-1] + 1) if numbers else 1
        self.fd = self._open(self.number)
        self.entries = 0  # appended to the current segment

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

    def _open(self, number):
        fd = os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the new segment's name is durable before we rely on it
        finally:
            os.close(dir_fd)
        return fd

    # -- writing -----------------------------------------------------------------------
    def append(self, key, value, durable=True):
        """Append (key, value); return once it is on disk when durable."""
        self.append_many([(key, value)], durable)

    def append_many(self, items, durable=True):
        """Append several (key, value) pairs with one write (and one sync when durable)."""
        frames = []
        for item in items:
            payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
            frames.append(_FRAME.pack(len(payload), zlib.crc32(payload)))
            frames.append(payload)
        frame = b"".join(frames)
        with self.lock:
            try:
                view = memoryview(frame)
                while view:  # a regular file takes it whole, but never trust a short write
                    view = view[os.write(self.fd, view):]
            except OSError as exc:
                raise SystemFailure("could not write the journal: %s" % exc.strerror) from None
            self.written += len(frame)
            self.entries += len(items)
            mine, number = self.written, self.number
        if durable:
            self._sync(number, mine)

    def sync(self):
        """Make every append so far durable (one fdatasync for a batch of them)."""
        with self.lock:
            mine, number = self.written, self.number
        self._sync(number, mine)

    def _sync(self, number, upto):
        """Group commit: one fdatasync covers every append made before it."""
        with self.sync_lock:
            with self.lock:
                if number != self.number or self.synced >= upto:
                    return  # a rotation or another writer's sync already covered it
                fd, target = self.fd, self.written
            try:
                os.fdatasync(fd)
            except OSError as exc:
                raise SystemFailure("could not sync the journal: %s" % exc.strerror) from None
            with self.lock:
                if number == self.number:
                    self.synced = max(self.synced, target)

    def rotate(self):
        """Start a new segment; returns the numbers of the segments before it."""
        with self.sync_lock, self.lock:
            os.fdatasync(self.fd)
            os.close(self.fd)
            old = self.number
            self.number += 1
            self.fd = self._open(self.number)
            self.written = self.synced = self.entries = 0
        return [n for n in self.segments() if n <= old]

    def drop(self, numbers):
        for number in numbers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(number))

    def close(self):
        with self.sync_lock, self.lock:
            with contextlib.suppress(OSError):
                os.fdatasync(self.fd)
                os.close(self.fd)

    # -- reading ------------------------------------------------------------------------
    def replay(self, numbers=None):
        """Yield (key, value) from the given (default: all) segments, oldest first.

        A torn or damaged frame ends its segment: it was never acknowledged.
        """
        for number in (self.segments() if numbers is None else numbers):
            path = self._path(number)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:
                continue
            offset = 0
            while offset + _FRAME.size <= len(data):
                length, crc = _FRAME.unpack_from(data, offset)
                start, end = offset + _FRAME.size, offset + _FRAME.size + length
                if end > len(data) or zlib.crc32(data[start:end]) != crc:
                    break
                yield pickle.loads(data[start:end])
                offset = end
