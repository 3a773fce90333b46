"""File operations where another party controls part of the way (a job's
folder): every folder on the way is opened without following links, files
are opened with O_NOFOLLOW, and a copy is a new file renamed into place,
so nothing planted there (a symlink, a hard link) is followed or written
through."""

import os
import shutil
import stat

from mig.errors import MigError, NotCopied
from mig.store.atomic import replacing, write_atomic

COPY_BLOCK = 1024 * 1024

def parent_beneath(root, relpath):
    """(fd of the parent folder, file name) below root, no symlink followed on the way.

    The walk goes one component at a time with O_NOFOLLOW, so a job cannot
    swap a folder for a link between a check and the copy or move.
    """
    parts = [p for p in os.path.normpath(relpath).split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OSError("bad path")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError:
        os.close(fd)
        raise
    return fd, parts[-1]


def is_own_regular_file(info, owner=None):
    """Whether a stat result is a regular file and, with owner (a job's uid),
    that uid's own with no other name: a job cannot pass off another file
    (one it linked from elsewhere) as its output."""
    return stat.S_ISREG(info.st_mode) and (owner is None or (
        info.st_uid == owner and info.st_nlink == 1))


def open_beneath(root, relpath, owner=None):
    """Open a regular file below root without following any symlink; with
    owner, only a file that is_own_regular_file for that uid."""
    fd, name = parent_beneath(root, relpath)
    try:
        file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not is_own_regular_file(os.fstat(file_fd), owner):
        os.close(file_fd)
        raise OSError("not a regular file")
    return os.fdopen(file_fd, "rb")


def destination(dst_home, dst_rel):
    """Where a job's output goes: confined to the home, and never into a
    shared folder its owner may only read."""
    dst = dst_home.check_write(dst_home.resolve(dst_rel), dst_rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    dst = dst_home.resolve(dst_rel)  # re-check after creating parents
    if os.path.isdir(dst):
        raise OSError("a folder is in the way")
    return dst


def copy_confined(src_root, src_rel, dst_home, dst_rel, owner=None):
    """Copy a file from a job folder into a home; both ends confined.  The copy
    is a new file of ours, renamed into place (never written through a link).

    Raises NotCopied with the reason (missing, or a link leading out).  Not
    synced: the caller syncs what it delivered (staging.make_durable).
    """
    try:
        source = open_beneath(src_root, src_rel, owner)
    except OSError:
        raise NotCopied("%s: missing, not a regular file of the job's own, or behind a link"
                        % src_rel) from None
    with source:
        try:
            write_atomic(destination(dst_home, dst_rel),
                         iter(lambda: source.read(COPY_BLOCK), b""), durable=False, mode=0o644)
        except (OSError, MigError) as exc:
            raise NotCopied("%s: cannot be written: %s"
                            % (dst_rel, getattr(exc, "strerror", None) or exc)) from None


def copy_into_beneath(home, src_rel, root, dst_rel, protected=()):
    """Copy a home file into a folder another party controls (a running job's).

    The way down from root is walked without following links, missing
    folders are created, the file is opened with O_NOFOLLOW and the names
    in protected (relative to root) are never replaced.  Raises NotCopied
    with the reason.
    """
    parts = [p for p in os.path.normpath(dst_rel).split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise NotCopied("%s: not a valid destination in the job folder" % dst_rel)
    if "/".join(parts) in protected:
        raise NotCopied("%s: belongs to the job and is not replaced" % "/".join(parts))
    try:
        source = open(home.resolve(src_rel, must_exist=True), "rb")
    except MigError as exc:
        raise NotCopied(exc.message) from None
    except OSError as exc:
        raise NotCopied("%s: cannot be read: %s" % (src_rel, exc.strerror or exc)) from None
    with source:
        try:
            owner = os.stat(root)
            for depth in range(1, len(parts)):
                fd, name = parent_beneath(root, "/".join(parts[:depth]))
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    if os.geteuid() == 0:  # made just now by us: the job's to use
                        os.chown(name, owner.st_uid, owner.st_gid, dir_fd=fd,
                                 follow_symlinks=False)
                except FileExistsError:
                    pass
                finally:
                    os.close(fd)
            fd, name = parent_beneath(root, "/".join(parts))
            try:
                # A new file renamed over the name: never written through a
                # link (hard or soft) that the job may have put there.  Not
                # synced: a job folder is made again when the host crashes.
                with replacing(name, durable=False, mode=0o644, dir_fd=fd) as out:
                    if os.geteuid() == 0:  # the job's own account must be able to use it
                        folder = os.fstat(fd)
                        os.fchown(out.fileno(), folder.st_uid, folder.st_gid)
                    shutil.copyfileobj(source, out, 1024 * 1024)
            finally:
                os.close(fd)
        except OSError as exc:
            raise NotCopied("%s: cannot be written in the job folder: %s"
                            % (dst_rel, exc.strerror or exc)) from None
