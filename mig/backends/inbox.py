"""The in-portal inbox and messages between people: ``inbox`` (your
messages, newest first; opening it marks them read), ``sendmsg`` (to a
user, or to every owner and member of a VGrid you are in) and ``delmsg``.

A message to someone who saved an e-mail address on the Settings page is
e-mailed too when the grid has a mail server (smtp_server).
"""

import fnmatch

from mig.backends import Field, backend
from mig.backends.jobs import asctime
from mig.errors import AccessDenied, ClientError, InvalidArgument
from mig.render import objects as O


def _page(ctx, message=None, code=0):
    inbox = ctx.grid.inbox
    messages = inbox.messages(ctx.user)
    rows = [(asctime(m["time"]), m["sender"] or "the grid", m["subject"],
             {"text": m["text"], "pre": True}, "" if m["read"] else "new",
             {"post": "delmsg", "text": "Delete", "fields": {"msg_id": m["id"]}})
            for m in messages]
    inbox.mark_read(ctx.user)
    table = O.table("inbox", ("Sent (UTC)", "From", "Subject", "Message", "", "Action"), rows)
    table["empty"] = "No messages."
    objects = ([message] if message else []) + [table, O.header("Send a message"), {
        "object_type": "form", "action": "sendmsg", "submit": "Send", "fields": [
            {"name": "to", "label": "To", "help": "a user (name or certificate DN)"},
            {"name": "vgrid_name", "label": "or a VGrid",
             "help": "every owner and member of a VGrid you are in"},
            {"name": "subject", "label": "Subject"},
            {"name": "text", "label": "Message", "type": "textarea", "rows": 6}]}]
    return O.Result(objects, code)


@backend("inbox", title="Inbox", header="Inbox")
def inbox(ctx, args):
    """Your messages, newest first: job notifications, requests to join your VGrids, and
    messages from other users.  Opening the inbox marks them read."""
    return _page(ctx)


def _vgrid_people(ctx, name):
    db, users = ctx.grid.vgrids, ctx.grid.users
    if not db.is_member(ctx.user, name) or name == "Generic":
        raise AccessDenied("only the owners and members of %s write to all of them" % name)
    patterns = db.entries(name, "OWNERS") + db.entries(name, "MEMBERS")
    return [u for u in users.names() if any(fnmatch.fnmatchcase(u, p) for p in patterns)]


@backend("sendmsg", title="Inbox", header="Inbox", state_changing=True,
         fields={"to": Field("text", help="a user (name or certificate DN)"),
                 "vgrid_name": Field("vgrid", help="or: every owner and member of this VGrid"),
                 "subject": Field("text", required=True, help="one line"),
                 "text": Field("text", required=True, help="the message")})
def sendmsg(ctx, args):
    """Send a message to a user's inbox, or to every owner and member of a VGrid you are
    in; it is e-mailed too to those who saved an address."""
    if bool(args["to"]) == bool(args["vgrid_name"]):
        raise InvalidArgument("give either to (a user) or vgrid_name (a VGrid)")
    if "\n" in args["subject"]:
        raise InvalidArgument("subject: one line")
    recipients = ([ctx.grid.users.named(args["to"])] if args["to"]
                  else _vgrid_people(ctx, args["vgrid_name"]))
    recipients = [r for r in recipients if r != ctx.user] or recipients
    if not recipients:
        raise ClientError("nobody to send to")
    ctx.grid.inbox.allow(ctx.user, len(recipients))
    subject = args["subject"] if args["to"] else "[%s] %s" % (args["vgrid_name"],
                                                             args["subject"])
    for user in recipients:
        ctx.grid.deliver_message(user, subject, args["text"], sender=ctx.user)
    return _page(ctx, O.success("Sent to %s." % ", ".join(recipients)))


@backend("delmsg", title="Inbox", header="Inbox", state_changing=True,
         fields={"msg_id": Field("word", required=True, help="the message")})
def delmsg(ctx, args):
    """Delete a message from your inbox."""
    ctx.grid.inbox.delete(ctx.user, args["msg_id"])
    return _page(ctx, O.success("The message was deleted."))
