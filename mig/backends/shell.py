"""The web shell: ``shell`` (GET) shows the console, ``shellcmd`` (POST) runs
one command line.

Commands are parsed with shlex and run through the same backends as the
portal and the MiG scripts (ls, cat, mkdir, rm, mv, cp, submit, jobstatus,
jobaction, resubmit, jobfeasible), with paths taken relative to the
console's current folder and confined to the home by those backends.
No system shell and no process is ever started.
"""

import getopt
import os
import posixpath
import shlex

from mig.backends import Field, backend
from mig.backends.homepaths import norm
from mig.core import homeops as F
from mig.errors import ClientError, InvalidArgument, MigError
from mig.render import objects as O
from mig.render import txt

MAX_OUTPUT = 1024 * 1024
WELCOME = ("MiG shell: your home folder is /.  Type help for the commands; "
           "no system shell is involved.\n")
HELP = """commands (paths are relative to the current folder; / is your home):
  help                       this text
  pwd                        show the current folder
  cd [DIR]                   change folder (no DIR: your home)
  ls [-l] [-a] [PATH...]     list files (-l long, -a hidden files too)
  cat FILE...                show files
  head [-n N] FILE...        first N lines (default 10)
  tail [-n N] FILE...        last N lines (default 10)
  mkdir [-p] DIR...          create folders (-p with parents)
  rm [-r] [-f] PATH...       move to Trash (-r folders, -f delete for good)
  mv SRC... DST              move or rename
  cp [-r] SRC... DST         copy (-r folders)
  submit FILE.mRSL...        submit jobs
  status [-v] [JOBID...]     job status (all jobs without JOBID)
  cancel|freeze|thaw JOBID...  change jobs
  resubmit JOBID...          submit copies of jobs
  feasible JOBID...          which resources can run a job
"""


class Usage(Exception):
    """A command used wrongly; the text is shown as the error."""


def resolve_path(cwd, arg):
    """A shell argument as a home-relative path: /x is from the home, ~ is the home."""
    if arg == "~" or arg.startswith("~/"):
        return norm(arg[1:])
    return norm(posixpath.join(cwd, arg))


def _options(name, words, short):
    try:
        opts, operands = getopt.gnu_getopt(words, short)
    except getopt.GetoptError as exc:
        raise Usage("%s: %s" % (name, exc.msg)) from None
    return opts, operands


def render(result):
    """Text of a backend result the way a terminal shows it."""
    out = []
    listings = [o for o in result.objects if o["object_type"] == "dir_listing"]
    for obj in result.objects:
        kind = obj["object_type"]
        if kind == "header":
            continue
        if kind == "error_text":
            out.append("error: %s\n" % obj["text"])
        elif kind == "file_not_found":
            out.append("error: %s: No such file or directory\n" % obj["name"])
        elif kind == "warning":
            out.append("warning: %s\n" % obj["text"])
        elif kind == "dir_listing":
            if len(listings) > 1:
                out.append("%s:\n" % ("/" if obj["path"] == "." else obj["path"]))
            shown = dict(obj)
            if not obj["long"]:
                shown["entries"] = [dict(e, name=e["name"] + "/") if e["type"] == "directory"
                                    else e for e in obj["entries"]]
            out.append(txt.render_object(shown))
        elif kind == "file_output":
            text = obj["text"]
            out.append(text if not text or text.endswith("\n") else text + "\n")
        else:
            out.append(txt.render_object(obj))
    return "".join(out)


def _call(ctx, name, fields):
    result = ctx.call(name, fields)
    return render(result), result.exit_code


def _need(name, operands, at_least=1, what="an argument"):
    if len(operands) < at_least:
        raise Usage("%s: missing %s; try help" % (name, what))


# -- the commands: (ctx, cwd, words) -> (text, new cwd, exit code) -----------------------------
def cmd_help(ctx, cwd, words):
    return HELP, cwd, 0


def cmd_pwd(ctx, cwd, words):
    return "/%s\n" % ("" if cwd == "." else cwd), cwd, 0


def cmd_cd(ctx, cwd, words):
    if len(words) > 1:
        raise Usage("cd: too many arguments")
    target = resolve_path(cwd, words[0]) if words else "."
    path = ctx.home.resolve(target, must_exist=True)
    if not os.path.isdir(path):
        raise ClientError("cd: %s: not a folder" % words[0])
    return "", target, 0


def cmd_ls(ctx, cwd, words):
    opts, operands = _options("ls", words, "la")
    flags = "".join(sorted({o[1:] for o, _v in opts}))
    fields = {"path": [resolve_path(cwd, p) for p in operands] or [cwd]}
    if flags:
        fields["flags"] = [flags]
    return _with_cwd(_call(ctx, "ls", fields), cwd)


def _with_cwd(text_code, cwd):
    text, code = text_code
    return text, cwd, code


def cmd_cat(ctx, cwd, words):
    _need("cat", words, what="a file")
    return _with_cwd(_call(ctx, "cat", {"path": [resolve_path(cwd, p) for p in words]}), cwd)


