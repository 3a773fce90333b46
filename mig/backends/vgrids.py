"""VGrid backends, with MiG's names and fields: ``vgridman`` (your VGrids,
create one, ask to join), ``createvgrid``, ``adminvgrid`` (one VGrid's
owners, members, resources and waiting requests), ``add/rmvgrid{owner,
member,res}``, ``lsvgrid{owners,members,res}``, ``sendrequestaction``,
``rejectvgridreq``, ``vgridsettings`` and ``rmvgrid``.

The rights are checked in mig/core/vgrids.py; these backends find the user
or resource named, call it, and tell the running grid when a VGrid's
resources changed (the scheduler follows at once).
"""

import urllib.parse

from mig.backends import Field, backend, truthy
from mig.backends.jobs import asctime
from mig.core.keywords import DEFAULT_VGRID
from mig.core.vgrids import INVITE, REQUEST_TYPES
from mig.errors import AccessDenied, ClientError
from mig.render import objects as O

VGRID = {"vgrid_name": Field("vgrid", required=True, help="the VGrid (A/B for a sub-VGrid)")}
WHO = dict(VGRID, cert_id=Field("text", required=True, help="a user name or certificate DN"),
           request_name=Field("word", help="the request this accepts"),
           rank=Field("number", help="ignored (MiG orders owners by it)"))
RES = dict(VGRID, unique_resource_name=Field("resource", required=True,
                                             help="the resource (HOSTURL.N)"),
           request_name=Field("word", help="the request this accepts"),
           rank=Field("number", help="ignored"))
VGRID_LINKS = (("/cgi-bin/fileman.py?path=%s", "Shared folder"),
               ("/cgi-bin/lsvgridtriggers.py?vgrid_name=%s", "Triggers"),
               ("/cgi-bin/vgridwiki.py?vgrid_name=%s", "Wiki"),
               ("/cgi-bin/vgridforum.py?vgrid_name=%s", "Forum"),
               ("/cgi-bin/vgridpage.py?page=private&vgrid_name=%s", "Private page"),
               ("/vgrid/%s/", "Public page"),
               ("/cgi-bin/monitor.py?vgrid_name=%s", "Monitor"))
ROLE_WORDS = {"OWNERS": "an owner", "MEMBERS": "a member", "RESOURCES": "a resource"}


def _resource(ctx, name):
    """A registered resource, or the appliance host's own (it has no record)."""
    ctx.grid.follow_resources()
    if name not in ctx.grid.resources.names() and \
            not any(u.resource == name for u in ctx.grid.registry.all()):
        raise ClientError("no such resource: %s" % name)
    return name


def _tell_owners(ctx, name, subject, text):
    """A notice to every owner of a VGrid (inbox, and mail where set up)."""
    users = ctx.grid.users
    for owner in ctx.grid.vgrids.entries(name, "OWNERS"):
        if users.exists(owner):
            ctx.grid.deliver_message(owner, subject, text)


# -- pages ---------------------------------------------------------------------------------
def _my_rows(ctx):
    db, rows = ctx.grid.vgrids, []
    rows.append((DEFAULT_VGRID, "member", "every user and every resource"))
    for name in db.names():
        role = db.role(ctx.user, name)
        if role:
            about = db.settings(name)["description"]
            rows.append(({"text": name, "href": "/cgi-bin/adminvgrid.py?vgrid_name=" + name},
                         role, about))
    return rows


