"""VGrid invitations: an owner invites a user (``invitevgridmember``); the
user sees it on the VGrids page and in the inbox, and accepts
(``acceptvgridinvite``: they become a member) or declines
(``declinevgridinvite``).  Owners withdraw one with ``rejectvgridreq``."""

from mig.backends import Field, backend
from mig.backends.vgrids import manage_page, vgrid_page
from mig.render import objects as O

VGRID = {"vgrid_name": Field("vgrid", required=True, help="the VGrid")}
ANSWER = dict(VGRID, request_name=Field("word", required=True, help="the invitation"))


@backend("invitevgridmember", title="VGrids", header="VGrid", state_changing=True,
         fields=dict(VGRID, cert_id=Field("text", required=True,
                                          help="a user name or certificate DN")))
def invitevgridmember(ctx, args):
    """Invite a user to be a member of your VGrid: they become one when they accept."""
    name, who = args["vgrid_name"], ctx.grid.users.named(args["cert_id"])
    ctx.grid.vgrids.invite(name, who, ctx.user)
    ctx.grid.deliver_message(who, "Invitation to %s" % name,
                             "%s invites you to be a member of the VGrid %s. Accept or "
                             "decline on %s/cgi-bin/vgridman.py" % (ctx.user, name,
                                                                    ctx.grid.public_url))
    return vgrid_page(ctx, name, O.success("Invited %s to %s; they become a member when "
                                                "they accept." % (who, name)))


@backend("acceptvgridinvite", title="VGrids", header="VGrids", state_changing=True,
         fields=ANSWER)
def acceptvgridinvite(ctx, args):
    """Accept an invitation to a VGrid: you become a member."""
    name = args["vgrid_name"]
    invite = ctx.grid.vgrids.answer_invitation(name, args["request_name"], ctx.user, True)
    ctx.grid.deliver_message(invite["by"], "%s joined %s" % (ctx.user, name),
                             "%s accepted your invitation to %s." % (ctx.user, name))
    return vgrid_page(ctx, name, O.success("You are a member of %s." % name))


@backend("declinevgridinvite", title="VGrids", header="VGrids", state_changing=True,
         fields=ANSWER)
def declinevgridinvite(ctx, args):
    """Decline an invitation to a VGrid."""
    name = args["vgrid_name"]
    ctx.grid.vgrids.answer_invitation(name, args["request_name"], ctx.user, False)
    return manage_page(ctx, O.success("Declined the invitation to %s." % name))
