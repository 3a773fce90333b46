"""Record files: durable, atomic, locked (pickled through mig.store.records).

Every record is one pickle file under the state folder (jobs live in the
job database instead, see ``jobdb``).  A write goes to a
temporary file in the same folder, is fsync'ed, renamed over the old file
with ``os.replace`` and the folder is fsync'ed: a kill -9 at any instant
leaves the old or the new record, never a torn one, and a write has reached
the disk before it returns (so callers acknowledge only after it).
Read-modify-write across processes is serialised with ``fcntl.flock``.
Pickle is loaded only from this folder (mode 0700); nothing that came over
the network is ever unpickled.
"""

import contextlib
import fcntl
import json
import os

from mig.errors import StateTooNew, SystemFailure
from mig.store import records
from mig.store.atomic import write_atomic

SCHEMA_VERSION = 1
_MISSING = object()


def atomic_write_bytes(path, data, durable=True, mode=0o600):
    """write_atomic for records: a failure is the appliance's, said in words."""
    try:
        write_atomic(path, data, durable, mode)
    except OSError as exc:
        raise SystemFailure("could not write %s: %s" % (os.path.basename(path),
                                                        exc.strerror or exc)) from None


def overwrite(path, data, mode=0o600):
    """Write data into the file at path in place: its inode and blocks are
    reused (no O_TRUNC: freeing blocks costs a discard on some disks), and a
    link there is never followed.  Not atomic: for files that something else
    covers until they are whole.  Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        if os.fstat(fd).st_size != len(data):
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


class PickleStore:
    """A folder of pickle records addressed by relative paths like 'users/alice'."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self._folders = set()  # folders known to exist
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        self._check_schema()

    def _check_schema(self):
        marker = os.path.join(self.root, "schema.json")
        if os.path.exists(marker):
            with open(marker, encoding="utf-8") as handle:
                info = json.load(handle)
            found = int(info.get("schema", 0))
            if found > SCHEMA_VERSION:
                raise StateTooNew(
                    "the state folder %s was written by a newer MiG appliance (schema %d; "
                    "this version understands up to %d): upgrade the appliance or use "
                    "another --state folder" % (self.root, found, SCHEMA_VERSION))
        else:
            atomic_write_bytes(marker, json.dumps({"schema": SCHEMA_VERSION}).encode())

    def path(self, relpath):
        return os.path.join(self.root, relpath + ".pickle")

    def ensure_folder(self, relfolder):
        folder = os.path.join(self.root, relfolder)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        return folder

    def write(self, relpath, obj, durable=True):
        self._store(relpath, obj, lambda path, data: atomic_write_bytes(path, data, durable))

    def write_covered(self, relpath, obj):
        """Write a record that a journal still holds, in place and not synced.

        A checkpoint writes thousands of these and syncs once; until that sync
        the journal covers every one, so a torn file after a crash is replaced
        on replay (load skips it).  In place, because a temporary file and a
        rename cost an extra inode and the deletion of the old one.  Readers
        see the journal's copy until the checkpoint is done.
        """
        def put(path, data):
            try:
                overwrite(path, data)
            except OSError as exc:
                raise SystemFailure("could not write %s: %s" % (os.path.basename(path),
                                                                exc.strerror or exc)) from None
        self._store(relpath, obj, put)

    def _store(self, relpath, obj, put):
        """Pickle obj and put(path, bytes) it, making its folder when needed."""
        path = self.path(relpath)
        folder = os.path.dirname(path)
        if folder not in self._folders:  # a checkpoint writes thousands into one folder
            os.makedirs(folder, mode=0o700, exist_ok=True)
            self._folders.add(folder)
        data, _crc = records.encode(obj)
        try:
            put(path, data)
        except SystemFailure:
            if os.path.isdir(folder):
                raise
            os.makedirs(folder, mode=0o700, exist_ok=True)  # removed meanwhile
            put(path, data)

    def read(self, relpath, default=_MISSING):
        try:
            return self._load(self.path(relpath))
        except FileNotFoundError:
            if default is _MISSING:
                raise
            return default

    def read_file(self, path):
        """Load a record by absolute path (used when scanning folders); a file
        that is not a whole record (torn by a crash, damaged) raises ValueError."""
        return self._load(path)

    @staticmethod
    def _load(path):
        """A record file's contents; never more than records.MAX_RECORD bytes
        read, and any damage is a ValueError (records.DamagedRecord)."""
        with open(path, "rb") as handle:
            data = handle.read(records.MAX_RECORD + 1)
        try:
            return records.decode(data)
        except records.DamagedRecord as exc:
            raise records.DamagedRecord("damaged record file %s: %s" % (path, exc)) from None

    def exists(self, relpath):
        return os.path.exists(self.path(relpath))

    def delete(self, relpath):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(relpath))

    def records(self, relfolder):
        """Yield (name, absolute path) of the records directly in a folder."""
        folder = os.path.join(self.root, relfolder)
        try:
            entries = os.scandir(folder)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if entry.name.endswith(".pickle") and not entry.name.startswith("."):
                    yield entry.name[:-len(".pickle")], entry.path

    def folders(self, relfolder):
        folder = os.path.join(self.root, relfolder)
        try:
            return sorted(e.name for e in os.scandir(folder) if e.is_dir())
        except FileNotFoundError:
            return []

    @contextlib.contextmanager
    def lock(self, name):
        """An exclusive cross-process lock named by a file under locks/."""
        folder = self.ensure_folder("locks")
        fd = os.open(os.path.join(folder, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def update(self, relpath, change, default=None):
        """Locked read-modify-write: change(old) returns the new record."""
        with self.lock(relpath.replace("/", "_")):
            new = change(self.read(relpath, default))
            self.write(relpath, new)
            return new

    def version(self, relpath):
        """What changes whenever the record is written: (inode, size, mtime).
        Records are replaced by rename, so two writes within one clock tick
        still differ by inode; None while the record does not exist."""
        try:
            info = os.stat(self.path(relpath))
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)