def manage_page(ctx, message=None, code=0):
    db = ctx.grid.vgrids
    mine = O.table("vgrids", ("VGrid", "Your role", "About"), _my_rows(ctx))
    others = [(name, db.settings(name)["description"],
               {"post": "sendrequestaction", "text": "Ask to join",
                "fields": {"vgrid_name": name, "request_type": "vgridmember"}})
              for name in db.names()
              if not db.role(ctx.user, name) and not db.settings(name)["hidden"]]
    objects = ([message] if message else []) + [mine]
    invited = db.invitations(ctx.user)
    if invited:
        table = O.table("vgridinvitations", ("VGrid", "Invited by", "When (UTC)", "Accept",
                                             "Decline"),
                        [(vgrid, r["by"], asctime(r["time"]),
                          {"post": "acceptvgridinvite", "text": "Accept",
                           "fields": {"vgrid_name": vgrid, "request_name": r["id"]}},
                          {"post": "declinevgridinvite", "text": "Decline",
                           "fields": {"vgrid_name": vgrid, "request_name": r["id"]}})
                         for vgrid, r in invited])
        objects += [O.header("Invitations"), table]
    objects += [O.header("Create a VGrid"),
                {"object_type": "form", "action": "createvgrid", "submit": "Create",
                 "fields": [{"name": "vgrid_name", "label": "Name",
                             "help": "letters, digits, '.', '_', '-'; PARENT/NAME for a "
                                     "sub-VGrid of a VGrid you own"}]}]
    if others:
        table = O.table("othervgrids", ("VGrid", "About", "Action"), others)
        objects += [O.header("Other VGrids"), table]
    return O.Result(objects, code)


def _member_rows(db, name, role, may_manage):
    direct = db.get(name)[role]
    rows = []
    for entry in db.entries(name, role):
        field = "unique_resource_name" if role == "RESOURCES" else "cert_id"
        action = "rmvgrid" + {"OWNERS": "owner", "MEMBERS": "member", "RESOURCES": "res"}[role]
        if entry not in direct:
            remove = "inherited from a parent VGrid"
        elif may_manage:
            remove = {"post": action, "text": "Remove",
                      "fields": {"vgrid_name": name, field: entry},
                      "confirm": "Remove %s from %s?" % (entry, name)}
        else:
            remove = ""
        rows.append((entry, remove))
    return rows


def vgrid_page(ctx, name, message=None, code=0):
    db = ctx.grid.vgrids
    db.check_visible(name, ctx.user)
    manages = db.is_owner(ctx.user, name) or ctx.grid.users.is_admin(ctx.user)
    settings = db.settings(name)
    objects = ([message] if message else []) + [
        O.text("%s%s. Your role: %s." % (name, ": " + settings["description"]
                                         if settings["description"] else "",
                                         db.role(ctx.user, name) or "admin")),
        O.text("Jobs run in it with ::VGRID:: %s; resources serve it when their exe units "
               "list it and its owners have accepted them." % name),
        {"object_type": "links", "links": [
            (target % urllib.parse.quote(name), label) for target, label in VGRID_LINKS]}]
    for role, title in (("OWNERS", "Owners"), ("MEMBERS", "Members"), ("RESOURCES", "Resources")):
        objects.append(O.header(title))
        if not db.may_list(ctx.user, name, role):
            objects.append(O.text("Shown to the owners only."))
            continue
        table = O.table("vgrid" + role.lower(), (title[:-1], "Action"),
                        _member_rows(db, name, role, manages))
        table["empty"] = "None."
        objects.append(table)
        if manages:
            field = "unique_resource_name" if role == "RESOURCES" else "cert_id"
            action = "addvgrid" + {"OWNERS": "owner", "MEMBERS": "member",
                                   "RESOURCES": "res"}[role]
            objects.append({"object_type": "form", "action": action,
                            "submit": "Add %s" % title[:-1].lower(),
                            "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                                       {"name": field, "label": title[:-1],
                                        "id": "%s-%s" % (field, role.lower()),
                                        "help": "a resource (HOSTURL.N)" if role == "RESOURCES"
                                        else "a user (name or certificate DN)"}]})
    if manages:
        requests = db.requests(name, ctx.user)
        objects.append(O.header("Requests"))
        table = O.table("vgridrequests", ("From", "Wants to be", "Message", "Sent (UTC)",
                                          "Accept", "Reject"),
                        [_request_row(name, r) for r in requests])
        table["empty"] = "No requests wait."
        objects.append(table)
        objects.append({"object_type": "form", "action": "invitevgridmember",
                        "submit": "Invite",
                        "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                                   {"name": "cert_id", "label": "Invite a user",
                                    "id": "cert_id-invite",
                                    "help": "they become a member when they accept"}]})
        objects.append(O.header("Settings"))
        objects.append({"object_type": "form", "action": "vgridsettings", "submit": "Save",
                        "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                                   {"name": "description", "label": "Description",
                                    "value": db.get(name)["SETTINGS"].get("description", "")},
                                   {"name": "write_shared_files", "label": "Who writes",
                                    "type": "select", "value": settings["write_shared_files"],
                                    "options": [("MEMBERS", "owners and members"),
                                                ("OWNERS", "owners only"),
                                                ("NONE", "nobody (read only)")],
                                    "help": "the shared folder and the repository"},
                                   {"name": "hidden", "label": "Hidden from the VGrid list",
                                    "type": "checkbox", "value": bool(settings["hidden"])}]
                        + [{"name": "visible_" + role, "label": "Who sees the " + role,
                            "type": "select", "value": settings["visible_" + role],
                            "options": LIST_CHOICES}
                           for role in ("owners", "members", "resources")]
                        + [{"name": "public_page", "label": "Public page",
                            "type": "select", "value": settings["public_page"],
                            "options": [("EVERYONE", "anyone, without logging in"),
                                        ("MEMBERS", "withdrawn (owners and members only)")],
                            "help": "at /vgrid/%s/" % name}]})
    else:
        objects.append({"object_type": "post_button", "backend": "rmvgridmember",
                        "fields": {"vgrid_name": name, "cert_id": ctx.user},
                        "text": "Leave %s" % name, "confirm": "Leave %s?" % name,
                        "style": "secondary"})
    return O.Result(objects, code)


