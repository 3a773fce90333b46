"""User homes: path confinement and every file operation on them.

Every user-given path goes through ``Home.resolve``: NUL bytes, absolute
and ``..`` paths are refused, and the real path (symlinks followed) must
stay inside the home, so a link planted in the home cannot lead out of it.
"""

import glob
import os
import shutil
import stat
import tarfile
import time
import zipfile
import zlib

from mig.errors import ClientError, FileNotFound, InvalidArgument, MigError, NoFilePath

MAX_PATH = 4096
INVISIBLE = {".htaccess"}
TRASH = "Trash"


class Home:
    """One user's home folder."""

    def __init__(self, root):
        self.root = os.path.realpath(root)

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

    def remove(self, relpath, recursive=False, force=False):
        """MiG moves to Trash/ unless forced; a folder needs recursive."""
        path = self.resolve(relpath, must_exist=True)
        if path == self.root:
            raise ClientError("cannot remove your home")
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        if is_dir and not recursive:
            raise ClientError("cannot remove '%s': is a directory" % relpath)
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
            root = os.open(self.root, _DIR_FLAGS)
            try:
                parent = _open_made_folder(root, "job_output")
                try:
                    return _open_made_folder(parent, job_id)
                finally:
                    os.close(parent)
            finally:
                os.close(root)
        except OSError:  # a link, or something else in the way: the general path
            path = self.resolve(os.path.join("job_output", job_id))
            os.makedirs(path, exist_ok=True)
            return os.open(path, _DIR_FLAGS & ~os.O_NOFOLLOW)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_made_folder(dir_fd, name):
    """Open the folder name below dir_fd, making it first if missing; no link followed."""
    try:
        os.mkdir(name, dir_fd=dir_fd)
    except FileExistsError:
        pass
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _parent_beneath(root, relpath):
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
    fd, name = _parent_beneath(root, relpath)
    try:
        file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not is_own_regular_file(os.fstat(file_fd), owner):
        os.close(file_fd)
        raise OSError("not a regular file")
    return os.fdopen(file_fd, "rb")


def _destination(dst_home, dst_rel):
    dst = dst_home.resolve(dst_rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    dst = dst_home.resolve(dst_rel)  # re-check after creating parents
    if os.path.isdir(dst):
        raise OSError("a folder is in the way")
    return dst


def copy_confined(src_root, src_rel, dst_home, dst_rel, owner=None):
    """Copy a file from a job folder into a home; both ends confined.  The copy
    is a new file of ours, renamed into place (never written through a link).

    Returns None when copied, else a reason (missing, or a link leading out).
    """
    try:
        source = open_beneath(src_root, src_rel, owner)
    except OSError:
        return ("%s: missing, not a regular file of the job's own, or behind a link"
                % src_rel)
    with source:
        tmp = None
        try:
            dst = _destination(dst_home, dst_rel)
            tmp = dst + ".part-%d" % time.time_ns()
            with open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            os.replace(tmp, dst)
            tmp = None
        except (OSError, MigError) as exc:
            return "%s: cannot be written: %s" % (dst_rel, getattr(exc, "strerror", None) or exc)
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    return None


def move_confined(src_root, src_rel, dst_home, dst_rel):
    """Like copy_confined, but renames when both are on one file system (cheap).

    The rename goes through the parent folder's descriptor, so it moves
    exactly the checked regular file; anything else falls back to a copy.
    """
    try:
        fd, name = _parent_beneath(src_root, src_rel)
    except OSError:
        return "%s: missing, not a regular file, or behind a link" % src_rel
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            return "%s: missing, not a regular file, or behind a link" % src_rel
        try:
            dst = _destination(dst_home, dst_rel)
            os.rename(name, dst, src_dir_fd=fd)
            return None
        except (OSError, MigError):
            pass  # another file system, or a problem copy_confined will name
    except OSError:
        return "%s: missing, not a regular file, or behind a link" % src_rel
    finally:
        os.close(fd)
    return copy_confined(src_root, src_rel, dst_home, dst_rel)


def move_regular_files(src_dir, names, dst_fd):
    """Rename regular files by name from a folder into the folder open as dst_fd
    (no path is re-walked).  Returns the names not moved."""
    left = []
    src_fd = os.open(src_dir, _DIR_FLAGS)
    try:
        for name in names:
            try:
                if not stat.S_ISREG(os.stat(name, dir_fd=src_fd, follow_symlinks=False).st_mode):
                    raise OSError("not a regular file")
                os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            except OSError:
                left.append(name)
    finally:
        os.close(src_fd)
    return left


# -- copy, move, archives, head and tail (the Files page and the shell) ---------------
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz",
                    ".tar.xz", ".txz")
