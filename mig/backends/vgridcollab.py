"""A VGrid's pages, wiki and forum in the portal: ``vgridpage`` and
``editvgridpage`` (the public and the private page; MiG's
``showvgridprivatefile`` shows the private one), ``vgridwiki`` and
``editvgridwiki``, ``vgridforum`` and ``vgridforumaction``.  Text is kept
as written and shown through the small markup of render/markup.py, which
makes no tag of anything the user typed.  The rights are in
mig/core/vgridcontent.py."""

import urllib.parse

from mig.backends import Field, backend
from mig.backends.jobs import asctime
from mig.errors import InvalidArgument
from mig.render import objects as O

VGRID = {"vgrid_name": Field("vgrid", required=True, help="the VGrid")}
HOME_PAGE = "Home"


def _markup(text, vgrid=None):
    return {"object_type": "markup", "text": text, "wiki": vgrid or ""}


def _links(name):
    return {"object_type": "links", "links": [
        ("/cgi-bin/adminvgrid.py?vgrid_name=" + urllib.parse.quote(name), name),
        ("/cgi-bin/vgridpage.py?page=private&vgrid_name=" + urllib.parse.quote(name),
         "Private page"),
        ("/vgrid/%s/" % urllib.parse.quote(name), "Public page"),
        ("/cgi-bin/vgridwiki.py?vgrid_name=" + urllib.parse.quote(name), "Wiki"),
        ("/cgi-bin/vgridforum.py?vgrid_name=" + urllib.parse.quote(name), "Forum")]}


# -- pages ---------------------------------------------------------------------------------
def _page(ctx, name, which, message=None):
    content = ctx.grid.vgrid_content
    page = content.page(name, which, ctx.user)
    objects = ([message] if message else []) + [_links(name), _markup(page["text"])]
    if page["author"]:
        objects.append(O.text("Saved by %s on %s UTC." % (page["author"], asctime(page["time"]))))
    if ctx.grid.vgrids.is_owner(ctx.user, name) or ctx.grid.users.is_admin(ctx.user):
        objects += [O.header("Edit the %s page" % which), {
            "object_type": "form", "action": "editvgridpage", "submit": "Save",
            "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                       {"name": "page", "type": "hidden", "value": which},
                       {"name": "text", "label": "Text", "type": "textarea", "rows": 14,
                        "value": page["text"],
                        "help": "# Heading, - list, **bold**, `code`, [text](https://...), "
                                "[[Wiki page]]; no HTML"}]}]
    return O.Result(objects)


@backend("vgridpage", title="VGrids", header="VGrid page",
         fields=dict(VGRID, page=Field("word", default=("private",), help="public or private")))
def vgridpage(ctx, args):
    """A VGrid's private page (members) or public page; its owners edit them here."""
    return _page(ctx, args["vgrid_name"], args["page"])


@backend("showvgridprivatefile", title="VGrids", header="VGrid page", fields=VGRID)
def showvgridprivatefile(ctx, args):
    """A VGrid's private page, for its owners and members (MiG's name)."""
    return _page(ctx, args["vgrid_name"], "private")


@backend("editvgridpage", title="VGrids", header="VGrid page", state_changing=True,
         fields=dict(VGRID, page=Field("word", required=True, help="public or private"),
                     text=Field("text", help="the page in the small markup")))
def editvgridpage(ctx, args):
    """Save a VGrid's public or private page (its owners)."""
    name, which = args["vgrid_name"], args["page"]
    ctx.grid.vgrid_content.save_page(name, which, args["text"], ctx.user)
    return _page(ctx, name, which, O.success("Saved the %s page of %s." % (which, name)))


# -- wiki ----------------------------------------------------------------------------------
def _wiki(ctx, name, title, revision=None, message=None):
    content = ctx.grid.vgrid_content
    revisions = content.wiki_page(name, title, ctx.user)
    titles = content.wiki_titles(name, ctx.user)
    shown = revisions[revision - 1] if revision and 0 < revision <= len(revisions) else \
        (revisions[-1] if revisions else None)
    objects = ([message] if message else []) + [_links(name), O.header(title)]
    objects.append(_markup(shown["text"], name) if shown else
                   O.text("This page is empty: write it below."))
    history = O.table("wikihistory", ("Revision", "By", "Saved (UTC)"), [
        ({"text": str(n), "href": "/cgi-bin/vgridwiki.py?" + urllib.parse.urlencode(
            {"vgrid_name": name, "page": title, "revision": n})}, r["author"], asctime(r["time"]))
        for n, r in reversed(list(enumerate(revisions, 1)))])
    history["empty"] = "No revisions yet."
    pages = O.table("wikipages", ("Page",), [({"text": t, "href": "/cgi-bin/vgridwiki.py?" +
                                               urllib.parse.urlencode({"vgrid_name": name,
                                                                       "page": t})},)
                                             for t in titles])
    objects += [O.header("History"), history, O.header("Edit"), {
        "object_type": "form", "action": "editvgridwiki", "submit": "Save",
        "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                   {"name": "page", "type": "hidden", "value": title},
                   {"name": "text", "label": "Text", "type": "textarea", "rows": 14,
                    "value": revisions[-1]["text"] if revisions else "",
                    "help": "[[Another page]] links (and makes) a page; # Heading, - list"}]},
        O.header("Pages"), pages]
    return O.Result(objects)


