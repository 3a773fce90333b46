"""Uploads into a home (upload): files sent in one form, or a finished
chunked upload from the upload cache; .mRSL files can be submitted and
archives unpacked as they arrive."""

import os

from mig.backends import Field, backend, truthy
from mig.backends.chunkedupload import UPLOAD_CACHE, _cached
from mig.backends.fileshared import back_to, folder_of, store_file
from mig.backends.homepaths import join, norm
from mig.backends.jobs import MAX_MRSL_BYTES, SUBMIT_COLUMNS, _submit_rows
from mig.core import archives as A
from mig.errors import ClientError, InvalidArgument, MigError
from mig.render import objects as O


def check_upload_name(name):
    """A plain file name (browsers send the base name), or raise."""
    if name in ("", ".", ".."):
        raise InvalidArgument("invalid file name %r" % name)
    if "/" in name or "\\" in name or "\x00" in name:
        raise InvalidArgument("invalid file name %r: no '/', '\\' or NUL allowed" % name[:80])
    return name


def mrsl_item(ctx, rel):
    path = ctx.home.resolve(rel, must_exist=True)
    if os.path.getsize(path) > MAX_MRSL_BYTES:
        return rel, ClientError("%s: larger than 1 MB" % rel)
    with open(path, encoding="utf-8", errors="replace") as handle:
        return rel, handle.read()


def _place_cached(ctx, key, rel):
    """Move a finished chunked upload (.upload-cache/KEY) to rel (replacing a file)."""
    _rel, src = _cached(ctx.home, check_upload_name(key))  # a regular file in the cache
    final, _tmp = ctx.home.open_for_upload(rel)  # checks: folder exists, no folder in the way
    try:
        os.replace(src, final)
    except OSError as exc:
        raise ClientError("cannot write %s: %s" % (rel, exc.strerror or exc)) from None


def _incoming(ctx, args):
    """[(name, size, store(rel))]: the multipart parts in 'files', or the chunked
    uploads named in 'cached' (with their final names in 'filename')."""
    if args["cached"]:
        if len(args["cached"]) != len(args["filename"]):
            raise ClientError("give one filename for each cached upload")
        out = []
        for key, name in zip(args["cached"], args["filename"]):
            path = ctx.home.resolve("%s/%s" % (UPLOAD_CACHE, check_upload_name(key)))
            size = os.path.getsize(path) if os.path.isfile(path) else 0
            out.append((name, size, lambda rel, key=key: _place_cached(ctx, key, rel)))
        return out
    files = [(name, data) for field, name, data in ctx.files if field == "files"]
    if not files:
        raise ClientError("no files were uploaded: send them in the multipart field 'files'")
    limit = ctx.grid.config.max_upload_mb * 1024 * 1024
    total = sum(len(data) for _name, data in files)
    if total > limit:
        raise ClientError("the upload is %d bytes; at most %d MB are allowed"
                          % (total, ctx.grid.config.max_upload_mb))
    return [(name, len(data), lambda rel, data=data: store_file(ctx, rel, data))
            for name, data in files]


@backend("upload", title="Upload Files", header="Upload Files", state_changing=True,
         fields={"dir": Field("path", default=(".",), help="the folder to upload into"),
                 "extract": Field("bool", help="unpack .zip/.tar(.gz/.bz2) archives"),
                 "submit": Field("bool", help="submit uploaded .mRSL files as jobs"),
                 "cached": Field("path", multi=True,
                                 help="instead of files: the names of finished chunked "
                                      "uploads in .upload-cache (see uploadchunked)"),
                 "filename": Field("path", multi=True,
                                   help="with cached: the file name each one gets")})
def upload(ctx, args):
    """Upload files (multipart field 'files', several at once, or finished chunked
    uploads named in 'cached') into a folder."""
    folder = norm(args["dir"])
    folder_of(ctx, folder)
    extract, submit = truthy(args["extract"]), truthy(args["submit"])
    rows, objects, jobs, code = [], [], [], 0
    for name, size, store in _incoming(ctx, args):
        try:
            rel = join(folder, check_upload_name(name))
            store(rel)
            message = "stored as %s" % rel
            if extract and A.is_archive(name):
                skipped = []
                written = A.unpack_archive(ctx.home, rel, folder, skipped)
                message = "unpacked %d file%s into %s" % (len(written), "" if len(written) == 1
                                                          else "s", folder)
                objects += [O.warning("%s: not unpacked: %s" % s) for s in skipped]
                if submit:
                    jobs += [mrsl_item(ctx, w) for w in written if w.lower().endswith(".mrsl")]
            if submit and name.lower().endswith(".mrsl"):
                jobs.append(mrsl_item(ctx, rel))
            rows.append((name, size, "uploaded", message))
        except MigError as exc:
            rows.append((name, size, "failed", exc.message))
            code = code or exc.exit_code
    out = [O.header("Upload to %s" % ("your home" if folder == "." else folder)),
           O.table("uploadstatus", ("File", "Size", "Status", "Message"), rows)] + objects
    if jobs:
        job_rows, job_code = _submit_rows(ctx, jobs)
        out.append(O.table("submitstatuslist", SUBMIT_COLUMNS, job_rows))
        code = code or job_code
    out.append(back_to(folder))
    return O.Result(out, code)