MAX_ARCHIVE_BYTES = 4 * 1024 ** 3
MAX_ARCHIVE_MEMBERS = 100000
MAX_LINES = 100000
MAX_LINES_BYTES = 8 * 1024 * 1024
_TAIL_BLOCK = 64 * 1024


def is_archive(name):
    """Whether unpack_archive knows the file name's kind."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _target_path(home, src, dst_rel):
    """Where cp/mv put src for dst_rel: inside dst when it is a folder, else dst itself."""
    dst = home.resolve(dst_rel)
    if os.path.isdir(dst):
        dst = home.resolve(os.path.join(home.relative(dst), os.path.basename(src)))
    if not os.path.isdir(os.path.dirname(dst)):
        raise ClientError("%s: the destination folder does not exist" % dst_rel)
    return dst


def _inside(path, folder):
    return path == folder or path.startswith(folder + os.sep)


def _copy_file(src, dst):
    """Copy one regular file through a temporary beside dst; a link at dst is replaced."""
    tmp = os.path.join(os.path.dirname(dst), ".copy-%s-%d" % (os.path.basename(dst)[:200],
                                                              time.time_ns()))
    try:
        with open(src, "rb") as source, open(tmp, "xb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _copy_tree(home, src_dir, dst_dir, skipped):
    """Copy a folder's regular files and folders; links and special files are skipped.

    Iterative (deep trees are fine) and never writes through a link at the
    destination, so a copy cannot leave the home.
    """
    stack = [(src_dir, dst_dir)]
    while stack:
        source, target = stack.pop()
        if os.path.islink(target):
            skipped.append((home.relative(target), "a link is in the way"))
            continue
        if os.path.lexists(target) and not os.path.isdir(target):
            skipped.append((home.relative(target), "a file is in the way of a folder"))
            continue
        os.makedirs(target, exist_ok=True)
        with os.scandir(source) as entries:
            entries = sorted(entries, key=lambda e: e.name)
        for entry in entries:
            to = os.path.join(target, entry.name)
            shown = home.relative(to)
            if entry.name in INVISIBLE:
                skipped.append((shown, "not allowed"))
            elif entry.is_symlink():
                skipped.append((shown, "links are not copied"))
            elif entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, to))
            elif not entry.is_file(follow_symlinks=False):
                skipped.append((shown, "not a regular file"))
            elif os.path.isdir(to) and not os.path.islink(to):
                skipped.append((shown, "a folder is in the way"))
            else:
                _copy_file(entry.path, to)


def copy_path(home, src_rel, dst_rel, recursive=False, skipped=None):
    """Copy a file, or a folder when recursive, to dst (into it if it is a folder).

    Files at the target are overwritten, folders are merged; links inside a
    copied folder are skipped (listed in skipped as (relpath, reason)).
    Returns the home-relative target.
    """
    skipped = [] if skipped is None else skipped
    src = home.resolve(src_rel, must_exist=True)
    if src == home.root and not recursive:
        raise ClientError("cannot copy your whole home without r (recursive)")
    dst = _target_path(home, src, dst_rel)
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    if real_src == real_dst:
        raise ClientError("'%s' and '%s' are the same file" % (src_rel, dst_rel))
    try:
        if os.path.isdir(src):
            if not recursive:
                raise ClientError("%s: is a folder (copy folders recursively)" % src_rel)
            if _inside(real_dst, real_src):
                raise ClientError("cannot copy '%s' into itself" % src_rel)
            if os.path.lexists(dst) and not os.path.isdir(dst):
                raise ClientError("cannot overwrite the file %s with the folder %s"
                                  % (home.relative(dst), src_rel))
            _copy_tree(home, real_src, dst, skipped)
        elif os.path.isfile(src):
            if os.path.isdir(dst) and not os.path.islink(dst):
                raise ClientError("cannot overwrite the folder %s with the file %s"
                                  % (home.relative(dst), src_rel))
            _copy_file(src, dst)
        else:
            raise ClientError("%s: not a regular file or folder" % src_rel)
    except OSError as exc:
        raise ClientError("cannot copy %s: %s" % (src_rel, exc.strerror or exc)) from None
    return home.relative(dst)


def move_path(home, src_rel, dst_rel):
    """Move (rename) a file or folder to dst (into it if it is a folder).

    An existing file at the target is replaced; an existing folder only if
    it is empty.  Returns the home-relative target.
    """
    src = home.resolve(src_rel, must_exist=True)
    if src == home.root:
        raise ClientError("cannot move your home")
    dst = _target_path(home, src, dst_rel)
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    if os.path.lexists(dst):
        if os.path.realpath(dst) == os.path.realpath(src) or dst == src:
            raise ClientError("'%s' and '%s' are the same file" % (src_rel, dst_rel))
        dst_is_dir = os.path.isdir(dst) and not os.path.islink(dst)
        if dst_is_dir and not src_is_dir:
            raise ClientError("cannot overwrite the folder %s with the file %s"
                              % (home.relative(dst), src_rel))
        if src_is_dir and not dst_is_dir:
            raise ClientError("cannot overwrite the file %s with the folder %s"
                              % (home.relative(dst), src_rel))
        if dst_is_dir and os.listdir(dst):
            raise ClientError("cannot move %s to %s: the folder is not empty"
                              % (src_rel, home.relative(dst)))
    if src_is_dir and _inside(os.path.realpath(dst), os.path.realpath(src)):
        raise ClientError("cannot move '%s' into itself" % src_rel)
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another file system below the home
            raise ClientError("cannot move %s: %s" % (src_rel, exc.strerror or exc)) from None
        copy_path(home, home.relative(src), home.relative(dst), recursive=True)
        if src_is_dir:
            shutil.rmtree(src)
        else:
            os.unlink(src)
    return home.relative(dst)


def _member_parts(name):
    """The safe path parts of an archive member name, or raise (zip slip, absolute)."""
    if "\x00" in name:
        raise ClientError("archive member %r: NUL in the name; nothing was unpacked" % name)
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":" and clean[0].isalpha()):
        raise ClientError("archive member %r has an absolute name; nothing was unpacked"
                          % name)
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ClientError("archive member %r points outside the destination folder; nothing "
                          "was unpacked" % name)
    return parts


def _zip_plan(archive, max_members):
    """[(name, parts, kind, size, mode, opener)] for a zip file; kind file|dir|skip."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ClientError("not a valid zip archive: %s" % exc) from None
    infos = zf.infolist()
    if len(infos) > max_members:
        zf.close()
        raise ClientError("the archive has %d members; at most %d are unpacked"
                          % (len(infos), max_members))
    plan = []
    for info in infos:
        mode = info.external_attr >> 16
        fmt = stat.S_IFMT(mode)
        if info.is_dir() or fmt == stat.S_IFDIR:
            kind = "dir"
        elif fmt in (0, stat.S_IFREG):
            kind = "file"
        else:
            kind = "skip"
        plan.append((info.filename, _member_parts(info.filename), kind,
                     info.file_size if kind == "file" else 0, mode,
                     lambda info=info: zf.open(info)))
    return zf, plan


