"""Moving data in and out: share links (sharelink), chunked uploads
(uploadchunked) and byte-range file access (rangefileaccess).

Share links give anyone who knows a link's id one file or folder of the
owner's home (mig.core.sharelinks).  The dispatcher serves them at
``/share_redirect/ID/PATH`` (GET, HEAD, SHAREPUT, PUT) through
share_download/share_upload here, and runs the backends in SHARE_ACCESS
for requests that carry ``share_id`` instead of credentials, with a
ShareHome (the shared folder as the home) as ctx.home: every path those
backends take is then confined to the shared folder by construction.

uploadchunked writes chunks into ``.upload-cache/NAME`` at the offset of
the request's ``Content-Range: bytes FIRST-LAST/TOTAL`` header (or of an
``offset`` field), so multi-chunk uploads work; ``move`` then moves the
file into ``current_dir``.  rangefileaccess returns a byte range of a file
(GET) or writes a PUT request's raw body into a file at an offset; the
dispatcher leaves the body unread for it (ctx.body, ctx.body_length).
"""

import os
import re
import stat

from mig.backends import Field, backend, truthy
from mig.core import sharelinks as S
from mig.core.home import INVISIBLE
from mig.errors import ClientError, InvalidArgument, MigError
from mig.render import objects as O

UPLOAD_CACHE = ".upload-cache"
UPLOAD_BLOCK = 64 * 1024 * 1024  # MiG's upload_block_size: the largest chunk
MAX_RANGE = 1024 ** 3  # one range read or write moves at most 1 GiB
COPY_BLOCK = 1024 * 1024
# Backends a share link may run, with the (read, write) access each needs.
# rm and rmdir need both: a write-only link is a drop box that only adds.
SHARE_ACCESS = {"ls": (True, False), "mkdir": (False, True), "rm": (True, True),
                "rmdir": (True, True), "uploadchunked": (False, True)}
RAW_BODY = {"rangefileaccess"}  # PUT bodies these backends read themselves
SHARE_ACTIONS = ("show", "edit", "create", "update", "delete")
CHUNK_ACTIONS = ("put", "move", "status", "delete")
def _upload_limit(ctx):
    return ctx.grid.config.max_upload_mb * 1024 * 1024


# -- share links --------------------------------------------------------------------------
def _link_row(link):
    return (link["share_id"], link["path"], S.access_name(link), S.format_expiry(link),
            S.url(link))


def _link_table(links):
    return O.table("sharelinks", ("Share ID", "Path", "Access", "Expires", "URL"),
                   [_link_row(link) for link in links])


def _access(args, current=None):
    """(read, write) from the fields; absent ones keep current (None: not given)."""
    read = truthy(args["read_access"]) if args["read_access"] else None
    write = truthy(args["write_access"]) if args["write_access"] else None
    if current is None and read is None and write is None:
        return True, False  # create without either: read-only
    if current is None:
        return bool(read), bool(write)
    return read, write


def _invite_note(link, invites):
    return ("Invitations recorded for %s. No e-mail is sent by this appliance: pass the "
            "link %s on yourself." % (", ".join(invites), S.url(link)))


@backend("sharelink", title="Share Link", header="Manage share links", state_changing=True,
         fields={"action": Field("word", default=("show",),
                                 help="show (your links), edit (one link), create, update "
                                      "or delete"),
                 "share_id": Field("word", help="edit, update, delete: the link's id"),
                 "path": Field("path", help="create: the file or folder in your home to "
                                            "share (not the home itself)"),
                 "read_access": Field("bool", help="create, update: anyone with the link "
                                                   "may read (default for create: true "
                                                   "unless write_access is given)"),
                 "write_access": Field("bool", help="create, update: anyone with the link "
                                                    "may upload into the folder"),
                 "expire": Field("word", help="create, update: days from now (default 30, "
                                              "at most 3650) or the last day YYYY-MM-DD "
                                              "(UTC)"),
                 "invite": Field("text", multi=True,
                                 help="create, update: e-mail addresses to record as invited "
                                      "(comma-separated; no mail is sent)"),
                 "msg": Field("text", help="create, update: a message recorded with the "
                                           "invitations"),
                 "flags": Field("flags", help="v: verbose")},
         help="Share links: one file or folder of your home for anyone who knows the "
              "link's id, read-only, write-only (a drop box that only adds files) or "
              "read-write, until it expires. The reply lists your links as a table "
              "Share ID, Path, Access, Expires, URL; the URL /share_redirect/ID/PATH "
              "downloads (GET) and uploads (SHAREPUT or PUT) without logging in.")
