"""The MiG user scripts (bash + curl) made for the caller: scripts writes
them into the home as MiG does, scriptsdownload serves them as files."""

import os

from mig import scriptgen
from mig.backends import Field, backend
from mig.backends.portal import page_url
from mig.core.atomic import write_atomic
from mig.errors import ClientError
from mig.render import objects as O

LANGS = {"sh": "bash + curl scripts, one per operation, and miglib.sh"}
FLAVORS = {"user": "the user scripts (files and jobs)"}


def grid_url(ctx):
    """The URL the user reaches this grid at: the request's if known, else the configured one."""
    return ctx.base_url or ctx.grid.config.url


def user_files(ctx):
    return scriptgen.scripts(grid_url(ctx), ctx.user)


def _check(lang, flavor):
    if lang not in LANGS:
        raise ClientError("lang %r is not offered: use %s (upstream's python scripts "
                          "need Python 2)" % (lang, ", ".join(LANGS)))
    if flavor not in FLAVORS:
        raise ClientError("flavor %r is not offered: use %s (resources are added by the "
                          "grid admin)" % (flavor, ", ".join(FLAVORS)))




@backend("scripts", title="Generate User Scripts", header="Generate User Scripts",
         fields={"lang": Field("word", default=("sh",), help="sh (bash + curl)"),
                 "flavor": Field("word", default=("user",), help="user"),
                 "script_dir": Field("path", default=("AUTO",),
                                     help="the folder in your home (AUTO: %s)"
                                          % scriptgen.FOLDER),
                 "flags": Field("flags")}, state_changing=True,
         help="The MiG user scripts: writes every script, "
              "miglib.sh and your miguser.conf into script_dir (default mig_user_scripts/) "
              "in your home, and all of them into script_dir.zip beside it.")
def scripts(ctx, args):
    """Make the user scripts (see the help above)."""
    _check(args["lang"], args["flavor"])
    rel = args["script_dir"]
    rel = scriptgen.FOLDER if rel in ("", "AUTO") else rel.strip("/")
    folder = ctx.home.resolve(rel)
    if folder == ctx.home.root or not rel:
        raise ClientError("script_dir must be a folder inside your home")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ClientError("%s exists and is not a folder" % rel)
    os.makedirs(folder, exist_ok=True)
    files = user_files(ctx)
    for name, text in files.items():
        write_atomic(os.path.join(folder, name), text.encode("utf-8"),
                     mode=0o755 if name.endswith(".sh") and name != scriptgen.LIB else 0o644)
    archive = ctx.home.resolve(rel + ".zip")
    write_atomic(archive, scriptgen.zip_bytes(files, os.path.basename(rel)), mode=0o644)
    return O.Result([O.text("Generated %d scripts and %s in %s/" % (
                        len(files) - 1, scriptgen.CONF, ctx.home.relative(folder))),
                     O.text("Packed them all in %s" % ctx.home.relative(archive))])


@backend("scriptsdownload", title="Download User Scripts", header="Download User Scripts",
         fields={"name": Field("word", default=("all",),
                               help="a script (migls.sh), miglib.sh, miguser.conf, or all "
                                    "(a zip of everything)")})
def scriptsdownload(ctx, args):
    """One user script, your miguser.conf, or all of them as a zip, as a file."""
    name = args["name"]
    files = user_files(ctx)
    if name == "all":
        return O.Result([{"object_type": "binary", "data": scriptgen.zip_bytes(files),
                          "filename": scriptgen.FOLDER + ".zip",
                          "content_type": "application/zip"}])
    if name not in files and "mig%s.sh" % name in files:
        name = "mig%s.sh" % name
    elif name not in files and name + ".sh" in files:
        name = name + ".sh"
    if name not in files:
        raise ClientError("no script %r: use one of %s, or all" % (name, ", ".join(files)))
    ctype = "text/x-shellscript" if name.endswith(".sh") else "text/plain"
    return O.Result([{"object_type": "binary", "data": files[name].encode("utf-8"),
                      "filename": name, "content_type": ctype + "; charset=utf-8"}])


def download_objects():
    """The user scripts' part of the Downloads page: the zip, miguser.conf, each script."""
    def link(name, label=None):
        return {"text": label or name, "href": page_url("scriptsdownload", name=name)}
    rows = [(link("all", scriptgen.FOLDER + ".zip"),
             "All scripts (zip): every script below, miglib.sh and your miguser.conf"),
            (link(scriptgen.CONF), "Your configuration for the scripts: save it as "
                                   "~/.mig/miguser.conf, with ca.crt as ~/.mig/cacert.pem, "
                                   "user.crt and user.key in ~/.mig/"),
            (link(scriptgen.LIB), "The code the scripts share: keep it beside them")]
    rows += [(link(scriptgen.script_name(op)), spec.summary) for op, spec in scriptgen.OPS.items()]
    return [O.header("User scripts"),
            O.text("MiG's command-line user scripts for this grid (bash and curl); "
                   "every script explains itself with -h."),
            O.table("userscripts", ("File", "What"), rows)]
