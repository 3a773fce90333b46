"""People and accounts: ``people`` (the directory: every user's name and role,
and the profile fields each chose to show), ``saveprofile``, ``renewcert``;
for admins, the account requests (``acceptaccount``, ``rejectaccount``) and
``disableuser``, ``enableuser`` and ``removeuser``.  People ask for an
account and reset their password on public pages (web/signup.py)."""

from mig.backends import Field, backend, truthy
from mig.backends.jobs import asctime
from mig.core import jobs as J
from mig.errors import AccessDenied
from mig.render import objects as O

PROFILE = ("full_name", "organization", "about")
WHO = {"cert_id": Field("text", required=True, help="a user name or certificate DN")}


def _admin(ctx):
    return ctx.grid.users.is_admin(ctx.user)


def _page(ctx, message=None):
    users, admin = ctx.grid.users, _admin(ctx)
    rows = []
    for name in users.names():
        record, settings = users.get(name), users.settings(name)
        shown = settings.get("profile_visible") or name == ctx.user or admin
        row = [name, "admin" if record.get("admin") else "user",
               asctime(record.get("created"))] + \
            [settings.get(f, "") if shown else "" for f in PROFILE]
        if admin:
            row.append("disabled" if record.get("disabled") else "active")
            action = "enableuser" if record.get("disabled") else "disableuser"
            row.append({"group": [
                {"post": action, "text": "Enable" if action == "enableuser" else "Disable",
                 "fields": {"cert_id": name}},
                {"post": "removeuser", "text": "Remove", "fields": {"cert_id": name},
                 "confirm": "Remove the account %s? Its home is kept for the admins." % name,
                 "style": "danger"}]} if name != ctx.user else "")
        rows.append(tuple(row))
    columns = ("User", "Role", "Since (UTC)", "Name", "Organization", "About") + \
        (("State", "Action") if admin else ())
    objects = ([message] if message else []) + [O.table("people", columns, rows)]
    mine = users.settings(ctx.user)
    objects += [O.header("Your profile"), {
        "object_type": "form", "action": "saveprofile", "submit": "Save", "fields": [
            {"name": "full_name", "label": "Name", "value": mine.get("full_name", "")},
            {"name": "organization", "label": "Organization",
             "value": mine.get("organization", "")},
            {"name": "about", "label": "About you", "type": "textarea", "rows": 3,
             "value": mine.get("about", "")},
            {"name": "profile_visible", "label": "Show these to the grid's users",
             "type": "checkbox", "value": bool(mine.get("profile_visible"))}]}]
    if ctx.grid.accounts.may_answer(ctx.user):
        requests = ctx.grid.accounts.requests()
        table = O.table("accountrequests", ("User name", "Name", "E-mail", "Organization",
                                            "Why", "Certificate", "Asked (UTC)", "Accept",
                                            "Reject"),
                        [(r["name"], r["full_name"], r["email"], r["organization"],
                          r["comment"] or "-",
                          "%s (issued by %s)" % tuple(r["cert"]) if r.get("cert") else "-",
                          asctime(r["time"]),
                          {"post": "acceptaccount", "text": "Accept",
                           "fields": {"request_id": r["id"]}},
                          {"post": "rejectaccount", "text": "Reject",
                           "fields": {"request_id": r["id"]}}) for r in requests])
        table["empty"] = "No account requests wait."
        objects += [O.header("Account requests"), table]
    return O.Result(objects)


@backend("people", title="People", header="People")
def people(ctx, args):
    """The users of this grid, with the profile each chose to show; admins also answer
    account requests and disable, enable or remove accounts here."""
    return _page(ctx)


@backend("saveprofile", title="People", header="People", state_changing=True,
         fields={"full_name": Field("text", help="your name"),
                 "organization": Field("text", help="where you work"),
                 "about": Field("text", help="a few words"),
                 "profile_visible": Field("bool", default=("false",),
                                          help="show these to the grid's users")})
