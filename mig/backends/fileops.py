"""The rest of MiG's file operations for its user scripts: expand (what migget
asks before downloading), statpath, chksum, grep, head, tail, wc, touch,
truncate, rmdir, zip/pack, unzip/unpack, live I/O with running jobs, and the
unpacking of uploads (put_file's extractpackage and submitandextract).

MiG's field names, flags and txt reply layouts; every path goes through the
caller's Home (wildcards where MiG allows them, each match confined).
"""

import os
import posixpath
import types

from mig.backends import Field, backend, truthy
from mig.backends.upload import mrsl_item
from mig.backends.homepaths import each_path, join, norm
from mig.backends.jobs import submit_text
from mig.core import archives as A
from mig.core import beneath as B
from mig.core import homeops as F
from mig.core import jobs as J
from mig.core import saferegex
from mig.errors import ClientError, InvalidArgument, MigError, NotCopied, SystemFailure
from mig.render import objects as O

FILE_DEST_SEP = "    ::    "  # MiG's file_dest_sep: migget splits expand lines on it
STAT_KEYS = (("device", "st_dev"), ("inode", "st_ino"), ("mode", "st_mode"),
             ("nlink", "st_nlink"), ("uid", "st_uid"), ("gid", "st_gid"),
             ("rdev", "st_rdev"), ("size", "st_size"), ("atime", "st_atime"),
             ("mtime", "st_mtime"), ("ctime", "st_ctime"))
LIVEIO_ACTIONS = {"get": "get", "receive": "get", "input": "get",
                  "put": "send", "send": "send", "output": "send"}


def _paths(help_text="file(s) in your home; wildcards allowed"):
    return Field("path", multi=True, required=True, help=help_text)


def _each(ctx, patterns, on_path, home=None):
    """each_path, with on_path(rel, path) and OSError reported as a client error."""
    def one(path):
        rel = ctx.home.relative(path)
        try:
            return on_path(rel, path)
        except OSError as exc:
            raise ClientError("%s: %s" % (rel, exc.strerror or exc)) from None
    view = ctx if home is None else types.SimpleNamespace(home=home)
    return each_path(view, patterns, one)


def _number(value, name):
    """A 'number' field as an int (the field check already allows digits only)."""
    if len(value) > 18:
        raise InvalidArgument("%s: %s... is too large" % (name, value[:20]))
    return int(value)


def _result(name, flags, objects_code):
    """MiG's verbose flag adds '<op> using flag: X' lines before the output."""
    objects, code = objects_code
    if "v" in flags:
        objects = [O.text("%s using flag: %s" % (name, flag)) for flag in flags] + objects
    return O.Result(objects, code)


# -- reading ----------------------------------------------------------------------------
@backend("expand", title="expand", header="expand",
         fields={"path": Field("path", default=(".",), multi=True,
                               help="file(s) or folder(s); wildcards allowed"),
                 "with_dest": Field("bool", default=("false",),
                                    help="true: add '    ::    DEST' to each file"),
                 "flags": Field("flags", help="r: folders recursively, a: hidden files too")})
def expand(ctx, args):
    """The files a pattern stands for, one per line (what migget downloads)."""
    flags, with_dest = args["flags"], truthy(args["with_dest"])

    def one(_rel, path):
        pairs = F.expand_tree(ctx.home, path, "r" in flags, "a" in flags)
        return [O.text(src + FILE_DEST_SEP + dst if with_dest else src) for src, dst in pairs]
    # no verbose lines here: migget takes every body line for a file to fetch
    return O.Result(*_each(ctx, args["path"], one))


@backend("statpath", title="statpath", header="statpath",
         fields={"path": _paths(), "flags": Field("flags", help="v: name the flags used")})
def statpath(ctx, args):
    """File details as 11 'key<TAB>value' lines (device ... ctime)."""
    def one(_rel, path):
        info = os.stat(path)
        return [O.text("\n".join("%s\t%s" % (key, getattr(info, attr))
                                 for key, attr in STAT_KEYS))]
    return _result("statpath", args["flags"], _each(ctx, args["path"], one))


@backend("chksum", title="chksum", header="chksum",
         fields={"path": _paths(),
                 "hash_algo": Field("word", default=("md5",), multi=True,
                                    help="md5, sha1, sha256 or sha512 (several allowed)"),
                 "max_chunks": Field("word", default=("-1",),
                                     help="only hash the first N chunks of 32 KB (-1: all)"),
                 "flags": Field("flags", help="v: name the flags used")})
