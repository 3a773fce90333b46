"""Uploads that arrive in pieces or as a request body: uploadchunked writes
chunks into ``.upload-cache/NAME`` at the offset of the request's
``Content-Range: bytes FIRST-LAST/TOTAL`` header (or of an ``offset``
field), so multi-chunk and resumed uploads work, and ``move`` then moves
the file into ``current_dir``; store_upload writes a streamed body (PUT,
CERTPUT, SHAREPUT) whole or not at all."""

import os
import re
import stat

from mig.backends import Field, backend
from mig.core.atomic import write_atomic
from mig.core.home import INVISIBLE
from mig.errors import ClientError, InvalidArgument, MigError
from mig.render import objects as O

UPLOAD_CACHE = ".upload-cache"
UPLOAD_BLOCK = 64 * 1024 * 1024  # MiG's upload_block_size: the largest chunk
COPY_BLOCK = 1024 * 1024
CHUNK_ACTIONS = ("put", "move", "status", "delete")


def _upload_limit(ctx):
    return ctx.grid.config.max_upload_mb * 1024 * 1024


def _body_chunks(body, length):
    """length bytes of a request body as they arrive (never held whole)."""
    remaining = length
    while remaining > 0:
        chunk = body.read(min(remaining, COPY_BLOCK))
        if not chunk:
            raise ClientError("the upload ended after %d of %d bytes"
                              % (length - remaining, length))
        remaining -= len(chunk)
        yield chunk


def store_upload(home, rel, body, length, overwrite=True):
    """Write length bytes of body to rel in home, whole or not at all (the
    one atomic writer); the home-relative name it got.  With overwrite
    False an existing name is never replaced (a drop box only adds)."""
    if not rel or rel.endswith("/"):
        raise ClientError("no destination file name given")
    final, _tmp = home.open_for_upload(rel)
    try:
        write_atomic(final, _body_chunks(body, length), replace=overwrite)
    except FileExistsError:
        raise ClientError("%s exists already: a write-only share link never replaces files"
                          % home.relative(final)) from None
    return home.relative(final)


def _clean_name(filename):
    """A file name from a client: its last component, checked."""
    name = (filename or "").replace("\\", "/").rstrip("/").split("/")[-1]
    if name in ("", ".", "..") or name in INVISIBLE or "\x00" in name or \
            len(name.encode("utf-8", "surrogateescape")) > 255:
        raise InvalidArgument("invalid filename: %r" % (filename or "")[:80])
    return name


def _chunk_region(ctx, args, size):
    """(offset, final size or None) of a put chunk of size bytes.

    From the request's Content-Range header (bytes FIRST-LAST/TOTAL, TOTAL
    may be *), else an offset field (nothing is truncated), else the chunk is
    the whole file (offset 0, cut to its size).
    """
    header = ctx.headers.get("Content-Range", "") or ""
    if header.strip():
        match = re.fullmatch(r"\s*bytes\s+(\d{1,18})-(\d{1,18})/(\d{1,18}|\*)\s*", header)
        if not match:
            raise InvalidArgument("Content-Range: expected 'bytes FIRST-LAST/TOTAL', got %r"
                                  % header[:80])
        first, last = int(match.group(1)), int(match.group(2))
        total = None if match.group(3) == "*" else int(match.group(3))
        if last < first:
            raise InvalidArgument("Content-Range: the last byte %d is before the first %d"
                                  % (last, first))
        if last - first + 1 != size:
            raise InvalidArgument("Content-Range: bytes %d-%d are %d bytes but the chunk has %d"
                                  % (first, last, last - first + 1, size))
        if total is not None and last >= total:
            raise InvalidArgument("Content-Range: the chunk ends at byte %d, past the total "
                                  "of %d bytes" % (last, total))
        return first, total
    offset = args["offset"] or args["file_startpos"]
    if offset:
        if len(offset) > 18:
            raise InvalidArgument("offset %s... is too large" % offset[:20])
        return int(offset), None
    return 0, size


