"""Archives in a home: unpacking zip and tar files without letting a member
escape (zip slip, links, devices), within size and member limits, and
packing files and folders into one."""

import os
import shutil
import stat
import tarfile
import zipfile
import zlib

from mig.core.atomic import replacing
from mig.core.home import INVISIBLE
from mig.errors import ClientError, MigError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz",
                    ".tar.xz", ".txz")
MAX_ARCHIVE_BYTES = 4 * 1024 ** 3
MAX_ARCHIVE_MEMBERS = 100000
PACK_MODES = ((".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.bz2", "w:bz2"),
              (".tbz2", "w:bz2"), (".tbz", "w:bz2"), (".tar.xz", "w:xz"), (".txz", "w:xz"),
              (".tar", "w"), (".zip", "zip"))

def is_archive(name):
    """Whether unpack_archive knows the file name's kind."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


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
    dest = home.check_write(home.resolve(dest_rel, must_exist=True), dest_rel)
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
    """One member, whole or not at all (the one atomic writer), within what
    is left of the byte budget; the budget left after it."""
    with opener() as source, replacing(path, mode=0o755 if mode & 0o100 else 0o644) as out:
        while True:
            chunk = source.read(1024 * 1024)
            if not chunk:
                break
            budget -= len(chunk)
            if budget < 0:
                raise ClientError("the archive unpacks to more than its declared size")
            out.write(chunk)
    return budget


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


def _write_archive(out, mode, plan):
    """Write the archive into the open file out."""
    if mode == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
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
    with tarfile.open(fileobj=out, mode=mode.replace(":", "|"), format=tarfile.PAX_FORMAT) \
            as archive:
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
    reason)).  Written by the one atomic writer, so a failure leaves no half
    archive.  Returns the number of members written.
    """
    skipped = [] if skipped is None else skipped
    mode = _pack_mode(dst_rel)
    dst = home.check_write(home.resolve(dst_rel), dst_rel)
    if not os.path.isdir(os.path.dirname(dst)):
        raise ClientError("No such destination directory: %s"
                          % home.relative(os.path.dirname(dst)))
    if os.path.isdir(dst):
        raise ClientError("%s: a folder is in the way" % dst_rel)
    plan = _pack_plan(home, sources, dst, skipped, max_bytes, max_members)
    try:
        with replacing(dst, mode=0o644) as out:
            _write_archive(out, mode, plan)
    except (OSError, tarfile.TarError, zipfile.LargeZipFile) as exc:
        raise ClientError("cannot pack %s: %s" % (dst_rel, getattr(exc, "strerror", None)
                                                  or exc)) from None
    return len(plan)