LIST_CHOICES = [("OWNERS", "owners only"), ("MEMBERS", "owners and members"),
                ("EVERYONE", "every user of the grid")]


def _request_row(name, request):
    if request["type"] == INVITE:
        return (request["who"], "member (invited by %s)" % request["by"], "-",
                asctime(request["time"]), "waits for their answer",
                {"post": "rejectvgridreq", "text": "Withdraw",
                 "fields": {"vgrid_name": name, "request_name": request["id"]}})
    role = REQUEST_TYPES[request["type"]]
    field = "unique_resource_name" if role == "RESOURCES" else "cert_id"
    action = "addvgrid" + {"OWNERS": "owner", "MEMBERS": "member", "RESOURCES": "res"}[role]
    return (request["who"], ROLE_WORDS[role][2:].lstrip("n "), request["text"] or "-",
            asctime(request["time"]),
            {"post": action, "text": "Accept",
             "fields": {"vgrid_name": name, field: request["who"],
                        "request_name": request["id"]}},
            {"post": "rejectvgridreq", "text": "Reject",
             "fields": {"vgrid_name": name, "request_name": request["id"]}})


@backend("vgrids", title="VGrids", header="VGrids")
def vgrids(ctx, args):
    """Your VGrids and your role in each; create one; ask to join others."""
    return manage_page(ctx)


@backend("vgridman", title="VGrids", header="VGrids",
         fields={"operation": Field("word", default=("show",), help="show"),
                 "caching": Field("bool", default=("false",), help="ignored")})
def vgridman(ctx, args):
    """Your VGrids and your role in each (MiG's VGrid manager)."""
    return manage_page(ctx)


@backend("adminvgrid", title="VGrids", header="VGrid", fields=VGRID)
def adminvgrid(ctx, args):
    """One VGrid: owners, members and resources (inherited ones marked); owners also
    add and remove them, answer requests and change the settings."""
    return vgrid_page(ctx, args["vgrid_name"])


@backend("createvgrid", title="VGrids", header="VGrid", state_changing=True, fields=VGRID)
def createvgrid(ctx, args):
    """Create a VGrid and become its owner; NAME/SUB creates a sub-VGrid of one you own."""
    name = args["vgrid_name"]
    ctx.grid.vgrids.create(name, ctx.user)
    return vgrid_page(ctx, name, O.success("Created the VGrid %s." % name))


@backend("rmvgrid", title="VGrids", header="VGrids", state_changing=True, fields=VGRID)
def rmvgrid(ctx, args):
    """Remove a VGrid that has no sub-VGrids (its owners)."""
    name = args["vgrid_name"]
    ctx.grid.vgrids.delete(name, ctx.user)
    ctx.grid.vgrids_changed()
    return manage_page(ctx, O.success("Removed the VGrid %s." % name))