def _write_at(path, data, offset, final_size):
    """Write data at offset into the regular file path (created if missing; a link
    at path is not followed); cut the file to final_size when given."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise ClientError("cannot write %s: %s" % (os.path.basename(path),
                                                  exc.strerror or exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ClientError("cannot write %s: not a regular file" % os.path.basename(path))
        view, position = memoryview(data), offset
        while view:
            written = os.pwrite(fd, view, position)
            view, position = view[written:], position + written
        if final_size is not None and os.fstat(fd).st_size > final_size:
            os.ftruncate(fd, final_size)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _cache(home):
    """The upload cache folder (made if missing), confined like any path."""
    home.mkdir(UPLOAD_CACHE, parents=True)
    path = home.resolve(UPLOAD_CACHE, must_exist=True)
    if not os.path.isdir(path):
        raise ClientError("%s is not a folder" % UPLOAD_CACHE)
    return path


def _cached(home, name):
    """(home-relative path, absolute path) of a regular file in the cache."""
    rel = "%s/%s" % (UPLOAD_CACHE, name)
    path = home.resolve(rel, must_exist=True)
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise ClientError("%s: not a regular file" % rel)
    return rel, path


def _move_cached(home, name, dest_dir):
    """Move a cached file into dest_dir; never replaces on a write-only link."""
    _rel, src = _cached(home, name)
    home.mkdir(dest_dir, parents=True)
    dst = home.check_write(home.resolve(os.path.join(dest_dir, name)))
    if os.path.isdir(dst) and not os.path.islink(dst):
        raise ClientError("cannot move %s: a folder is in the way" % name)
    if home.add_only:
        try:
            os.link(src, dst)
        except FileExistsError:
            raise ClientError("%s exists already: a write-only share link never replaces "
                              "files" % home.relative(dst)) from None
        os.unlink(src)
    else:
        os.replace(src, dst)
    return home.relative(dst), os.lstat(dst).st_size


@backend("uploadchunked", title="Upload Files", header="Upload Files", state_changing=True,
         fields={"action": Field("word", default=("status",),
                                 help="put (store a chunk in .upload-cache/), move (into "
                                      "current_dir), status (list the cache) or delete "
                                      "(from the cache)"),
                 "current_dir": Field("path", help="move: the destination folder (default: "
                                                   "the top of the home or shared folder)"),
                 "flags": Field("flags", help="v: verbose"),
                 "share_id": Field("word", help="work in a share link's folder (no login; "
                                                "needs write access)"),
                 "offset": Field("number", help="put without a Content-Range header: where "
                                                "the chunk goes in the file"),
                 "file_startpos": Field("number", help="the same as offset"),
                 "files[]": Field("text", multi=True,
                                  help="the file parts (multipart/form-data with a file "
                                       "name); move and delete only use their names"),
                 "files[]filename": Field("path", multi=True,
                                          help="move, status, delete: cached file names "
                                               "(instead of file parts)")},
         help="Chunked upload (MiG's uploadchunked): multipart POST with a files[] part; "
              "put writes the chunk into .upload-cache/NAME at the offset of the "
              "request's 'Content-Range: bytes FIRST-LAST/TOTAL' header (or of the offset "
              "field; without either the chunk is the whole file), at most 64 MiB per "
              "chunk; move moves .upload-cache/NAME into current_dir. Replies are tables "
              "Name, Size, URL.")
def uploadchunked(ctx, args):
    """Upload large files in chunks, then move them into place (see the help above)."""
    action = args["action"]
    if action not in CHUNK_ACTIONS:
        raise InvalidArgument("Invalid action: %s! (use %s)" % (action, ", ".join(CHUNK_ACTIONS)))
    home = ctx.home
    home.need(write=True, what="uploadchunked")
    prefix = home.url_prefix
    parts = [(field, filename, data) for field, filename, data in ctx.files
             if field == "files[]"]
    names = [_clean_name(filename) for _f, filename, _d in parts] + \
        [_clean_name(name) for name in args["files[]filename"]]
    objects = [O.text("uploadchunked using flag: %s" % f) for f in args["flags"]
               if "v" in args["flags"]]
    rows, code = [], 0

    def failed(exc):
        nonlocal code
        objects.append(O.error(exc.message))
        code = code or exc.exit_code

    if action == "put":
        if not parts:
            raise ClientError("No files included to upload!")
        if len(parts) > 1 and ctx.headers.get("Content-Range"):
            raise InvalidArgument("one Content-Range cannot describe %d files: send one file "
                                  "per request" % len(parts))
        _cache(home)
        limit = _upload_limit(ctx)
        for (_field, _filename, data), name in zip(parts, names):
            try:
                if len(data) > UPLOAD_BLOCK:
                    raise InvalidArgument("%s: a chunk may hold at most %d bytes (got %d)"
                                          % (name, UPLOAD_BLOCK, len(data)))
                offset, final_size = _chunk_region(ctx, args, len(data))
                if offset + len(data) > limit or (final_size or 0) > limit:
                    raise InvalidArgument("%s: files may be at most %d MB"
                                          % (name, limit // (1024 * 1024)))
                rel = "%s/%s" % (UPLOAD_CACHE, name)
                size = _write_at(home.resolve(rel), data, offset, final_size)
                if "v" in args["flags"]:
                    objects.append(O.text("wrote chunk %d-%d of %s"
                                          % (offset, offset + len(data) - 1, name)))
                rows.append((rel, size, prefix + rel))
            except MigError as exc:
                failed(exc)
    elif action == "move":
        if not names:
            raise ClientError("No files included to move!")
        for name in names:
            try:
                rel, size = _move_cached(home, name, args["current_dir"] or ".")
                rows.append((rel, size, prefix + rel))
            except MigError as exc:
                failed(exc)
            except OSError as exc:
                failed(ClientError("could not move %s: %s" % (name, exc.strerror or exc)))
    elif action == "status":
        cache = home.resolve(UPLOAD_CACHE)
        if not names and os.path.isdir(cache):
            names = sorted(e.name for e in os.scandir(cache)
                           if e.is_file(follow_symlinks=False) and e.name not in INVISIBLE)
        for name in names:
            try:
                rel, path = _cached(home, name)
                rows.append((rel, os.lstat(path).st_size, prefix + rel))
            except MigError as exc:
                failed(exc)
    else:  # delete
        if not names:
            raise ClientError("No files included to delete!")
        for name in names:
            try:
                rel, path = _cached(home, name)
                os.unlink(path)
                objects.append(O.text("removed %s" % rel))
            except MigError as exc:
                failed(exc)
        return O.Result(objects, code)
    objects.append(O.table("uploadfiles", ("Name", "Size", "URL"), rows))
    return O.Result(objects, code)