def _tar_plan(archive, max_members):
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ClientError("not a valid tar archive: %s" % exc) from None
    plan = []
    try:
        for member in tf:
            if len(plan) >= max_members:
                raise ClientError("the archive has more than %d members; nothing was unpacked"
                                  % max_members)
            kind = "dir" if member.isdir() else "file" if member.isreg() else "skip"
            plan.append((member.name, _member_parts(member.name), kind,
                         member.size if kind == "file" else 0, member.mode,
                         lambda member=member: tf.extractfile(member)))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        tf.close()
        raise ClientError("the tar archive is damaged: %s" % exc) from None
    except MigError:
        tf.close()
        raise
    return tf, plan


def unpack_archive(home, archive_rel, dest_rel, skipped=None,
                   max_bytes=MAX_ARCHIVE_BYTES, max_members=MAX_ARCHIVE_MEMBERS):
    """Unpack a .zip or tar archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) into dest.

    All names are checked before anything is written: an absolute name or
    one with '..' refuses the whole archive, as do more than max_members
    members or more than max_bytes in total.  Links, hard links and devices
    are skipped, as are names the home does not allow (listed in skipped as
    (member name, reason)).  Returns the home-relative paths of the files
    written.
    """
    skipped = [] if skipped is None else skipped
    archive = home.resolve(archive_rel, must_exist=True)
    if not os.path.isfile(archive):
        raise ClientError("%s: not a file" % archive_rel)
    dest = home.resolve(dest_rel, must_exist=True)
    if not os.path.isdir(dest):
        raise ClientError("%s: not a folder" % dest_rel)
    lower = archive.lower()
    if lower.endswith(".zip"):
        handle, plan = _zip_plan(archive, max_members)
    elif is_archive(lower):
        handle, plan = _tar_plan(archive, max_members)
    else:
        raise ClientError("%s: not a supported archive (%s)"
                          % (archive_rel, ", ".join(ARCHIVE_SUFFIXES)))
    with handle:
        total = sum(size for _n, _p, _k, size, _m, _o in plan)
        if total > max_bytes:
            raise ClientError("the archive unpacks to %d bytes; at most %d are allowed"
                              % (total, max_bytes))
        return _unpack(home, home.relative(dest), plan, skipped, max_bytes)


