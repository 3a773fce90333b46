"""The MiG user scripts of this appliance: bash + curl, one per operation.

``scripts()`` renders ``mig<op>.sh`` for every entry of ``ops.OPS`` from
``templates/script.sh`` plus the shared ``miglib.sh``; ``user_conf()``
fills in ``miguser.conf`` for a user and a grid; ``zip_bytes()`` packs
them.  The requests the scripts send are byte for byte those of upstream
MiG's generated sh scripts (see docs/scripts.md for the differences in
behaviour).  ``python -m mig.scriptgen`` writes docs/scripts.md or a set
of scripts.
"""

import importlib.resources
import io
import string
import textwrap
import time
import zipfile

from mig import __version__
from mig.scriptgen.ops import OPS

FOLDER = "mig_user_scripts"
CONF = "miguser.conf"
LIB = "miglib.sh"
COMMON_OPTIONS = (("-c CONF", "the configuration file (default ~/.mig/miguser.conf)"),
                  ("-s URL", "the server (overrides migserver in CONF)"),
                  ("-v", "verbose: say which configuration is used; the server adds details"),
                  ("-V", "show the version"),
                  ("-h", "show this help"))
EXIT_STATUS = ("0 on success; MiG's exit code from the reply when the operation failed "
               "(1 if above 255, or for a failed upload); curl's exit code when the "
               "request failed; 2 for a usage or configuration error.")


class ScriptTemplate(string.Template):
    """@@name placeholders: bash has $ everywhere, @@ nowhere."""
    delimiter = "@@"


def template(name):
    text = importlib.resources.files("mig.scriptgen").joinpath("templates", name)
    return ScriptTemplate(text.read_text(encoding="utf-8"))


def script_name(op):
    return "mig%s.sh" % op


def names():
    """Every file the generator makes, in a stable order."""
    return [script_name(op) for op in OPS] + [LIB, CONF]


def optspec(op):
    """getopts letters of the op's own options: 'n:' for -n N, 'l' for -l."""
    return "".join(flag[1] + (":" if " " in flag else "") for flag, _ in OPS[op].options)


def help_text(op):
    """The -h text of one script (also its section of docs/scripts.md)."""
    spec = OPS[op]
    width = max(len(flag) for flag, _ in spec.options + COMMON_OPTIONS) + 2
    lines = ["Usage: %s [OPTIONS] %s" % (script_name(op), spec.args), spec.summary, "",
             "Options:"]
    lines += ["  %s%s" % (flag.ljust(width), text) for flag, text in spec.options + COMMON_OPTIONS]
    lines += [""] + textwrap.wrap("Request: %s" % spec.request, 78, subsequent_indent="  ")
    lines += textwrap.wrap("Exit status: %s" % EXIT_STATUS, 78, subsequent_indent="  ")
    lines += ["Example: %s" % example for example in spec.examples]
    return "\n".join(lines)


def render_script(op):
    spec = OPS[op]
    return template("script.sh").substitute(
        script=script_name(op), summary=spec.summary, version=__version__, help=help_text(op),
        optspec=optspec(op), flags=spec.flags + ("v" if spec.verbose_flag else ""),
        min_args=spec.min_args, body=spec.body.strip())


def user_conf(server, user):
    """miguser.conf for user on the grid at server (paths as on the user's machine)."""
    return template(CONF).substitute(server=server.rstrip("/"), user=user)


def scripts(server, user):
    """{file name: text} of every script, miglib.sh and the filled-in miguser.conf."""
    files = {script_name(op): render_script(op) for op in OPS}
    files[LIB] = template(LIB).substitute(version=__version__)
    files[CONF] = user_conf(server, user)
    return files


def zip_bytes(files, folder=FOLDER):
    """A zip of files under folder/, scripts executable (for unzip)."""
    buffer = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo("%s/%s" % (folder, name), stamp)
            mode = 0o755 if name.endswith(".sh") and name != LIB else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()
