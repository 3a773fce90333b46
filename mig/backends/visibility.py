"""``setvisibility``: who may see a job, a runtime environment or a resource
(private, a VGrid, or every user), and the form that changes it on each
object's page.  The rule itself is mig/core/visibility.py's."""

import urllib.parse

from mig.backends import Field, backend
from mig.core.visibility import describe
from mig.errors import InvalidArgument
from mig.render import objects as O

KINDS = {"job": "job_id", "runtimeenv": "re_name", "resource": "unique_resource_name"}
PAGES = {"job": "/cgi-bin/jobview.py?job_id=%s", "runtimeenv": "/cgi-bin/showre.py?re_name=%s",
         "resource": "/cgi-bin/resadmin.py?unique_resource_name=%s"}


def visibility_form(ctx, kind, obj):
    """The "who sees this" line and form for an object's page (its owners')."""
    level = ctx.grid.visibility.level(kind, obj)
    choices = [("private", "only its owners"), ("public", "every user")] + \
        [("vgrid:" + v, "the VGrid " + v) for v in ctx.grid.vgrids.user_vgrids(ctx.user)[1:]]
    return [O.text("Who sees it: %s." % describe(level)),
            {"object_type": "form", "action": "setvisibility", "submit": "Change",
             "fields": [{"name": "kind", "type": "hidden", "value": kind},
                        {"name": "object_id", "type": "hidden", "value": obj},
                        {"name": "visibility", "label": "Who sees it", "type": "select",
                         "value": level, "options": choices,
                         "help": "its owners always do"}]}]


@backend("setvisibility", title="Visibility", header="Who sees it", state_changing=True,
         fields={"kind": Field("word", required=True, help="job, runtimeenv or resource"),
                 "object_id": Field("text", required=True,
                                    help="the job id, runtime environment or resource"),
                 "visibility": Field("text", required=True,
                                     help="private, public or vgrid:NAME")})
def setvisibility(ctx, args):
    """Choose who may see something of yours: only you (and the other owners), the
    owners and members of one of your VGrids, or every user of the grid."""
    kind, obj, level = args["kind"], args["object_id"], args["visibility"].strip()
    if kind not in KINDS:
        raise InvalidArgument("kind: job, runtimeenv or resource")
    grid = ctx.grid
    grid.visibility.set(kind, obj, level, ctx.user, grid.owners_of(kind, obj))
    return O.Result([O.success("Now %s sees %s." % (describe(level), obj)),
                     O.link(PAGES[kind] % urllib.parse.quote(obj), "Back")])
