"""A user's home: path confinement, listings and the basic file operations.

Every user-given path goes through ``Home.resolve``: NUL bytes, absolute
and ``..`` paths are refused, and the real path (symlinks followed) must
stay inside the home, so a link planted in the home cannot lead out of it.

The shared folders of the user's VGrids appear inside the home under the
VGrid's name (``Lab/``, ``Lab/Sub/``): ``shared`` maps each name to its
real folder and whether the user may write there.  A path below such a
name resolves into that folder and is confined to it the same way; writes
there are checked with ``check_write``, and the shared folder itself can be
neither removed nor moved.
"""

import glob
import os
import shutil
import stat
import time

from mig.errors import AccessDenied, ClientError, FileNotFound, InvalidArgument, NoFilePath

MAX_PATH = 4096
INVISIBLE = {".htaccess"}
TRASH = "Trash"


class Home:
    """One user's home folder."""

    url_prefix = "/cert_redirect/"  # where a file of this home is downloaded
    add_only = False  # a drop box (only ShareHome can be one)

    def __init__(self, root, shared=None):
        self.root = os.path.realpath(root)
        self.shared = shared or {}

    @property
    def shared(self):
        """VGrid name -> (its shared folder's real path, whether writable here)."""
        return self._shared

    @shared.setter
    def shared(self, folders):
        # real paths once here, not at every resolve of a path below them
        self._shared = {name: (os.path.realpath(folder), writable)
                        for name, (folder, writable) in folders.items()}

    def _mount(self, parts):
        """(number of leading parts that name a shared folder, its real folder), or
        (0, None); the deepest name wins (Lab/Sub before Lab)."""
        for n in range(len(parts), 0, -1):
            found = self.shared.get("/".join(parts[:n]))
            if found is not None:
                return n, found[0]
        return 0, None

    def shared_folder_of(self, path):
        """(VGrid name, real folder, writable) of the shared folder path lies in, or None."""
        best = None
        for name, (real, writable) in self.shared.items():
            if (path == real or path.startswith(real + os.sep)) and \
                    (best is None or len(real) > len(best[1])):
                best = (name, real, writable)
        return best

    def check_write(self, path, relpath=None):
        """Refuse a write into a shared folder the user may only read."""
        found = self.shared_folder_of(path)
        if found is not None and not found[2]:
            raise AccessDenied("%s: the shared folder of %s is read-only for you"
                               % (relpath or self.relative(path), found[0]))
        return path

    def is_shared_root(self, path):
        found = self.shared_folder_of(path)
        return found is not None and found[1] == path

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
        taken, base = self._mount(parts)
        if base is None:
            base = self.root
        rest = parts[taken:]
        full = os.path.join(base, *rest) if rest else base
        exists = self._check_links(rest, full, relpath, base)
        if must_exist and not exists:
            raise FileNotFound("%s: No such file or directory" % relpath)
        return full

    def _check_links(self, parts, full, relpath, base):
        """Walk below the (already real) base; only a symlink costs a realpath.

        Returns whether the whole path exists.
        """
        current = base
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
                if real != base and not real.startswith(base + os.sep):
                    raise InvalidArgument("%s: outside your home" % relpath)
                return os.path.lexists(full)
        return True

    def relative(self, path):
        found = self.shared_folder_of(path) if self.shared else None
        if found is not None:
            rel = os.path.relpath(path, found[1])
            return found[0] if rel == "." else found[0] + "/" + rel
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
                   if (show_all or not n.startswith(".")) and n not in INVISIBLE
                   and not self._shadowed(path, n)]
        entries = sorted(entries + self._shared_entries(path), key=lambda e: e["name"])
        result.append((path, entries))
        if recursive:
            for entry in entries:
                if entry["type"] == "directory":
                    result.extend(self.listing(os.path.join(path, entry["name"]),
                                               show_all, recursive))
        return result

    def _shared_entries(self, path):
        """The shared folders that appear in the folder at path (real path)."""
        found = []
        for name, (folder, _writable) in self.shared.items():
            parent, _sep, leaf = name.rpartition("/")
            where = os.path.join(self.root, *parent.split("/")) if parent else self.root
            if where == path and os.path.isdir(folder):
                entry = self._entry(folder)
                entry["name"] = leaf
                entry["shared"] = name
                found.append(entry)
        return found

    def _shadowed(self, path, name):
        """A name of the home hidden by a shared folder of the same name."""
        if not self.shared:
            return False
        rel = os.path.relpath(os.path.join(path, name), self.root)
        return rel in self.shared

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
        path = self.check_write(self.resolve(relpath), relpath)
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
        if self.is_shared_root(path):
            raise ClientError("cannot remove %s: it is the shared folder of a VGrid (leave the "
                              "VGrid instead)" % relpath)
        self.check_write(path, relpath)
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
        path = self.check_write(self.resolve(relpath), relpath)
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
