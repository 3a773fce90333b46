"""A user's home: path confinement, listings and the basic file operations.

Every user-given path goes through ``Home.resolve``: NUL bytes, absolute
and ``..`` paths are refused, and the real path (symlinks followed) must
stay inside the home, so a link planted in the home cannot lead out of it.
"""

import glob
import os
import shutil
import stat
import time

from mig.errors import ClientError, FileNotFound, InvalidArgument, NoFilePath

MAX_PATH = 4096
INVISIBLE = {".htaccess"}
TRASH = "Trash"


class Home:
    """One user's home folder."""

    url_prefix = "/cert_redirect/"  # where a file of this home is downloaded
    add_only = False  # a drop box (only ShareHome can be one)

    def __init__(self, root):
        self.root = os.path.realpath(root)

    def need(self, read=False, write=False, what="this"):
        """A home's owner may read and write all of it (a share link may not:
        see ShareHome)."""

    # -- confinement -------------------------------------------------------------
    def resolve(self, relpath, must_exist=False):
        """Absolute path for a home-relative path, or raise; never outside the home."""
        if relpath is None:
            raise NoFilePath("no file path provided")
        if "\x00" in relpath or len(relpath) > MAX_PATH:
            raise InvalidArgument("invalid path %r" % relpath[:80])
        rel = os.path.normpath("/" + relpath.replace("\\", "/")).lstrip("/")
        parts = [p for p in rel.split("/") if p]
        if any(p in INVISIBLE for p in parts):
            raise InvalidArgument("%s: not allowed" % relpath)
        if any(len(p.encode()) > 255 for p in parts):
            raise InvalidArgument("%s: a file name is too long" % relpath[:80])
        full = os.path.join(self.root, *parts) if parts else self.root
        exists = self._check_links(parts, full, relpath)
        if must_exist and not exists:
            raise FileNotFound("%s: No such file or directory" % relpath)
        return full

    def _check_links(self, parts, full, relpath):
        """Walk below the (already real) root; only a symlink costs a realpath.

        Returns whether the whole path exists.
        """
        current = self.root
        for part in parts:
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return False
            except NotADirectoryError:
                return False
            if stat.S_ISLNK(mode):
                real = os.path.realpath(full)
                if real != self.root and not real.startswith(self.root + os.sep):
                    raise InvalidArgument("%s: outside your home" % relpath)
                return os.path.lexists(full)
        return True

    def relative(self, path):
        rel = os.path.relpath(path, self.root)
        return "." if rel == "." else rel

    def expand(self, pattern, must_exist=True):
        """Glob a pattern inside the home; each match confined; sorted."""
        if any(c in pattern for c in "*?["):
            base = self.resolve(os.path.dirname(pattern) or ".")
            matches = sorted(glob.glob(os.path.join(base, os.path.basename(pattern))))
            safe = []
            for match in matches:
                try:
                    safe.append(self.resolve(self.relative(match)))
                except (InvalidArgument, FileNotFound):
                    continue
            if not safe and must_exist:
                raise FileNotFound("%s: No such file or directory" % pattern)
            return safe
        return [self.resolve(pattern, must_exist=must_exist)]

    # -- operations ---------------------------------------------------------------
    def listing(self, path, show_all=False, recursive=False):
        """[(path, [entries])]; entries are dicts with name, type, size, mtime, mode."""
        if not os.path.isdir(path):
            return [(os.path.dirname(path), [self._entry(path)])]
        result = []
        names = sorted(os.listdir(path))
        entries = [self._entry(os.path.join(path, n)) for n in names
                   if (show_all or not n.startswith(".")) and n not in INVISIBLE]
        result.append((path, entries))
        if recursive:
            for entry in entries:
                if entry["type"] == "directory":
                    result.extend(self.listing(os.path.join(path, entry["name"]),
                                               show_all, recursive))
        return result

    @staticmethod
    def _entry(path):
        info = os.lstat(path)
        kind = "directory" if stat.S_ISDIR(info.st_mode) else "file"
        return {"name": os.path.basename(path), "type": kind, "size": info.st_size,
                "mtime": info.st_mtime, "mode": info.st_mode}

    def read_bytes(self, relpath, limit=None):
        path = self.resolve(relpath, must_exist=True)
        if os.path.isdir(path):
            raise ClientError("%s: is a directory" % relpath)
        with open(path, "rb") as handle:
            return handle.read(limit) if limit else handle.read()

    def mkdir(self, relpath, parents=False):
        path = self.resolve(relpath)
        if os.path.lexists(path):
            if parents and os.path.isdir(path):
                return path
            raise ClientError("%s: path exist!" % relpath)
        if not parents and not os.path.isdir(os.path.dirname(path)):
            raise ClientError("cannot create %s: the parent folder does not exist "
                              "(use -p to create parents)" % relpath)
        try:
            os.makedirs(path, exist_ok=parents)
        except OSError as exc:
            raise ClientError("cannot create %s: %s" % (relpath, exc.strerror)) from None
        return path

    def removable(self, relpath, recursive, itself="your home"):
        """(path, is a folder) of something that may be removed, or raise: never
        the home itself, and a folder only with recursive."""
        path = self.resolve(relpath, must_exist=True)
        if path == self.root:
            raise ClientError("cannot remove %s" % itself)
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        if is_dir and not recursive:
            raise ClientError("cannot remove '%s': is a directory" % relpath)
        return path, is_dir

    def remove(self, relpath, recursive=False, force=False):
        """MiG moves to Trash/ unless forced; a folder needs recursive."""
        path, is_dir = self.removable(relpath, recursive)
        trash = os.path.join(self.root, TRASH)
        inside_trash = path == trash or path.startswith(trash + os.sep)
        if force or inside_trash:
            if is_dir:
                shutil.rmtree(path)
            else:
                os.unlink(path)
            return
        os.makedirs(trash, exist_ok=True)
        target = os.path.join(trash, os.path.basename(path))
        if os.path.lexists(target):
            target += "." + time.strftime("%Y%m%d-%H%M%S") + "-%d" % time.time_ns()
        os.replace(path, target)

    def open_for_upload(self, relpath):
        """A temporary file beside the destination; call finish_upload to commit."""
        path = self.resolve(relpath)
        if os.path.isdir(path):
            raise ClientError("Cannot write file %s: directory in the way!: please end the "
                              "destination in a slash if it is a directory!" % relpath)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise ClientError("You're trying to write to an invalid directory: %s"
                              % self.relative(parent))
        tmp = os.path.join(parent, ".upload-%s-%d" % (os.path.basename(path), time.time_ns()))
        return path, tmp

    def job_output_dir(self, job_id):
        return os.path.join(self.root, "job_output", job_id)

    def open_job_output(self, job_id):
        """A descriptor of job_output/JOBID, made if missing (the caller closes it).

        The usual way takes two steps from the home's descriptor and follows
        no link, which costs far fewer system calls than checking a path; a
        job_output that is a link is followed only where resolve() allows.
        """
        try:
            root = os.open(self.root, DIR_FLAGS)
            try:
                parent = open_made_folder(root, "job_output")
                try:
                    return open_made_folder(parent, job_id)
                finally:
                    os.close(parent)
            finally:
                os.close(root)
        except OSError:  # a link, or something else in the way: the general path
            path = self.resolve(os.path.join("job_output", job_id))
            os.makedirs(path, exist_ok=True)
            return os.open(path, DIR_FLAGS & ~os.O_NOFOLLOW)


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_made_folder(dir_fd, name):
    """Open the folder name below dir_fd, making it first if missing; no link followed."""
    try:
        os.mkdir(name, dir_fd=dir_fd)
    except FileExistsError:
        pass
    return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
