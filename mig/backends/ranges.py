"""Byte-range file access (rangefileaccess): a byte range of a file (GET),
or a PUT request's raw body written into a file at an offset; the web
layer leaves that body unread for it (ctx.body, ctx.body_length)."""

import os
import re
import stat

from mig.backends import Field, backend
from mig.errors import ClientError, InvalidArgument
from mig.render import objects as O
from mig.backends.chunkedupload import COPY_BLOCK, _upload_limit

MAX_RANGE = 1024 ** 3  # one range read or write moves at most 1 GiB


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
    path = ctx.home.check_write(ctx.home.resolve(rel), rel)
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


@backend("rangefileaccess", title="Range File Access", header="Range File Access", raw_body=True,
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