def sharelink(ctx, args):
    """Create, update, delete and show share links (see the help above)."""
    service = S.links(ctx.grid)
    action = args["action"]
    if action not in SHARE_ACTIONS:
        raise InvalidArgument('Invalid action "%s" (supported: %s)'
                              % (action, ", ".join(SHARE_ACTIONS)))
    objects = [O.text("sharelink using flag: %s" % f) for f in args["flags"] if f == "v"]
    if len(args["msg"]) > S.MAX_MSG:
        raise InvalidArgument("msg: at most %d characters" % S.MAX_MSG)
    invites = S.parse_invites(args["invite"])
    if action == "show":
        objects += [O.header("Share Links"), _link_table(service.owned(ctx.user))]
        return O.Result(objects)
    if action in ("edit", "update", "delete") and not args["share_id"]:
        raise InvalidArgument("%s requires existing share link: give share_id" % action)
    if action == "edit":
        link = service.get_owned(ctx.user, args["share_id"])
        objects += [O.header("Edit Share Link"), _link_table([link])]
        objects.append(O.text("Invited: %s" % (", ".join(link.get("invites", [])) or "nobody")))
        if link.get("msg"):
            objects.append(O.text("Message: %s" % link["msg"]))
        return O.Result(objects)
    if action == "delete":
        link = service.delete(ctx.user, args["share_id"])
        objects += [O.header("Delete Share Link"),
                    O.text("Deleted share link %s on %s ." % (link["share_id"], link["path"]))]
        return O.Result(objects)
    if action == "create":
        read, write = _access(args)
        link = service.create(ctx.user, args["path"], read, write,
                              S.parse_expire(args["expire"]), invites, args["msg"])
        verb, head = "Created", "Create Share Link"
    else:
        current = service.get_owned(ctx.user, args["share_id"])
        read, write = _access(args, current)
        expires = S.parse_expire(args["expire"]) if args["expire"] else None
        link = service.update(ctx.user, current["share_id"], read, write, expires, invites,
                              args["msg"] or None)
        verb, head = "Updated", "Update Share Link"
    objects += [O.header(head),
                O.text("%s share link %s on %s ." % (verb, link["share_id"], link["path"])),
                _link_table([link])]
    if invites:
        objects.append(O.text(_invite_note(link, invites)))
    return O.Result(objects)


def share_home(grid, share_id, name):
    """The ShareHome a share-mode request of backend name works on; raises
    FileNotFound (unknown or expired link) or AccessDenied (missing access)."""
    home = S.links(grid).share_home(share_id)
    read, write = SHARE_ACCESS[name]
    home.need(read=read, write=write, what=name)
    return home


def share_download(grid, share_id, rel):
    """(open file, size, name) for GET /share_redirect/ID/rel; raises MigError."""
    handle, name = S.links(grid).open_file(share_id, rel)
    return handle, os.fstat(handle.fileno()).st_size, name


def store_upload(home, rel, body, length, overwrite=True):
    """Write length bytes of body to rel in home through a temporary file.

    With overwrite False an existing name is never replaced (the file is
    linked into place, which fails atomically if the name exists).
    """
    if not rel or rel.endswith("/"):
        raise ClientError("no destination file name given")
    final, tmp = home.open_for_upload(rel)
    try:
        with open(tmp, "xb") as out:
            remaining = length
            while remaining > 0:
                chunk = body.read(min(remaining, COPY_BLOCK))
                if not chunk:
                    raise ClientError("the upload ended after %d of %d bytes"
                                      % (length - remaining, length))
                out.write(chunk)
                remaining -= len(chunk)
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise ClientError("%s exists already: a write-only share link never "
                                  "replaces files" % home.relative(final)) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return home.relative(final)


def share_upload(grid, share_id, rel, body, length):
    """SHAREPUT/PUT /share_redirect/ID/rel: (ok, message lines) as CERTPUT replies.

    Never a job submission or unpacking (the Content-Type is ignored): share
    users act in the owner's files, not as the owner.  Raises FileNotFound
    for unknown or expired links and AccessDenied without write access.
    """
    home = S.links(grid).share_home(share_id)
    home.need(write=True, what="uploading")
    stored = store_upload(home, rel, body, length, overwrite=not home.add_only)
    return True, ["A 'normal' file was uploaded (%s)." % stored]


# -- chunked uploads -------------------------------------------------------------------
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
    dst = home.resolve(os.path.join(dest_dir, name))
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