def _lines(name, function):
    def run(ctx, cwd, words):
        opts, operands = _options(name, words, "n:")
        count = 10
        for _opt, value in opts:
            if not value.isdigit():
                raise Usage("%s: -n needs a whole number, not %r" % (name, value))
            count = int(value)
        _need(name, operands, what="a file")
        out, code = [], 0
        for pattern in operands:
            try:
                paths = ctx.home.expand(resolve_path(cwd, pattern))
            except MigError as exc:
                out.append("error: %s\n" % exc.message)
                code = code or exc.exit_code
                continue
            for path in paths:
                rel = ctx.home.relative(path)
                try:
                    text = function(ctx.home, rel, count)
                except MigError as exc:
                    out.append("error: %s\n" % exc.message)
                    code = code or exc.exit_code
                    continue
                if len(operands) > 1 or len(paths) > 1:
                    out.append("==> %s <==\n" % rel)
                out.append(text if not text or text.endswith("\n") else text + "\n")
        return "".join(out), cwd, code
    return run


def cmd_mkdir(ctx, cwd, words):
    opts, operands = _options("mkdir", words, "p")
    _need("mkdir", operands, what="a folder name")
    fields = {"path": [resolve_path(cwd, p) for p in operands]}
    if opts:
        fields["flags"] = ["p"]
    return _with_cwd(_call(ctx, "mkdir", fields), cwd)


def cmd_rm(ctx, cwd, words):
    opts, operands = _options("rm", words, "rfR")
    _need("rm", operands, what="a path")
    flags = "".join(sorted({"r" if o in ("-r", "-R") else "f" for o, _v in opts}))
    fields = {"path": [resolve_path(cwd, p) for p in operands]}
    if flags:
        fields["flags"] = [flags]
    return _with_cwd(_call(ctx, "rm", fields), cwd)


def _two_ends(name, short):
    def run(ctx, cwd, words):
        opts, operands = _options(name, words, short)
        _need(name, operands, 2, "a source and a destination")
        fields = {"src": [resolve_path(cwd, p) for p in operands[:-1]],
                  "dst": [resolve_path(cwd, operands[-1])]}
        if opts:
            fields["flags"] = ["r"]
        return _with_cwd(_call(ctx, name, fields), cwd)
    return run


def cmd_submit(ctx, cwd, words):
    _need("submit", words, what="an mRSL file")
    return _with_cwd(_call(ctx, "submit", {"path": [resolve_path(cwd, p) for p in words]}), cwd)


def cmd_status(ctx, cwd, words):
    opts, operands = _options("status", words, "v")
    fields = {"job_id": operands or ["*"]}
    if opts:
        fields["flags"] = ["v"]
    return _with_cwd(_call(ctx, "jobstatus", fields), cwd)


def _job_command(name, backend_name, action=None):
    def run(ctx, cwd, words):
        _need(name, words, what="a job id")
        fields = {"job_id": list(words)}
        if action:
            fields["action"] = [action]
        return _with_cwd(_call(ctx, backend_name, fields), cwd)
    return run


COMMANDS = {
    "help": cmd_help, "pwd": cmd_pwd, "cd": cmd_cd, "ls": cmd_ls, "cat": cmd_cat,
    "head": _lines("head", F.head_lines), "tail": _lines("tail", F.tail_lines),
    "mkdir": cmd_mkdir, "rm": cmd_rm, "mv": _two_ends("mv", ""), "cp": _two_ends("cp", "rR"),
    "submit": cmd_submit, "status": cmd_status,
    "cancel": _job_command("cancel", "jobaction", "cancel"),
    "freeze": _job_command("freeze", "jobaction", "freeze"),
    "thaw": _job_command("thaw", "jobaction", "thaw"),
    "resubmit": _job_command("resubmit", "resubmit"),
    "feasible": _job_command("feasible", "jobfeasible"),
}


def current_folder(ctx, cwd):
    """(the console's folder, a problem or None): a vanished folder falls back to the home."""
    rel = norm(cwd)
    try:
        if os.path.isdir(ctx.home.resolve(rel, must_exist=True)):
            return rel, None
        return ".", "%s is not a folder any more" % rel
    except MigError as exc:
        return ".", exc.message


def run_line(ctx, cwd, line):
    """One command line -> (text, cwd after it, exit code)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return "error: %s\n" % exc, cwd, InvalidArgument.exit_code
    if not words:
        return "", cwd, 0
    name, rest = words[0], words[1:]
    command = COMMANDS.get(name)
    if command is None:
        return "unknown command %s; try help\n" % name, cwd, ClientError.exit_code
    try:
        return command(ctx, cwd, rest)
    except Usage as exc:
        return "error: %s\n" % exc, cwd, InvalidArgument.exit_code
    except MigError as exc:
        return "error: %s\n" % exc.message, cwd, exc.exit_code


@backend("shell", title="Shell", header="Shell",
         fields={"cwd": Field("path", default=(".",), help="the folder to start in")})
def shell(ctx, args):
    """The web shell console (commands are sent to shellcmd)."""
    cwd, _problem = current_folder(ctx, args["cwd"])
    return O.Result([{"object_type": "shell", "text": WELCOME, "cwd": cwd}])


@backend("shellcmd", title="Shell", header="Shell", state_changing=True,
         fields={"command": Field("text", help="one command line; try help"),
                 "cwd": Field("path", default=(".",), help="the console's current folder")})
def shellcmd(ctx, args):
    """Run one web shell command line; the reply is one shell_output object."""
    cwd, problem = current_folder(ctx, args["cwd"])
    text, cwd, code = run_line(ctx, cwd, args["command"])
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + ("\n... output cut at %d MB: use head, tail or download the "
                                    "file\n" % (MAX_OUTPUT // (1024 * 1024)))
    if problem:
        text = "error: %s; back in your home folder\n%s" % (problem, text)
    return O.Result([{"object_type": "shell_output", "text": text, "cwd": cwd}], code)