def _unpack(home, dest_rel, plan, skipped, max_bytes):
    written, budget = [], max_bytes
    for name, parts, kind, _size, mode, opener in plan:
        if kind == "skip":
            skipped.append((name, "links and special files are not unpacked"))
            continue
        if not parts:
            continue
        rel = os.path.join(dest_rel, *parts) if dest_rel != "." else os.path.join(*parts)
        try:
            path = home.resolve(rel)
            if kind == "dir":
                if os.path.lexists(path) and not os.path.isdir(path):
                    raise ClientError("a file is in the way")
                os.makedirs(path, exist_ok=True)
                home.resolve(rel)  # re-check: no link was followed on the way
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            path = home.resolve(rel)
            if os.path.isdir(path) and not os.path.islink(path):
                raise ClientError("a folder is in the way")
            budget = _write_member(path, opener, mode, budget)
            written.append(home.relative(path))
        except MigError as exc:
            skipped.append((name, exc.message))
        except OSError as exc:
            skipped.append((name, exc.strerror or str(exc)))
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
            raise ClientError("the archive is damaged at %r: %s (%d files were unpacked)"
                              % (name, exc, len(written))) from None
    return written


def _write_member(path, opener, mode, budget):
    tmp = os.path.join(os.path.dirname(path), ".unpack-%s-%d" % (os.path.basename(path)[:200],
                                                                 time.time_ns()))
    try:
        with opener() as source, open(tmp, "xb") as out:
            while True:
                chunk = source.read(1024 * 1024)
                if not chunk:
                    break
                budget -= len(chunk)
                if budget < 0:
                    raise ClientError("the archive unpacks to more than its declared size")
                out.write(chunk)
        os.chmod(tmp, 0o755 if mode & 0o100 else 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return budget


def _text_file(home, rel):
    path = home.resolve(rel, must_exist=True)
    if os.path.isdir(path):
        raise ClientError("%s: is a directory" % rel)
    if not os.path.isfile(path):
        raise ClientError("%s: not a regular file" % rel)
    return path


def _line_count(n):
    n = int(n)
    if n < 0:
        raise InvalidArgument("the number of lines must not be negative")
    return min(n, MAX_LINES)


def head_lines(home, rel, n=10):
    """The first n lines of a file as text (at most MAX_LINES_BYTES read)."""
    n = _line_count(n)
    path = _text_file(home, rel)
    lines, budget = [], MAX_LINES_BYTES
    with open(path, "rb") as handle:
        while len(lines) < n and budget > 0:
            line = handle.readline(budget)
            if not line:
                break
            budget -= len(line)
            lines.append(line)
    return b"".join(lines).decode("utf-8", "replace")


def tail_lines(home, rel, n=10):
    """The last n lines of a file as text: reads blocks backwards from the end,
    so a large file costs only what is shown (at most MAX_LINES_BYTES)."""
    n = _line_count(n)
    path = _text_file(home, rel)
    if n == 0:
        return ""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        chunks, pos, newlines, final = [], end, 0, None
        while pos > 0:
            step = min(_TAIL_BLOCK, pos)
            pos -= step
            handle.seek(pos)
            chunk = handle.read(step)
            if final is None:
                final = chunk.endswith(b"\n")
                newlines -= 1 if final else 0
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
            if newlines >= n or end - pos >= MAX_LINES_BYTES:
                break
    data = b"".join(reversed(chunks))
    trailer = b"\n" if final else b""
    lines = (data[:-1] if trailer else data).split(b"\n")
    if pos > 0 and len(lines) > 1:
        lines = lines[1:]  # the first piece may be the end of a longer line
    return (b"\n".join(lines[-n:]) + trailer).decode("utf-8", "replace")


# -- expand, checksums, counts, grep, touch, truncate, rmdir, pack, live input -----------
import contextlib  # noqa: E402  (these serve the operations below only)
import hashlib  # noqa: E402

from mig.core import saferegex  # noqa: E402
from mig.errors import SystemFailure  # noqa: E402

HASHES = ("md5", "sha1", "sha256", "sha512")
CHECKSUM_CHUNK = 32 * 1024
MAX_GREP_LINE = 1024 * 1024
GREP_BATCH = 2 * 1024 * 1024  # characters per helper call; with one line more, under MAX_INPUT
MAX_TRUNCATE_BYTES = MAX_ARCHIVE_BYTES
PACK_MODES = ((".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.bz2", "w:bz2"),
              (".tbz2", "w:bz2"), (".tbz", "w:bz2"), (".tar.xz", "w:xz"), (".txz", "w:xz"),
              (".tar", "w"), (".zip", "zip"))


def has_wildcards(pattern):
    return any(c in pattern for c in "*?[")


def expand_tree(home, path, recursive=False, show_all=False, max_files=MAX_ARCHIVE_MEMBERS):
    """[(home-relative file, destination name)] for one confined path, as MiG's expand.

    A file stands for itself, its destination is its base name; a folder
    stands for its files, and with recursive for every file below it, the
    destination then keeping the folder's own name (``top/sub/b.txt``).
    Hidden names only with show_all; a link counts only where it stays in
    the home, and folders behind links are not entered.
    """
    if os.path.isfile(path):
        return [(home.relative(path), os.path.basename(path))]
    if not os.path.isdir(path):
        return []
    top = "" if path == home.root else os.path.basename(path)
    found, stack = [], [path]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
        subfolders = []
        for entry in entries:
            if entry.name in INVISIBLE or (entry.name.startswith(".") and not show_all):
                continue
            rel = home.relative(entry.path)
            if entry.is_symlink():
                try:
                    home.resolve(rel)
                except MigError:
                    continue
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(entry.path)
            elif entry.is_file():
                dest = os.path.join(top, os.path.relpath(entry.path, path)) if recursive \
                    else entry.name
                found.append((rel, dest))
                if len(found) > max_files:
                    raise ClientError("%s holds more than %d files: name fewer at a time"
                                      % (home.relative(path), max_files))
        if recursive:
            stack.extend(reversed(subfolders))
    return found


def checksum(home, rel, algo="md5", max_chunks=-1, chunk_size=CHECKSUM_CHUNK):
    """A file's hex digest, as MiG's chksum: with max_chunks > 0 only that many
    chunks are read and the digest is marked ``(of first N bytes)``."""
    if algo not in HASHES:
        raise InvalidArgument("unknown hash_algo %r: use %s" % (algo, ", ".join(HASHES)))
    path = _text_file(home, rel)
    digest = hashlib.new(algo)
    chunks = 0
    with open(path, "rb") as handle:
        while max_chunks <= 0 or chunks < max_chunks:
            block = handle.read(chunk_size)
            if not block:
                break
            digest.update(block)
            chunks += 1
        partial = max_chunks > 0 and handle.read(1) != b""
    return digest.hexdigest() + (" (of first %d bytes)" % (chunk_size * max_chunks)
                                 if partial else "")


def word_count(home, rel):
    """(lines, words, bytes) of a file, read in blocks (a word may span two)."""
    path = _text_file(home, rel)
    lines = words = size = 0
    in_word = False
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            size += len(block)
            lines += block.count(b"\n")
            parts = block.split()
            words += len(parts)
            if parts and in_word and not block[:1].isspace():
                words -= 1  # the first part continues the last block's word
            in_word = not block[-1:].isspace()
    return lines, words, size


def grep_lines(home, rel, pattern, limit=MAX_LINES_BYTES):
    """(the lines of a file pattern finds, whether all were shown): at most limit bytes;
    a line longer than MAX_GREP_LINE is searched in pieces.  The lines go in batches
    to saferegex's helpers, so a runaway pattern costs its helper, not the server."""
    path = _text_file(home, rel)
    found, budget = [], limit
    with open(path, "rb") as handle:
        while True:
            batch, size = [], 0
            while size < GREP_BATCH:
                line = handle.readline(MAX_GREP_LINE)
                if not line:
                    break
                batch.append(line.decode("utf-8", "replace"))
                size += len(batch[-1])
            if not batch:
                return "".join(found), True
            for index in saferegex.search_lines(pattern, batch):
                text = batch[index] if batch[index].endswith("\n") else batch[index] + "\n"
                budget -= len(text)
                if budget < 0:
                    return "".join(found), False
                found.append(text)


def touch_file(home, rel):
    """Create an empty file, or set a file's or folder's times to now (MiG's touch)."""
    path = home.resolve(rel)
    if not os.path.isdir(os.path.dirname(path)):
        raise FileNotFound("%s: No such file or directory" % rel)
    try:
        if not os.path.isdir(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o644))
        os.utime(path)
    except OSError as exc:
        raise ClientError("cannot touch %s: %s" % (rel, exc.strerror or exc)) from None


