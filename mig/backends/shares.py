"""Share links (sharelink): anyone who knows a link's id gets one file or
folder of the owner's home (mig.core.sharelinks).  The web layer serves
them at ``/share_redirect/ID/PATH`` (GET, HEAD, SHAREPUT, PUT) through
share_download/share_upload here, and runs the backends in SHARE_ACCESS
for requests that carry ``share_id`` instead of credentials, with a
ShareHome (the shared folder as the home) as ctx.home: every path those
backends take is then confined to the shared folder by construction.
"""

import os

from mig.backends import Field, backend, truthy
from mig.core import sharelinks as S
from mig.errors import InvalidArgument
from mig.render import objects as O
from mig.backends.chunkedupload import store_upload

# Backends a share link may run, with the (read, write) access each needs.
# rm and rmdir need both: a write-only link is a drop box that only adds.
SHARE_ACCESS = {"ls": (True, False), "mkdir": (False, True), "rm": (True, True),
                "rmdir": (True, True), "uploadchunked": (False, True)}
SHARE_ACTIONS = ("show", "edit", "create", "update", "delete")


def _link_row(link):
    return (link["share_id"], link["path"], S.access_name(link), S.format_expiry(link),
            S.url(link))


def _link_table(links):
    return O.table("sharelinks", ("Share ID", "Path", "Access", "Expires", "URL"),
                   [_link_row(link) for link in links])


def _access(args, current=None):
    """(read, write) from the fields; absent ones keep current (None: not given)."""
    read = truthy(args["read_access"]) if args["read_access"] else None
    write = truthy(args["write_access"]) if args["write_access"] else None
    if current is None and read is None and write is None:
        return True, False  # create without either: read-only
    if current is None:
        return bool(read), bool(write)
    return read, write


def _invite_note(link, invites):
    return ("Invitations recorded for %s. No e-mail is sent by this appliance: pass the "
            "link %s on yourself." % (", ".join(invites), S.url(link)))


@backend("sharelink", title="Share Link", header="Manage share links", state_changing=True,
         fields={"action": Field("word", default=("show",),
                                 help="show (your links), edit (one link), create, update "
                                      "or delete"),
                 "share_id": Field("word", help="edit, update, delete: the link's id"),
                 "path": Field("path", help="create: the file or folder in your home to "
                                            "share (not the home itself)"),
                 "read_access": Field("bool", help="create, update: anyone with the link "
                                                   "may read (default for create: true "
                                                   "unless write_access is given)"),
                 "write_access": Field("bool", help="create, update: anyone with the link "
                                                    "may upload into the folder"),
                 "expire": Field("word", help="create, update: days from now (default 30, "
                                              "at most 3650) or the last day YYYY-MM-DD "
                                              "(UTC)"),
                 "invite": Field("text", multi=True,
                                 help="create, update: e-mail addresses to record as invited "
                                      "(comma-separated; no mail is sent)"),
                 "msg": Field("text", help="create, update: a message recorded with the "
                                           "invitations"),
                 "flags": Field("flags", help="v: verbose")},
         help="Share links: one file or folder of your home for anyone who knows the "
              "link's id, read-only, write-only (a drop box that only adds files) or "
              "read-write, until it expires. The reply lists your links as a table "
              "Share ID, Path, Access, Expires, URL; the URL /share_redirect/ID/PATH "
              "downloads (GET) and uploads (SHAREPUT or PUT) without logging in.")
def sharelink(ctx, args):
    """Create, update, delete and show share links (see the help above)."""
    service = S.links(ctx.grid)
    action = args["action"]
    if action not in SHARE_ACTIONS:
        raise InvalidArgument('Invalid action "%s" (supported: %s)'
                              % (action, ", ".join(SHARE_ACTIONS)))
    objects = [O.text("sharelink using flag: %s" % f) for f in args["flags"] if f == "v"]
    if len(args["msg"]) > S.MAX_MSG:
        raise InvalidArgument("msg: at most %d characters" % S.MAX_MSG)
    invites = S.parse_invites(args["invite"])
    if action == "show":
        objects += [O.header("Share Links"), _link_table(service.owned(ctx.user))]
        return O.Result(objects)
    if action in ("edit", "update", "delete") and not args["share_id"]:
        raise InvalidArgument("%s requires existing share link: give share_id" % action)
    if action == "edit":
        link = service.get_owned(ctx.user, args["share_id"])
        objects += [O.header("Edit Share Link"), _link_table([link])]
        objects.append(O.text("Invited: %s" % (", ".join(link.get("invites", [])) or "nobody")))
        if link.get("msg"):
            objects.append(O.text("Message: %s" % link["msg"]))
        return O.Result(objects)
    if action == "delete":
        link = service.delete(ctx.user, args["share_id"])
        objects += [O.header("Delete Share Link"),
                    O.text("Deleted share link %s on %s ." % (link["share_id"], link["path"]))]
        return O.Result(objects)
    if action == "create":
        read, write = _access(args)
        link = service.create(ctx.user, args["path"], read, write,
                              S.parse_expire(args["expire"]), invites, args["msg"])
        verb, head = "Created", "Create Share Link"
    else:
        current = service.get_owned(ctx.user, args["share_id"])
        read, write = _access(args, current)
        expires = S.parse_expire(args["expire"]) if args["expire"] else None
        link = service.update(ctx.user, current["share_id"], read, write, expires, invites,
                              args["msg"] or None)
        verb, head = "Updated", "Update Share Link"
    objects += [O.header(head),
                O.text("%s share link %s on %s ." % (verb, link["share_id"], link["path"])),
                _link_table([link])]
    if invites:
        objects.append(O.text(_invite_note(link, invites)))
    return O.Result(objects)


def share_home(grid, share_id, name):
    """The ShareHome a share-mode request of backend name works on; raises
    FileNotFound (unknown or expired link) or AccessDenied (missing access)."""
    home = S.links(grid).share_home(share_id)
    read, write = SHARE_ACCESS[name]
    home.need(read=read, write=write, what=name)
    return home


def share_download(grid, share_id, rel):
    """(open file, size, name) for GET /share_redirect/ID/rel; raises MigError."""
    handle, name = S.links(grid).open_file(share_id, rel)
    return handle, os.fstat(handle.fileno()).st_size, name


def share_upload(grid, share_id, rel, body, length):
    """SHAREPUT/PUT /share_redirect/ID/rel: the lines of a CERTPUT reply.

    Never a job submission or unpacking (the Content-Type is ignored): share
    users act in the owner's files, not as the owner.  Raises FileNotFound
    for unknown or expired links and AccessDenied without write access.
    """
    home = S.links(grid).share_home(share_id)
    home.need(write=True, what="uploading")
    stored = store_upload(home, rel, body, length, overwrite=not home.add_only)
    return ["A 'normal' file was uploaded (%s)." % stored]