def saveprofile(ctx, args):
    """Your profile in the directory: shown to others only when you say so."""
    ctx.grid.users.save_settings(ctx.user, full_name=" ".join(args["full_name"].split())[:100],
                                 organization=" ".join(args["organization"].split())[:100],
                                 about=args["about"][:1000],
                                 profile_visible=truthy(args["profile_visible"]))
    return _page(ctx, O.success("Your profile was saved."))


@backend("renewcert", title="Downloads", header="Downloads", state_changing=True)
def renewcert(ctx, args):
    """A new certificate for you (same name, a new key and expiry date); download it
    and its PKCS#12 file on the Downloads page.  The old one works until it expires."""
    not_after = ctx.grid.users.renew_cert(ctx.user)
    return O.Result([O.success("Your new certificate is valid until %s UTC: download it on "
                               "the Downloads page." % asctime(not_after)),
                     O.link("/cgi-bin/downloads.py", "Downloads")])


def _require_admin(ctx, what):
    if not _admin(ctx):
        raise AccessDenied("only the grid's admins %s" % what)


@backend("acceptaccount", title="People", header="People", state_changing=True,
         fields={"request_id": Field("word", required=True, help="the request")})
def acceptaccount(ctx, args):
    """(Admins) create the account someone asked for; they are told by mail where set up."""
    request, _made = ctx.grid.accounts.accept(args["request_id"], ctx.user)
    ctx.grid.mailer.send(request["email"], "Your account on %s" % ctx.grid.public_url,
                         "Your account %s was made. %s; a certificate of this grid is on "
                         "the Downloads page too."
                         % (request["name"], "Your certificate %s logs you in at %s" % (
                             request["cert"][0], ctx.grid.public_url) if request.get("cert")
                            else "Log in at %s/login with the password you chose"
                            % ctx.grid.public_url))
    return _page(ctx, O.success("Made the account %s." % request["name"]))


@backend("rejectaccount", title="People", header="People", state_changing=True,
         fields={"request_id": Field("word", required=True, help="the request")})
def rejectaccount(ctx, args):
    """(Admins) turn an account request down; they are told by mail where set up."""
    request = ctx.grid.accounts.reject(args["request_id"], ctx.user)
    ctx.grid.mailer.send(request["email"], "Your account request on %s" % ctx.grid.public_url,
                         "The admins of %s turned your request for the account %s down."
                         % (ctx.grid.public_url, request["name"]))
    return _page(ctx, O.success("Rejected the request for %s." % request["name"]))


def _set_disabled(ctx, args, disabled):
    _require_admin(ctx, "disable and enable accounts")
    name = ctx.grid.users.named(args["cert_id"])
    if name == ctx.user:
        raise AccessDenied("you cannot disable your own account")
    ctx.grid.users.set_disabled(name, disabled)
    return _page(ctx, O.success("%s is %s." % (name, "disabled: it logs in no way"
                                               if disabled else "enabled again")))


@backend("disableuser", title="People", header="People", state_changing=True, fields=WHO)
def disableuser(ctx, args):
    """(Admins) stop an account from logging in (certificate, token or password); its
    jobs and files stay."""
    return _set_disabled(ctx, args, True)


@backend("enableuser", title="People", header="People", state_changing=True, fields=WHO)
def enableuser(ctx, args):
    """(Admins) let a disabled account log in again."""
    return _set_disabled(ctx, args, False)


@backend("removeuser", title="People", header="People", state_changing=True, fields=WHO)
def removeuser(ctx, args):
    """(Admins) remove an account: not while it has jobs waiting or running or is the
    only owner of a VGrid; its VGrid roles and triggers go, its home is kept aside."""
    _require_admin(ctx, "remove accounts")
    grid = ctx.grid
    name = grid.users.named(args["cert_id"])
    counts = grid.jobs.state_counts(name)
    pending = sum(counts.get(s, 0) for s in J.PENDING_STATES)
    grid.accounts.remove(name, ctx.user, grid.vgrids, pending, grid.config.path("removed-users"))
    return _page(ctx, O.success("Removed the account %s; its home is in the state folder's "
                                "removed-users." % name))
