"""The one way the appliance replaces a file: whole or not at all.

The new content goes to a fresh temporary file beside the target (created
with ``O_EXCL | O_NOFOLLOW``, so a name planted there by someone else is an
error, never followed), is synced when it must survive a power cut, and is
renamed over the target; the folder is synced then, so that the rename
lasts too.  A link planted at the target is replaced, not written through.
After a crash at any instant the old file or the new one is there, never a
torn one; a failed write leaves the old file and no temporary file.
"""

import contextlib
import os
import secrets


def fsync_dir(path, dir_fd=None):
    """Make the names in a folder durable (a rename, a new file); with dir_fd
    and path None, the folder open at dir_fd."""
    if path is None:
        os.fsync(dir_fd)
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(data):
    """data as buffers to write: itself when it is one (bytes, an mmap of a
    spooled upload), else its chunks as they come."""
    try:
        return (memoryview(data),)
    except TypeError:
        return data


@contextlib.contextmanager
def replacing(path, durable=True, mode=0o600, replace=True, dir_fd=None):
    """A new file to write, open in binary mode, that replaces path when the
    block ends without an error (and is removed when it raises).  For writers
    that need a file (an archive being packed); see write_atomic.  dir_fd: path
    is a plain name in the folder open at dir_fd (a folder reached beneath a
    root without following links)."""
    if dir_fd is not None and os.sep in path:
        raise ValueError("with dir_fd, path is a name in that folder")
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, ".tmp-%s-%s" % (os.path.basename(path)[:100],
                                                secrets.token_hex(6)))
    at = {} if dir_fd is None else {"dir_fd": dir_fd}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode, **at)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fchmod(fd, mode)  # the umask may have taken bits away
            if durable:
                os.fsync(fd)
        both = {} if dir_fd is None else {"src_dir_fd": dir_fd, "dst_dir_fd": dir_fd}
        if replace:
            os.replace(tmp, path, **both)
        else:
            os.link(tmp, path, **both)
            os.unlink(tmp, **at)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, **at)
        raise
    if durable:
        fsync_dir(None if dir_fd is not None else folder, dir_fd)


def write_atomic(path, data, durable=True, mode=0o600, replace=True, dir_fd=None):
    """Replace path with data (bytes or any buffer such as an mmap, or an
    iterable of bytes chunks, which is written as it comes and never held
    whole).  durable: the data and the rename reach the disk before this
    returns.  replace=False: an existing name is never replaced
    (FileExistsError: the file is linked into place, which fails atomically
    when the name exists).  Raises OSError; nothing of a failed write stays
    behind.  dir_fd: as for replacing."""
    with replacing(path, durable, mode, replace, dir_fd) as out:
        for chunk in _chunks(data):
            out.write(chunk)