def chksum(ctx, args):
    """Checksums of files: '<hex> <path>' lines (migmd5sum, migsha1sum)."""
    algos = args["hash_algo"]
    unknown = [a for a in algos if a not in F.HASHES]
    if unknown:
        raise InvalidArgument("unknown hash_algo %s: use %s" % (", ".join(unknown),
                                                                ", ".join(F.HASHES)))
    try:
        max_chunks = int(args["max_chunks"])
    except ValueError:
        raise InvalidArgument("max_chunks must be a whole number (-1 for all)") from None

    def one(rel, _path):
        return [O.text("%s %s" % (F.checksum(ctx.home, rel, algo, max_chunks), rel))
                for algo in algos]
    return _result("chksum", args["flags"], _each(ctx, args["path"], one))


@backend("grep", title="grep", header="grep",
         fields={"path": _paths(),
                 "pattern": Field("text", required=True,
                                  help="a Python regular expression, searched in each line "
                                       "(at most 1000 characters; a pattern that takes "
                                       "too long is stopped with an error)"),
                 "flags": Field("flags", help="v: name the flags used")})
def grep(ctx, args):
    """The lines of files that match a pattern (no file name prefix)."""
    pattern = args["pattern"]
    saferegex.search_lines(pattern, [])  # a bad or over-long pattern: refused before any file

    def one(rel, _path):
        try:
            text, complete = F.grep_lines(ctx.home, rel, pattern)
        except saferegex.PatternTooSlow as exc:
            raise _StopGrep(exc) from None  # not per file: one slow file stops them all
        out = [O.file_output(text, rel)]
        return out if complete else out + [O.warning("%s: only the first %d MB of matches "
                                                      "are shown" % (rel, F.MAX_LINES_BYTES
                                                                     // (1024 * 1024)))]
    try:
        return _result("grep", args["flags"], _each(ctx, args["path"], one))
    except _StopGrep as stop:
        raise stop.args[0] from None


class _StopGrep(Exception):
    """Carries PatternTooSlow past each_path, which would go on with the next file."""


def _show_lines(ctx, args, name, function):
    count = _number(args["lines"], "lines")

    def one(rel, _path):
        return [O.file_output(function(ctx.home, rel, count), rel)]
    return _result(name, args["flags"], _each(ctx, args["path"], one))


LINES_FIELDS = {"path": _paths(), "lines": Field("number", default=("20",),
                                                  help="how many lines"),
                "flags": Field("flags", help="v: name the flags used")}


@backend("head", title="head", header="head", fields=LINES_FIELDS)
def head(ctx, args):
    """The first lines of files (lines, default 20)."""
    return _show_lines(ctx, args, "head", F.head_lines)


@backend("tail", title="tail", header="tail", fields=LINES_FIELDS)
def tail(ctx, args):
    """The last lines of files (lines, default 20)."""
    return _show_lines(ctx, args, "tail", F.tail_lines)


@backend("wc", title="wc", header="wc",
         fields={"path": _paths(),
                 "flags": Field("flags", help="l lines, w words, b bytes (none: all three)")})
def wc(ctx, args):
    """Count lines, words and bytes: 'name<TAB><TAB>LINES<TAB>WORDS<TAB>BYTES' lines."""
    flags = args["flags"]
    wanted = [k in flags for k in "lwb"]
    if not any(wanted):
        wanted = [True, True, True]

    def one(rel, _path):
        counts = F.word_count(ctx.home, rel)
        shown = [str(c) if w else "" for c, w in zip(counts, wanted)]
        return [O.text("%s\t\t%s" % (rel, "\t".join(shown)))]
    return _result("wc", flags, _each(ctx, args["path"], one))


# -- changing ---------------------------------------------------------------------------
class _KeepMissing:
    """A Home view for touch: a plain name that does not exist yet still counts."""

    def __init__(self, home):
        self.home = home

    def expand(self, pattern):
        return self.home.expand(pattern, must_exist=F.has_wildcards(pattern))


@backend("touch", title="touch", header="touch", state_changing=True,
         fields={"path": _paths("file(s); missing ones are created, wildcards allowed"),
                 "flags": Field("flags", help="v: name the flags used")})
def touch(ctx, args):
    """Create empty files or set their times to now."""
    def one(rel, _path):
        F.touch_file(ctx.home, rel)
        return []
    return _result("touch", args["flags"],
                   _each(ctx, args["path"], one, home=_KeepMissing(ctx.home)))


@backend("truncate", title="truncate", header="truncate", state_changing=True,
         fields={"path": _paths(), "size": Field("number", default=("0",),
                                                 help="the new size in bytes"),
                 "flags": Field("flags", help="v: name the flags used")})
def truncate(ctx, args):
    """Cut files to size bytes (default 0)."""
    size = _number(args["size"], "size")

    def one(rel, _path):
        F.truncate_file(ctx.home, rel, size)
        return []
    return _result("truncate", args["flags"], _each(ctx, args["path"], one))


@backend("rmdir", title="rmdir", header="rmdir", state_changing=True,
         fields={"path": _paths("empty folder(s); wildcards allowed"),
                 "flags": Field("flags", help="p: also remove the emptied parents")})
def rmdir(ctx, args):
    """Remove empty folders (a folder that is not empty fails with exit code 200)."""
    def one(rel, _path):
        F.remove_dir(ctx.home, rel, parents="p" in args["flags"])
        return []
    return _result("rmdir", args["flags"], _each(ctx, args["path"], one))


# -- archives ---------------------------------------------------------------------------
def _changing(names, title, fields):
    """Register one state-changing backend under several MiG names (zip is also pack)."""
    def register(run):
        for name in names:
            backend(name, title=title, header=title, state_changing=True, fields=fields)(run)
        return run
    return register


@_changing(("zip", "pack"), "ZIP/TAR archiver", {
    "src": _paths("file(s) or folder(s) to pack; wildcards allowed"),
    "dst": Field("path", required=True,
                 help="the archive: .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz"),
    "current_dir": Field("path", default=(".",), help="the folder src and dst are relative to"),
    "flags": Field("flags", help="v: name the flags used")})
def _zip(ctx, args):
    """Pack files and folders into a .zip or tar archive (the name decides which)."""
    current = norm(args["current_dir"])
    folder = ctx.home.resolve(current, must_exist=True)
    if not os.path.isdir(folder):
        raise ClientError("You're not allowed to work in %s: not a folder" % current)
    dst = ctx.home.relative(ctx.home.resolve(join(current, args["dst"])))
    dst_path = ctx.home.resolve(dst)
    patterns = [posixpath.join(current, p) for p in args["src"]]
    sources = []

    def one(rel, path):
        if path == ctx.home.root:
            raise ClientError("You're not allowed to pack your entire home directory!")
        if path == dst_path:
            raise ClientError("overlap in source and destination %s" % dst)
        sources.append(rel)
        return []
    objects, code = _each(ctx, patterns, one)
    objects.insert(0, O.text("working in %s" % current))
    if not sources:
        return _result("zip", args["flags"], (objects, code or ClientError.exit_code))
    skipped = []
    A.pack_archive(ctx.home, sources, dst, skipped)
    objects += [O.warning("%s: not packed: %s" % item) for item in skipped]
    objects += [O.text("Added %s to %s" % (rel, dst)) for rel in sources]
    objects.append(O.text("Packed archive of %s is now available in %s"
                          % (", ".join(patterns), dst)))
    return _result("zip", args["flags"], (objects, code))


@_changing(("unzip", "unpack"), "ZIP/TAR unpacker", {
    "src": _paths("archive(s); wildcards allowed"),
    "dst": Field("path", default=(".",), help="the folder to unpack into (created when missing)"),
    "flags": Field("flags", help="v: name the flags used")})
def _unzip(ctx, args):
    """Unpack .zip and tar archives (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) into dst."""
    dst = norm(args["dst"])

    def one(rel, _path):
        ctx.home.mkdir(dst, parents=True)
        skipped = []
        A.unpack_archive(ctx.home, rel, dst, skipped)
        return [O.warning("%s: not unpacked: %s" % item) for item in skipped] + \
            [O.text("The zip/tar archive %s was unpacked in %s" % (rel, dst))]
    return _result("unzip", args["flags"], _each(ctx, args["src"], one))



def unpack_upload(ctx, rel, submit=False):
    """An uploaded archive (put_file with extractpackage or submitandextract):
    unpacked next to itself, and with submit every .mRSL inside submitted.
    Returns the reply lines as put_file does, or None for a file that is no
    archive; raises ClientError with every line when anything failed."""
    if not A.is_archive(rel):
        return None
    folder = norm(posixpath.dirname(rel))
    skipped = []
    written = A.unpack_archive(ctx.home, rel, folder, skipped)
    ok = not skipped
    lines = ["The zip/tar archive %s was unpacked in %s" % (rel, folder)]
    lines += ["%s: not unpacked: %s" % item for item in skipped]
    for name in (w for w in written if submit and w.lower().endswith(".mrsl")):
        text = mrsl_item(ctx, name)[1]
        try:
            if isinstance(text, MigError):
                raise text
            lines.append("%s is the job id assigned." % submit_text(ctx, text)["JOB_ID"])
        except SystemFailure as exc:
            ok = False
            lines += ["%s not submitted: %s" % (name, exc.message)]
        except MigError as exc:
            ok = False
            lines += ["parse failed, Error in mRSL file %s" % name, exc.message]
    if not ok:
        raise ClientError(lines[0], details=lines[1:])
    return lines


# -- live I/O with running jobs -----------------------------------------------------------
def _live_folder(ctx, job_id):
    """(the job folder of an executing job on the local resource, None) or (None, reason)."""
    record = ctx.grid.jobs.record(job_id)
    status = record["STATUS"]
    folder = ctx.grid.local_job_folder(job_id)
    if status == J.EXECUTING and record.get("EXECUTOR", "local") != "local":
        raise ClientError("Job %s runs on %s: live I/O is not supported on this resource, "
                          "only on the embedded local one"
                          % (job_id, record.get("RESOURCE_ID") or "another resource"))
    if status != J.EXECUTING or folder is None:
        return None, "Job %s is not currently being executed! Job status: %s" % (
            job_id, status if status != J.EXECUTING else "EXECUTING (finishing)")
    return folder, None


def _live_send(ctx, job_id, folder, args):
    """Copy the job's current files (default its stdout and stderr) into the home."""
    names = args["src"] or ["%s.stdout" % job_id, "%s.stderr" % job_id]
    dst = norm(args["dst"] or "job_output/%s" % job_id)
    objects, code = [], 0
    try:  # as root, only the job's own files: never one it linked from elsewhere
        owner = os.stat(folder).st_uid if os.geteuid() == 0 else None
    except OSError:
        owner = None
    for name in names:
        target = join(dst, posixpath.basename(name.rstrip("/")) or name)
        try:
            B.copy_confined(folder, name, ctx.home, target, owner)
            objects.append(O.text("Copied %s from job %s to %s" % (name, job_id, target)))
        except NotCopied as exc:
            objects.append(O.error(exc.message))
            code = code or exc.exit_code
    return objects, code


def _live_get(ctx, job_id, folder, args):
    """Copy home files into the job folder (dst is a folder there); the job's own
    script, status and process files are never replaced."""
    dst = norm(args["dst"])
    # The local resource names its script .mig-job, the ssh one JOBID.job.
    protected = {"%s.job" % job_id, ".mig-job", "%s.status" % job_id, ".pgid"}

    def one(rel, path):
        if os.path.isdir(path):
            raise ClientError("%s: is a folder; name the files to send" % rel)
        target = join(dst, posixpath.basename(rel))
        B.copy_into_beneath(ctx.home, rel, folder, target, protected)  # or NotCopied
        return [O.text("Copied %s to job %s as %s" % (rel, job_id, target))]
    return _each(ctx, args["src"], one)


@backend("liveio", title="Live I/O", header="Request live communication with jobs",
         state_changing=True,
         fields={"job_id": Field("job_id", multi=True, required=True,
                                 help="job id(s); wildcards allowed"),
                 "action": Field("word", required=True,
                                 help="send/put/output: job files into your home; "
                                      "get/receive/input: home files into the job"),
                 "src": Field("path", multi=True,
                              help="send: names in the job folder (default JOBID.stdout "
                                   "and JOBID.stderr); get: files in your home"),
                 "dst": Field("path", help="send: a folder in your home (default "
                                           "job_output/JOBID); get: a folder in the job's")})
def liveio(ctx, args):
    """Exchange files with your jobs while they run on the embedded local resource."""
    action = LIVEIO_ACTIONS.get(args["action"].lower())
    if action is None:
        raise ClientError("Invalid live io action: %s (use send, put or output to copy job "
                          "files into your home; get, receive or input to copy home files "
                          "into the job)" % args["action"])
    objects = [O.text("Requesting live I/O for %s" % ", ".join(args["job_id"]))]
    if action == "get" and not (args["src"] and args["dst"]):
        return O.Result(objects + [O.error("src and dst parameters required for live input")],
                        ClientError.exit_code)
    ids = ctx.grid.jobs.match(ctx.user, args["job_id"])
    if not ids:
        objects += [O.error("%s: You do not have any matching job IDs!" % p)
                    for p in args["job_id"]]
        return O.Result(objects, ClientError.exit_code)
    code = 0
    for job_id in ids:
        try:
            folder, idle = _live_folder(ctx, job_id)
            if idle:
                objects.append(O.text(idle))
                code = code or ClientError.exit_code
                continue
            more, more_code = (_live_send if action == "send" else _live_get)(
                ctx, job_id, folder, args)
        except MigError as exc:
            more, more_code = [O.error(exc.message)], exc.exit_code
        objects += more
        code = code or more_code
    return O.Result(objects, code)
