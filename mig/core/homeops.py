"""The operations of the Files page, the shell and MiG's scripts on a home:
copy and move, head and tail, wildcards, checksums, counts, grep, touch,
truncate and rmdir.  Every path is confined by Home.resolve."""

import hashlib
import os
import shutil
import stat

from mig.core import saferegex
from mig.core.atomic import replacing
from mig.core.archives import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS
from mig.core.home import INVISIBLE
from mig.errors import ClientError, FileNotFound, InvalidArgument, MigError, SystemFailure

MAX_LINES = 100000
MAX_LINES_BYTES = 8 * 1024 * 1024
_TAIL_BLOCK = 64 * 1024
HASHES = ("md5", "sha1", "sha256", "sha512")
CHECKSUM_CHUNK = 32 * 1024
MAX_GREP_LINE = 1024 * 1024
GREP_BATCH = 2 * 1024 * 1024  # characters per helper call; with one line more, under MAX_INPUT
MAX_TRUNCATE_BYTES = MAX_ARCHIVE_BYTES


def _target_path(home, src, dst_rel):
    """Where cp/mv put src for dst_rel: inside dst when it is a folder, else dst itself."""
    dst = home.resolve(dst_rel)
    if os.path.isdir(dst):
        dst = home.resolve(os.path.join(home.relative(dst), os.path.basename(src)))
    if not os.path.isdir(os.path.dirname(dst)):
        raise ClientError("%s: the destination folder does not exist" % dst_rel)
    return home.check_write(dst, dst_rel)


def _inside(path, folder):
    return path == folder or path.startswith(folder + os.sep)


def _copy_file(src, dst):
    """Copy one regular file whole or not at all (the one atomic writer); a
    link at dst is replaced, never written through."""
    with open(src, "rb") as source:
        mode = stat.S_IMODE(os.fstat(source.fileno()).st_mode)
        with replacing(dst, mode=mode) as out:
            shutil.copyfileobj(source, out, 1024 * 1024)


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
    if home.is_shared_root(src):
        raise ClientError("cannot move %s: it is the shared folder of a VGrid" % src_rel)
    home.check_write(src, src_rel)
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
    path = home.check_write(home.resolve(rel), rel)
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
    path = home.check_write(_text_file(home, rel), rel)
    try:
        os.truncate(path, size)
    except OSError as exc:
        raise ClientError("cannot truncate %s: %s" % (rel, exc.strerror or exc)) from None


def remove_dir(home, rel, parents=False):
    """Remove an empty folder (MiG's rmdir); with parents also each parent that is
    then empty, stopping quietly at the first that is not (never the home)."""
    path = home.resolve(rel, must_exist=True)
    if path == home.root or home.is_shared_root(path):
        raise ClientError("cannot remove %s" % ("your home" if path == home.root else
                                                "the shared folder of a VGrid"))
    home.check_write(path, rel)
    if os.path.islink(path) or not os.path.isdir(path):
        raise ClientError("rmdir '%s' failed: not a directory" % rel)
    try:
        os.rmdir(path)
    except OSError:
        raise SystemFailure("rmdir '%s' failed!" % rel) from None
    while parents:
        path = os.path.dirname(path)
        if not _inside(path, home.root) or path == home.root or home.is_shared_root(path):
            break
        try:
            os.rmdir(path)
        except OSError:
            break