def truncate_file(home, rel, size=0):
    """Cut a file to size bytes (or extend it with zero bytes, up to a limit)."""
    if size > MAX_TRUNCATE_BYTES:
        raise InvalidArgument("size %d is larger than the %d bytes allowed"
                              % (size, MAX_TRUNCATE_BYTES))
    path = _text_file(home, rel)
    try:
        os.truncate(path, size)
    except OSError as exc:
        raise ClientError("cannot truncate %s: %s" % (rel, exc.strerror or exc)) from None


def remove_dir(home, rel, parents=False):
    """Remove an empty folder (MiG's rmdir); with parents also each parent that is
    then empty, stopping quietly at the first that is not (never the home)."""
    path = home.resolve(rel, must_exist=True)
    if path == home.root:
        raise ClientError("cannot remove your home")
    if os.path.islink(path) or not os.path.isdir(path):
        raise ClientError("rmdir '%s' failed: not a directory" % rel)
    try:
        os.rmdir(path)
    except OSError:
        raise SystemFailure("rmdir '%s' failed!" % rel) from None
    while parents:
        path = os.path.dirname(path)
        if not _inside(path, home.root) or path == home.root:
            break
        try:
            os.rmdir(path)
        except OSError:
            break


def _pack_mode(dst_rel):
    lower = dst_rel.lower()
    for suffix, mode in PACK_MODES:
        if lower.endswith(suffix):
            return mode
    raise ClientError("%s: unknown archive format; end the name in %s"
                      % (dst_rel, ", ".join(s for s, _m in PACK_MODES)))