@backend("vgridwiki", title="VGrids", header="VGrid wiki",
         fields=dict(VGRID, page=Field("text", default=(HOME_PAGE,), help="the page's title"),
                     revision=Field("number", help="an older revision (1 is the first)")))
def vgridwiki(ctx, args):
    """A page of a VGrid's wiki with its history (owners and members)."""
    return _wiki(ctx, args["vgrid_name"], args["page"],
                 int(args["revision"]) if args["revision"] else None)


@backend("editvgridwiki", title="VGrids", header="VGrid wiki", state_changing=True,
         fields=dict(VGRID, page=Field("text", required=True, help="the page's title"),
                     text=Field("text", help="the page in the small markup")))
def editvgridwiki(ctx, args):
    """Save a new revision of a wiki page (owners and members); older ones stay."""
    name = args["vgrid_name"]
    title = ctx.grid.vgrid_content.save_wiki(name, args["page"], args["text"], ctx.user)
    return _wiki(ctx, name, title, message=O.success("Saved %s." % title))


# -- forum ---------------------------------------------------------------------------------
def _forum(ctx, name, thread_id=None, message=None):
    content = ctx.grid.vgrid_content
    objects = ([message] if message else []) + [_links(name)]
    if thread_id:
        thread = content.thread(name, thread_id, ctx.user)
        subscribed = ctx.user in thread["subscribers"]
        objects.append(O.header(thread["subject"]))
        for post in thread["posts"]:
            objects += [O.text("%s, %s UTC:" % (post["author"], asctime(post["time"]))),
                        _markup(post["text"])]
        objects += [{"object_type": "post_button", "backend": "vgridforumaction",
                     "fields": {"vgrid_name": name, "thread": thread_id,
                                "action": "unsubscribe" if subscribed else "subscribe"},
                     "text": "Stop following" if subscribed else "Follow", "style": "secondary"},
                    O.header("Reply"), {
                        "object_type": "form", "action": "vgridforumaction", "submit": "Reply",
                        "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                                   {"name": "thread", "type": "hidden", "value": thread_id},
                                   {"name": "action", "type": "hidden", "value": "reply"},
                                   {"name": "msg_body", "label": "Message",
                                    "type": "textarea", "rows": 6}]}]
        return O.Result(objects)
    rows = [({"text": t["subject"], "href": "/cgi-bin/vgridforum.py?" + urllib.parse.urlencode(
                {"vgrid_name": name, "action": "show_thread", "thread": t["id"]})},
             t["author"], len(t["posts"]) - 1, asctime(t["posts"][-1]["time"]))
            for t in content.threads(name, ctx.user)]
    table = O.table("forumthreads", ("Thread", "Started by", "Replies", "Last post (UTC)"),
                    rows)
    table["empty"] = "No threads yet."
    objects += [table, O.header("Start a thread"), {
        "object_type": "form", "action": "vgridforumaction", "submit": "Post",
        "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                   {"name": "action", "type": "hidden", "value": "post"},
                   {"name": "msg_subject", "label": "Subject"},
                   {"name": "msg_body", "label": "Message", "type": "textarea", "rows": 6}]}]
    return O.Result(objects)


@backend("vgridforum", title="VGrids", header="VGrid forum",
         fields=dict(VGRID, action=Field("word", default=("show_all",),
                                         help="show_all or show_thread"),
                     thread=Field("word", help="the thread, for show_thread")))
def vgridforum(ctx, args):
    """A VGrid's forum: its threads, or one thread with its replies (owners and members)."""
    if args["action"] not in ("show_all", "show_thread"):
        raise InvalidArgument("action: show_all or show_thread (posting is vgridforumaction)")
    return _forum(ctx, args["vgrid_name"],
                  args["thread"] if args["action"] == "show_thread" else None)


@backend("vgridforumaction", title="VGrids", header="VGrid forum", state_changing=True,
         fields=dict(VGRID, action=Field("word", required=True,
                                         help="post, reply, subscribe, unsubscribe, "
                                              "subscribe_all or unsubscribe_all"),
                     thread=Field("word", help="the thread (reply, subscribe, unsubscribe)"),
                     msg_subject=Field("text", help="a new thread's subject"),
                     msg_body=Field("text", help="the message")))
def vgridforumaction(ctx, args):
    """Start a thread, reply, or follow a thread (or the whole forum) to be told of
    new posts in the inbox (and by mail where set up)."""
    name, action, content = args["vgrid_name"], args["action"], ctx.grid.vgrid_content
    if action in ("post", "reply"):
        thread, tell = content.post(name, ctx.user, args["msg_body"],
                                    subject=args["msg_subject"] if action == "post" else None,
                                    thread_id=args["thread"] if action == "reply" else None)
        for user in tell:
            ctx.grid.deliver_message(user, "[%s forum] %s" % (name, thread["subject"]),
                                     "%s wrote:\n\n%s" % (ctx.user, args["msg_body"]))
        return _forum(ctx, name, thread["id"], O.success("Posted."))
    if action in ("subscribe", "unsubscribe", "subscribe_all", "unsubscribe_all"):
        whole = action.endswith("_all")
        content.subscribe(name, ctx.user, action.startswith("subscribe"),
                          None if whole else args["thread"])
        return _forum(ctx, name, None if whole else args["thread"],
                      O.success("You %s %s." % ("follow" if action.startswith("subscribe")
                                                else "no longer follow",
                                                "the forum" if whole else "this thread")))
    raise InvalidArgument("action: post, reply, subscribe, unsubscribe, subscribe_all or "
                          "unsubscribe_all")
