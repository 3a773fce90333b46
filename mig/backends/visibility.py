"""``setvisibility``: who may see a job, a runtime environment, a resource or a
folder of one's home (private, a VGrid, or every user), the form that changes
it on each object's page, and ``sharedfolders``: the folders you opened to
others and those opened to you.  The rule itself is mig/core/visibility.py's."""

import os
import urllib.parse

from mig.backends import Field, backend
from mig.core import sharedfolders
from mig.core.visibility import describe
from mig.errors import InvalidArgument
from mig.render import objects as O

KINDS = {"job": "job_id", "runtimeenv": "re_name", "resource": "unique_resource_name",
         "folder": "path"}
PAGES = {"job": "/cgi-bin/jobview.py?job_id=%s", "runtimeenv": "/cgi-bin/showre.py?re_name=%s",
         "resource": "/cgi-bin/resadmin.py?unique_resource_name=%s",
         "folder": "/cgi-bin/sharedfolders.py?%.0s"}  # (that page lists them all)


def _choices(ctx):
    return [("private", "only its owners"), ("public", "every user")] + \
        [("vgrid:" + v, "the VGrid " + v) for v in ctx.grid.vgrids.user_vgrids(ctx.user)[1:]]


def visibility_form(ctx, kind, obj):
    """The "who sees this" line and form for an object's page (its owners')."""
    level = ctx.grid.visibility.level(kind, obj)
    return [O.text("Who sees it: %s." % describe(level)),
            {"object_type": "form", "action": "setvisibility", "submit": "Change",
             "fields": [{"name": "kind", "type": "hidden", "value": kind},
                        {"name": "object_id", "type": "hidden", "value": obj},
                        {"name": "visibility", "label": "Who sees it", "type": "select",
                         "value": level, "options": _choices(ctx),
                         "help": "its owners always do"}]}]


def _folder_id(ctx, path, level):
    """OWNER/PATH of a folder of the caller's own home (its real path there); a
    folder that is gone may still be made private again."""
    home_root = ctx.grid.users.home(ctx.user)
    rel = os.path.normpath("/" + path.replace("\\", "/")).strip("/")
    if level == "private" and rel:
        return "%s/%s" % (ctx.user, rel)
    real = sharedfolders.own_folder(home_root, path)
    return "%s/%s" % (ctx.user, os.path.relpath(real, os.path.realpath(home_root)))


@backend("setvisibility", title="Visibility", header="Who sees it", state_changing=True,
         fields={"kind": Field("word", required=True, help="job, runtimeenv or resource"),
                 "object_id": Field("text", required=True,
                                    help="the job id, runtime environment, resource or "
                                         "folder of your home"),
                 "visibility": Field("text", required=True,
                                     help="private, public or vgrid:NAME")})
def setvisibility(ctx, args):
    """Choose who may see something of yours: only you (and the other owners), the
    owners and members of one of your VGrids, or every user of the grid."""
    kind, obj, level = args["kind"], args["object_id"], args["visibility"].strip()
    if kind not in KINDS:
        raise InvalidArgument("kind: job, runtimeenv, resource or folder")
    grid = ctx.grid
    if kind == "folder":
        obj = _folder_id(ctx, obj, level)
    grid.visibility.set(kind, obj, level, ctx.user, grid.owners_of(kind, obj))
    return O.Result([O.success("Now %s sees %s." % (describe(level), obj)),
                     O.link(PAGES[kind] % urllib.parse.quote(obj), "Back")])


@backend("sharedfolders", title="Shared folders", header="Shared folders",
         fields={"path": Field("text", help="a folder of your home to open")})
def sharedfolders_page(ctx, args):
    """The folders of your home you opened to others (read only for them), with who
    sees each, and the folders others opened to you, which your home shows under
    shared_with_me/OWNER/."""
    grid = ctx.grid
    mine, theirs = [], []
    levels = grid.visibility.levels("folder")
    opened = grid.shared_folders(ctx.user)
    for obj in sorted(levels):
        owner, path = sharedfolders.split_folder_id(obj)
        if owner == ctx.user:
            mine.append((path, describe(levels[obj]), {
                "post": "setvisibility", "text": "Make private",
                "fields": {"kind": "folder", "object_id": path, "visibility": "private"}}))
    for name in sorted(opened):
        if name.startswith(sharedfolders.WITH_ME + "/"):
            owner, path = sharedfolders.split_folder_id(name[len(sharedfolders.WITH_ME) + 1:])
            theirs.append((owner, path, {"text": name, "href": "/cgi-bin/fileman.py?" +
                                         urllib.parse.urlencode({"path": name})}))
    table_mine = O.table("myopenfolders", ("Folder", "Who sees it", "Action"), mine)
    table_mine["empty"] = "None: your folders are yours alone."
    table_theirs = O.table("openedtome", ("Owner", "Folder", "In your home"), theirs)
    table_theirs["empty"] = "Nobody opened a folder to you."
    return O.Result([
        O.text("A folder you open is read only for the others: they find it in their "
               "home under shared_with_me/%s/, and their jobs may read it." % ctx.user),
        O.header("Your open folders"), table_mine,
        {"object_type": "form", "action": "setvisibility", "submit": "Open",
         "fields": [{"name": "kind", "type": "hidden", "value": "folder"},
                    {"name": "object_id", "label": "Folder", "value": args["path"] or "",
                     "help": "a folder of your home, e.g. results/2026"},
                    {"name": "visibility", "label": "Who sees it", "type": "select",
                     "value": "public", "options": _choices(ctx)[1:]}]},
        O.header("Opened to you"), table_theirs])