def _pack_plan(home, sources, dst, skipped, max_bytes, max_members):
    """[(path, member name, is_file)] for the sources, walked without following links."""
    plan, total = [], 0
    for rel in sources:
        src = home.resolve(rel, must_exist=True)
        base = os.path.dirname(src)
        stack = [src]
        while stack:
            path = stack.pop()
            name = os.path.relpath(path, base)
            mode = os.lstat(path).st_mode
            if path == dst:
                skipped.append((name, "the archive itself is not packed"))
            elif os.path.basename(path) in INVISIBLE:
                skipped.append((name, "not allowed"))
            elif stat.S_ISLNK(mode):
                skipped.append((name, "links are not packed"))
            elif stat.S_ISDIR(mode):
                plan.append((path, name, False))
                stack.extend(sorted((os.path.join(path, n) for n in os.listdir(path)),
                                    reverse=True))
            elif stat.S_ISREG(mode):
                plan.append((path, name, True))
                total += os.lstat(path).st_size
            else:
                skipped.append((name, "not a regular file"))
            if len(plan) > max_members or total > max_bytes:
                raise ClientError("the archive would hold more than %d files or %d bytes"
                                  % (max_members, max_bytes))
    return plan


def _open_regular(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError("%s is no longer a regular file" % os.path.basename(path))
    return os.fdopen(fd, "rb")


def _write_archive(tmp, mode, plan):
    if mode == "zip":
        with zipfile.ZipFile(tmp, "x", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for path, name, is_file in plan:
                info = zipfile.ZipInfo.from_file(path, name)
                if not is_file:
                    archive.writestr(info, b"")
                    continue
                info.compress_type = zipfile.ZIP_DEFLATED
                with _open_regular(path) as source, \
                        archive.open(info, "w", force_zip64=info.file_size > 2 ** 31) as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
        return
    with tarfile.open(tmp, mode.replace("w", "x"), format=tarfile.PAX_FORMAT) as archive:
        for path, name, is_file in plan:
            source = _open_regular(path) if is_file else None
            try:
                info = archive.gettarinfo(path if source is None else None, name, source)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                archive.addfile(info, source)
            finally:
                if source is not None:
                    source.close()


def pack_archive(home, sources, dst_rel, skipped=None, max_bytes=MAX_ARCHIVE_BYTES,
                 max_members=MAX_ARCHIVE_MEMBERS):
    """Pack home-relative files and folders into a new archive at dst_rel.

    The name decides the format: .zip, .tar, .tar.gz/.tgz, .tar.bz2/.tbz2
    or .tar.xz.  Each source is stored under its own name, folders with
    everything below them; links, special files, names the home does not
    allow and the archive itself are skipped (listed in skipped as (name,
    reason)).  Written through a temporary beside dst, so a failure leaves
    no half archive.  Returns the number of members written.
    """
    skipped = [] if skipped is None else skipped
    mode = _pack_mode(dst_rel)
    dst = home.resolve(dst_rel)
    if not os.path.isdir(os.path.dirname(dst)):
        raise ClientError("No such destination directory: %s"
                          % home.relative(os.path.dirname(dst)))
    if os.path.isdir(dst):
        raise ClientError("%s: a folder is in the way" % dst_rel)
    plan = _pack_plan(home, sources, dst, skipped, max_bytes, max_members)
    tmp = os.path.join(os.path.dirname(dst), ".pack-%s-%d" % (os.path.basename(dst)[:200],
                                                              time.time_ns()))
    try:
        _write_archive(tmp, mode, plan)
        os.replace(tmp, dst)
    except (OSError, tarfile.TarError, zipfile.LargeZipFile) as exc:
        raise ClientError("cannot pack %s: %s" % (dst_rel, getattr(exc, "strerror", None)
                                                  or exc)) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return len(plan)


def copy_into_beneath(home, src_rel, root, dst_rel, protected=()):
    """Copy a home file into a folder another party controls (a running job's).

    The way down from root is walked without following links, missing
    folders are created, the file is opened with O_NOFOLLOW and the names
    in protected (relative to root) are never replaced.  Returns None when
    copied, else the reason.
    """
    parts = [p for p in os.path.normpath(dst_rel).split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return "%s: not a valid destination in the job folder" % dst_rel
    if "/".join(parts) in protected:
        return "%s: belongs to the job and is not replaced" % "/".join(parts)
    try:
        source = open(home.resolve(src_rel, must_exist=True), "rb")
    except MigError as exc:
        return exc.message
    except OSError as exc:
        return "%s: cannot be read: %s" % (src_rel, exc.strerror or exc)
    with source:
        try:
            owner = os.stat(root)
            for depth in range(1, len(parts)):
                fd, name = _parent_beneath(root, "/".join(parts[:depth]))
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    if os.geteuid() == 0:  # made just now by us: the job's to use
                        os.chown(name, owner.st_uid, owner.st_gid, dir_fd=fd,
                                 follow_symlinks=False)
                except FileExistsError:
                    pass
                finally:
                    os.close(fd)
            fd, name = _parent_beneath(root, "/".join(parts))
            try:
                # A new file renamed over the name: never written through a
                # link (hard or soft) that the job may have put there.
                part = ".%s.mig-part-%d" % (name[:200], time.time_ns())
                out = os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                        | os.O_NOFOLLOW, 0o644, dir_fd=fd), "wb")
                try:
                    with out:
                        if os.geteuid() == 0:  # the job's own account must be able to use it
                            folder = os.fstat(fd)
                            os.fchown(out.fileno(), folder.st_uid, folder.st_gid)
                        shutil.copyfileobj(source, out, 1024 * 1024)
                    os.rename(part, name, src_dir_fd=fd, dst_dir_fd=fd)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(part, dir_fd=fd)
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            return "%s: cannot be written in the job folder: %s" % (dst_rel,
                                                                   exc.strerror or exc)
    return None