def _add(ctx, args, role):
    name = args["vgrid_name"]
    who = (_resource(ctx, args["unique_resource_name"]) if role == "RESOURCES"
           else ctx.grid.users.named(args["cert_id"]))
    ctx.grid.vgrids.add(name, role, who, ctx.user, args["request_name"])
    if role == "RESOURCES":
        ctx.grid.vgrids_changed()
    return vgrid_page(ctx, name, O.success("%s is %s of %s." % (who, ROLE_WORDS[role], name)))


@backend("addvgridowner", title="VGrids", header="VGrid", state_changing=True, fields=WHO)
def addvgridowner(ctx, args):
    """Make a user an owner of your VGrid (a member is promoted)."""
    return _add(ctx, args, "OWNERS")


@backend("addvgridmember", title="VGrids", header="VGrid", state_changing=True, fields=WHO)
def addvgridmember(ctx, args):
    """Make a user a member of your VGrid."""
    return _add(ctx, args, "MEMBERS")


@backend("addvgridres", title="VGrids", header="VGrid", state_changing=True, fields=RES)
def addvgridres(ctx, args):
    """Accept a resource into your VGrid: its exe units that list the VGrid serve it."""
    return _add(ctx, args, "RESOURCES")


def _remove(ctx, args, role):
    name = args["vgrid_name"]
    if role == "RESOURCES":
        who = args["unique_resource_name"]
        ctx.grid.vgrids.remove(name, role, who, ctx.user,
                               may_remove_resource=ctx.grid.manages_resource(ctx.user, who))
        ctx.grid.vgrids_changed()
    else:
        who = ctx.grid.users.named(args["cert_id"])
        ctx.grid.vgrids.remove(name, role, who, ctx.user)
    message = O.success("%s is no longer %s of %s." % (who, ROLE_WORDS[role], name))
    if who == ctx.user and not ctx.grid.vgrids.is_member(ctx.user, name) \
            and not ctx.grid.users.is_admin(ctx.user):
        return manage_page(ctx, message)
    return vgrid_page(ctx, name, message)


@backend("rmvgridowner", title="VGrids", header="VGrid", state_changing=True,
         fields=dict(VGRID, cert_id=WHO["cert_id"], flags=Field("flags", help="ignored")))
def rmvgridowner(ctx, args):
    """Remove an owner (owners; never the last owner of a VGrid)."""
    return _remove(ctx, args, "OWNERS")


@backend("rmvgridmember", title="VGrids", header="VGrid", state_changing=True,
         fields=dict(VGRID, cert_id=WHO["cert_id"]))
def rmvgridmember(ctx, args):
    """Remove a member (owners), or leave a VGrid yourself."""
    return _remove(ctx, args, "MEMBERS")


@backend("rmvgridres", title="VGrids", header="VGrid", state_changing=True,
         fields=dict(VGRID, unique_resource_name=RES["unique_resource_name"]))
def rmvgridres(ctx, args):
    """Remove a resource from a VGrid (its owners, or the resource's owners)."""
    return _remove(ctx, args, "RESOURCES")


def _listing(ctx, args, role):
    name = args["vgrid_name"]
    ctx.grid.vgrids.check_list(name, ctx.user, role)
    table = O.table("vgrid" + role.lower(), (role.title()[:-1],),
                    [(e,) for e in ctx.grid.vgrids.entries(name, role)])
    table["empty"] = "None."
    return O.Result([table])


@backend("lsvgridowners", title="VGrids", header="VGrid owners", fields=VGRID)
def lsvgridowners(ctx, args):
    """The owners of a VGrid you are in, inherited ones first."""
    return _listing(ctx, args, "OWNERS")


@backend("lsvgridmembers", title="VGrids", header="VGrid members", fields=VGRID)
def lsvgridmembers(ctx, args):
    """The members of a VGrid you are in, inherited ones first."""
    return _listing(ctx, args, "MEMBERS")


@backend("lsvgridres", title="VGrids", header="VGrid resources", fields=VGRID)
def lsvgridres(ctx, args):
    """The resources of a VGrid you are in, inherited ones first."""
    return _listing(ctx, args, "RESOURCES")


