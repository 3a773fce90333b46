"""Job folders: fresh, empty ones recycled instead of created and deleted,
the work root they live in, and handing a folder to its job's uid.

Each local job needs a folder of its own.  Making one with ``mkdir`` and
removing it with ``rmtree`` afterwards costs new inodes and deletions for
every job; on ext4 without a journal every deleted inode is also skipped by
the allocator for a while, so all later file creations slow down.  The pool
renames an emptied folder back to a spare name instead (a rename allocates
nothing) and keeps the job script's file for the next job, which overwrites
it in place.  A folder comes back only when it holds nothing but what the
appliance put there, owned by the appliance; anything else is removed whole.
"""

import itertools
import os
import shutil
import stat
import threading

from mig.errors import ConfigError
from mig.store.pickledb import overwrite

SCRIPT = ".mig-job"  # the job script's name inside every job folder
SPARE_PREFIX = ".spare-"
_KEPT = {SCRIPT}


def is_spare(name):
    return name.startswith(SPARE_PREFIX)


class FolderPool:
    """Job folders under one root: take(job_id) gives an empty folder, give_back
    empties and keeps it.  At most ``keep`` spares wait; the rest are removed."""

    def __init__(self, root, keep=16):
        self.root = root
        self.keep = keep
        self.lock = threading.Lock()
        self.numbers = itertools.count()
        self.spares = []
        self.uid = os.geteuid()
        for name in os.listdir(root):
            if is_spare(name):  # left by a previous run: checked again before reuse
                self._recycle(os.path.join(root, name))

    def take(self, job_id):
        """An empty folder named job_id (mode 0700, ours); any old one is removed."""
        folder = os.path.join(self.root, job_id)
        with self.lock:
            spare = self.spares.pop() if self.spares else None
        if spare is not None:
            try:
                os.rename(spare, folder)  # fails if an old folder of the job is there
                return folder
            except OSError:
                shutil.rmtree(spare, ignore_errors=True)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # left by an earlier run of this job
            shutil.rmtree(folder, ignore_errors=True)
            os.mkdir(folder, 0o700)
        return folder

    def give_back(self, folder):
        """Called once the job's processes are gone and its outputs moved out."""
        self._recycle(folder)

    def _recycle(self, folder):
        with self.lock:
            full = len(self.spares) >= self.keep
        if full or not self._clean(folder):
            shutil.rmtree(folder, ignore_errors=True)
            return
        spare = os.path.join(self.root, "%s%d-%d" % (SPARE_PREFIX, os.getpid(),
                                                     next(self.numbers)))
        try:
            os.rename(folder, spare)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return
        with self.lock:
            self.spares.append(spare)

    def _clean(self, folder):
        """Lock the folder to us, then accept it only if it holds our own files."""
        try:
            # The folder is one we made; a job could only have emptied it.
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                info = os.fstat(fd)
                if info.st_uid != self.uid or stat.S_IMODE(info.st_mode) != 0o700:
                    os.fchown(fd, self.uid, os.getegid())
                    os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name not in _KEPT:
                        return False
                    info = entry.stat(follow_symlinks=False)
                    if (not stat.S_ISREG(info.st_mode) or info.st_uid != self.uid
                            or info.st_nlink != 1):
                        return False
        except OSError:
            return False
        return True

    def close(self):
        with self.lock:
            spares, self.spares = self.spares, []
        for spare in spares:
            shutil.rmtree(spare, ignore_errors=True)


def write_in_place(folder, name, text, mode=0o644):
    """Write a small file in a job folder, reusing its inode and its blocks;
    never through a link (the job owns the folder)."""
    overwrite(os.path.join(folder, name), text.encode("utf-8"), mode)


def check_reachable(folder):
    """A job must be able to pass through every folder above its own."""
    path = os.path.dirname(os.path.abspath(folder))
    while True:
        if not os.stat(path).st_mode & 0o001:
            raise ConfigError("the job folder %s is not reachable by the job user because %s "
                              "is closed to others: set work_dir in config.ini to a folder "
                              "below world-traversable folders" % (folder, path))
        if path == os.path.dirname(path):
            return
        path = os.path.dirname(path)


def check_work_root(folder):
    """Make the work root, or accept one that is ours: a folder someone else
    made (or a link) could hand root's file operations to them."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    info = os.lstat(parent)
    if info.st_mode & 0o002 and not info.st_mode & 0o1000:
        raise ConfigError("the work folder's parent %s may be changed by anyone: set "
                          "work_dir to a folder in a safe place" % parent)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()
            or info.st_mode & 0o022):
        raise ConfigError("the work folder %s was not made by the appliance (a link, another "
                          "owner, or writable by others): remove it or set work_dir to "
                          "another folder" % folder)


def give_tree(folder, uid, gid, staged=True):
    """Give the folder and the staged files (all made by us just now) to the
    job's uid; the script stays ours (bash only reads it), so a job with
    nothing staged needs no walk.  Through descriptors, never following a link."""
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(root, uid, gid)
    finally:
        os.close(root)
    if not staged:
        return
    for top, dirs, files, top_fd in os.fwalk(folder):
        for name in dirs + files:
            if top == folder and name == SCRIPT:
                continue
            os.chown(name, uid, gid, dir_fd=top_fd, follow_symlinks=False)