# -- byte ranges --------------------------------------------------------------------------
def _position(value, name, default):
    if value == "":
        return default
    if not re.fullmatch(r"[+-]?\d{1,18}", value):
        raise InvalidArgument("%s must be a whole number of bytes (got %r)" % (name, value[:40]))
    number = int(value)
    if number < 0:
        raise InvalidArgument("%s must not be negative (got %d)" % (name, number))
    return number


def _range_get(ctx, rel, start, end):
    path = ctx.home.resolve(rel, must_exist=True)
    if os.path.isdir(path):
        raise ClientError("%s: is a directory" % rel)
    if not os.path.isfile(path):
        raise ClientError("%s: not a regular file" % rel)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if start >= size and not (start == 0 and size == 0):
            raise ClientError("file_startpos %d is past the end of %s (%d bytes)"
                              % (start, rel, size))
        stop = size - 1 if end is None else min(end, size - 1)
        length = max(0, stop - start + 1)
        if length > MAX_RANGE:
            raise InvalidArgument("%s: bytes %d-%d are more than the %d bytes one request may "
                                  "read; give file_endpos" % (rel, start, stop, MAX_RANGE))
        handle.seek(start)
        data = handle.read(length)
    return O.Result([{"object_type": "binary", "data": data, "filename": os.path.basename(path),
                      "content_type": "application/octet-stream"}])


def _range_put(ctx, rel, start, end):
    body, length, headers = ctx.body, ctx.body_length, ctx.headers
    if body is None or headers.get("Content-Length") is None:
        raise ClientError("send the data as the body of a PUT request with a Content-Length")
    if length > MAX_RANGE:
        raise InvalidArgument("the body is %d bytes; one request may write at most %d"
                              % (length, MAX_RANGE))
    count = length if end is None else min(length, end - start + 1)
    limit = _upload_limit(ctx)
    if start + count > limit:
        raise InvalidArgument("writing bytes %d-%d would make %s larger than the %d MB files "
                              "may have" % (start, start + count - 1, rel, limit // 1024 ** 2))
    path = ctx.home.resolve(rel)
    if os.path.isdir(path):
        raise ClientError("%s: is a directory" % rel)
    if not os.path.isdir(os.path.dirname(path)):
        raise ClientError("You're trying to write to an invalid directory: %s"
                          % ctx.home.relative(os.path.dirname(path)))
    real = os.path.realpath(path)  # resolve() checked that any link stays in the home
    try:
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise ClientError("cannot write %s: %s" % (rel, exc.strerror or exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ClientError("cannot write %s: not a regular file" % rel)
        done = 0
        while done < count:
            chunk = body.read(min(COPY_BLOCK, count - done))
            if not chunk:
                raise ClientError("the body ended after %d of %d bytes (%d were written)"
                                  % (done, count, done))
            view = memoryview(chunk)
            while view:
                written = os.pwrite(fd, view, start + done)
                view, done = view[written:], done + written
    finally:
        os.close(fd)
    return O.Result([O.text("Wrote %d bytes to %s at offset %d" % (count, rel, start))])


@backend("rangefileaccess", title="Range File Access", header="Range File Access",
         fields={"path": Field("path", required=True, help="the file in your home"),
                 "file_startpos": Field("word", help="the first byte, counted from 0 "
                                                     "(default 0)"),
                 "file_endpos": Field("word", help="the last byte, inclusive (default: the "
                                                   "end of the file, or of the PUT body)"),
                 "flags": Field("flags")},
         help="Byte ranges of a file (MiG's migread/migwrite): GET (or POST) returns bytes "
              "file_startpos..file_endpos of path raw; PUT writes the request body into "
              "path at file_startpos (creating the file if needed) and replies 'Wrote N "
              "bytes'. At most 1 GiB per request; negative or reversed ranges are refused.")
def rangefileaccess(ctx, args):
    """Read or write a byte range of a file (see the help above)."""
    start = _position(args["file_startpos"], "file_startpos", 0)
    end = _position(args["file_endpos"], "file_endpos", None)
    if end is not None and end < start:
        raise InvalidArgument("file_endpos %d is before file_startpos %d" % (end, start))
    if end is not None and end - start + 1 > MAX_RANGE:
        raise InvalidArgument("bytes %d-%d are more than the %d bytes one request may move"
                              % (start, end, MAX_RANGE))
    if ctx.method == "PUT":
        return _range_put(ctx, args["path"], start, end)
    if ctx.method not in ("GET", "HEAD", "POST"):
        raise ClientError("rangefileaccess: use GET to read or PUT to write")
    return _range_get(ctx, args["path"], start, end)
