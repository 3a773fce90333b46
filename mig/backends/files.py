"""File backends on the caller's home: ls, cat, mkdir, rm, and the upload
(PUT/CERTPUT) that can also submit an uploaded mRSL file."""

import os

from mig.backends import Field, backend
from mig.backends.chunkedupload import store_upload
from mig.backends.homepaths import each_path
from mig.backends.jobs import submit_text
from mig.errors import ClientError, FileNotFound, MigError, SystemFailure
from mig.render import objects as O

CAT_LIMIT = 64 * 1024 * 1024


@backend("ls", title="User Files", header="ls",
         fields={"path": Field("path", default=(".",), multi=True), "flags": Field("flags"),
                 "current_dir": Field("path")})
def ls(ctx, args):
    """List files and folders (flags: a all, l long, r recursive)."""
    flags = args["flags"]

    def one(path):
        out = []
        for folder, entries in ctx.home.listing(path, "a" in flags, "r" in flags):
            for entry in entries:
                entry["path"] = ctx.home.relative(os.path.join(folder, entry["name"]))
            out.append(O.dir_listing(ctx.home.relative(folder), entries, "l" in flags))
        return out
    objects, code = each_path(ctx, args["path"], one)
    return O.Result(objects, code)


@backend("cat", title="cat", header="cat",
         fields={"path": Field("path", multi=True, required=True), "flags": Field("flags"),
                 "dst": Field("path")})
def cat(ctx, args):
    """Show the contents of files."""
    def one(path):
        rel = ctx.home.relative(path)
        if os.path.isdir(path):
            raise ClientError("%s: is a directory" % rel)
        if os.path.getsize(path) > CAT_LIMIT:
            raise ClientError("%s: too large to show; download it instead" % rel)
        with open(path, "rb") as handle:
            return [O.file_output(handle.read().decode("utf-8", "replace"), rel)]
    objects, code = each_path(ctx, args["path"], one)
    if code == FileNotFound.exit_code:
        code = 404  # MiG's cat reports a missing file as 404
    return O.Result(objects, code, "Not Found" if code == 404 else None)


@backend("mkdir", title="mkdir", header="mkdir", state_changing=True,
         fields={"path": Field("path", multi=True, required=True), "flags": Field("flags"),
                 "current_dir": Field("path")})
def mkdir(ctx, args):
    """Create folders (flag p: with parents, no error if it exists)."""
    objects, code = [], 0
    for rel in args["path"]:
        try:
            ctx.home.mkdir(rel, parents="p" in args["flags"])
            objects.append(O.text("created directory %s" % rel))
        except MigError as exc:
            objects.append(O.error(exc.message))
            code = code or exc.exit_code
    return O.Result(objects, code)


@backend("rm", title="rm", header="rm", state_changing=True,
         fields={"path": Field("path", multi=True, required=True), "flags": Field("flags")})
def rm(ctx, args):
    """Remove files (moved to Trash/ unless f); folders need r."""
    flags = args["flags"]

    def one(path):
        rel = ctx.home.relative(path)
        ctx.home.remove(rel, recursive="r" in flags, force="f" in flags)
        return [O.text("removed %s" % rel)]
    objects, code = each_path(ctx, args["path"], one)
    return O.Result(objects, code)


def put_file(ctx, relpath, body, length, content_type=""):
    """Store an uploaded body at relpath (CERTPUT); submit or unpack it when
    the Content-Type asks.  Returns the reply's lines; raises MigError (the
    message, then its details, are the lines of a failed reply)."""
    rel = store_upload(ctx.home, relpath, body, length)
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("submitmrsl", "submitandextract") and rel.lower().endswith(".mrsl"):
        with open(ctx.home.resolve(rel), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        try:
            record = submit_text(ctx, text)
        except SystemFailure as exc:
            raise SystemFailure("not submitted: %s" % exc.message) from None
        except MigError as exc:
            raise ClientError("parse failed, Error in mRSL file", details=[exc.message]) from None
        return ["%s is the job id assigned." % record["JOB_ID"]]
    if kind in ("extractpackage", "submitandextract"):
        from mig.backends.fileops import unpack_upload  # here: fileops imports this module
        unpacked = unpack_upload(ctx, rel, submit=kind == "submitandextract")
        if unpacked is not None:  # None: not an archive, so a 'normal' file
            return unpacked
    return ["A 'normal' file was uploaded (%s). It can now be used as an inputfile "
            "in your .mRSL files" % rel]
