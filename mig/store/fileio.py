"""The job store's one boundary to the operating system.

Every write, sync, truncation, rename and removal the job store (journal,
database sync, job outputs) makes goes through a ``Files`` object, so that
tests can put a recorder here: one that records every operation and rebuilds
what a power cut would have left, or one that fails a sync on purpose.  The
methods raise ``OSError`` as the system calls do; callers turn that into a
clear error for the request that hit it.
"""

import errno
import os


def is_full(exc):
    """True when an OSError means the disk ran out of blocks, inodes or quota."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


class Files:
    """The real operating system."""

    def open_append(self, path):
        """A new or existing file opened for appending (never a link)."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o600)

    def create(self, path, mode=0o600):
        """A new file for writing; an existing one is an error (O_EXCL)."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                       | os.O_CLOEXEC, mode)

    def write_all(self, fd, data):
        """Write every byte, or raise: a short write is continued, never trusted."""
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def fdatasync(self, fd):
        os.fdatasync(fd)

    def fsync(self, fd):
        os.fsync(fd)

    def close(self, fd):
        os.close(fd)

    def truncate(self, path, length):
        """Cut a file to length and make that durable (opened anew: never a
        descriptor that has seen a failed write or sync)."""
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, length)
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_dir(self, path):
        """Make the names in a folder (new, renamed, removed files) durable."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, src, dst):
        os.replace(src, dst)

    def unlink(self, path):
        os.unlink(path)

    def db_sync(self, db):
        """Make every committed database transaction durable."""
        db.sync()


def make_folder(path, files):
    """Make a folder (mode 0700) whose entry survives a power cut; True when new."""
    if os.path.isdir(path):
        return False
    os.makedirs(path, mode=0o700, exist_ok=True)
    files.fsync_dir(os.path.dirname(os.path.abspath(path)))
    return True


OS = Files()