@backend("sendrequestaction", title="VGrids", header="Request", state_changing=True,
         fields={"request_type": Field("word", required=True,
                                       help="vgridmember, vgridowner or vgridresource"),
                 "vgrid_name": Field("vgrid", help="the VGrid to join"),
                 "cert_id": Field("text", help="ignored: a request is always your own"),
                 "unique_resource_name": Field("resource", help="your resource, for "
                                                                "vgridresource"),
                 "protocol": Field("word", help="ignored"),
                 "request_text": Field("text", help="a message to the owners")})
def sendrequestaction(ctx, args):
    """Ask the owners of a VGrid to take you (or your resource) in."""
    name, kind = args["vgrid_name"], args["request_type"]
    if not name:
        raise ClientError("vgrid_name: which VGrid do you ask to join?")
    ctx.grid.vgrids.get(name)
    if kind == "vgridresource":
        who = args["unique_resource_name"]
        if not who or not ctx.grid.manages_resource(ctx.user, _resource(ctx, who)):
            raise AccessDenied("only the owners of a resource ask for it to join a VGrid")
    else:
        who = ctx.user
    request = ctx.grid.vgrids.request(name, kind, who, args["request_text"])
    asking = ("%s asks for the resource %s to be a resource of %s." % (ctx.user, who, name)
              if kind == "vgridresource" else
              "%s asks to be %s of %s." % (who, ROLE_WORDS[REQUEST_TYPES[kind]], name))
    _tell_owners(ctx, name, "Request to join %s" % name, "%s%s\n\nAnswer on %s/cgi-bin/"
                 "adminvgrid.py?vgrid_name=%s" % (asking, "\n\n" + request["text"]
                                                  if request["text"] else "",
                                                  ctx.grid.public_url, name))
    return manage_page(ctx, O.success("Asked the owners of %s to take %s in; they see the "
                                       "request on the VGrid's page." % (name, who)))


@backend("rejectvgridreq", title="VGrids", header="VGrid", state_changing=True,
         fields=dict(VGRID, request_name=Field("word", required=True, help="the request")))
def rejectvgridreq(ctx, args):
    """Reject a request to join your VGrid."""
    name = args["vgrid_name"]
    request = ctx.grid.vgrids.reject(name, args["request_name"], ctx.user)
    if ctx.grid.users.exists(request["who"]):
        ctx.grid.deliver_message(request["who"], "Your request to join %s" % name,
                                 "The owners of %s turned your request down." % name)
    return vgrid_page(ctx, name, O.success("Rejected the request of %s." % request["who"]))


@backend("vgridsettings", title="VGrids", header="VGrid", state_changing=True,
         fields=dict(VGRID, description=Field("text", help="what the VGrid is for"),
                     hidden=Field("bool", default=("false",),
                                  help="hidden from the list of VGrids to join"),
                     write_shared_files=Field("word", help="who writes the shared folder and "
                                                           "pushes to the repository: MEMBERS,"
                                                           " OWNERS or NONE (empty: as it is)"),
                     visible_owners=Field("word", help="who lists the owners: OWNERS, "
                                                       "MEMBERS or EVERYONE (empty: as it is)"),
                     visible_members=Field("word", help="who lists the members (the same)"),
                     visible_resources=Field("word", help="who lists the resources (the same)"),
                     public_page=Field("word", help="EVERYONE (the public page is public) or "
                                                    "MEMBERS (withdrawn)")))
def vgridsettings(ctx, args):
    """Change a VGrid's description, whether it is listed for others to join, who
    writes its shared files and repository, who sees its lists and whether its
    public page is public."""
    name = args["vgrid_name"]
    values = {"description": args["description"][:500], "hidden": truthy(args["hidden"])}
    for key in ("write_shared_files", "visible_owners", "visible_members",
                "visible_resources", "public_page"):
        if args[key]:
            values[key] = args[key].upper()
    ctx.grid.vgrids.save_settings(name, values, ctx.user)
    return vgrid_page(ctx, name, O.success("Saved the settings of %s." % name))
