"""What a VGrid's people write together: its public and private page, its
wiki (every page with its history) and its forum (threads, replies and
subscriptions).  One record each per VGrid in the store.

Who may do what is decided here, with the VGrid's roles:

* the pages: owners write them; members read the private one; everyone
  (also without logging in) reads the public one at /vgrid/NAME/;
* the wiki: owners and members read and write (no one else);
* the forum: owners and members read, start threads, reply and subscribe;
  a thread's subscribers (and the VGrid-wide ones) are told of each post.
"""

import secrets
import time
import urllib.parse

from mig.errors import AccessDenied, ClientError, InvalidArgument

MAX_TEXT = 64 * 1024
MAX_SUBJECT = 200
MAX_REVISIONS = 50  # kept per wiki page
MAX_WIKI_PAGES = 500
MAX_THREADS = 2000
MAX_POSTS = 1000  # per thread
PAGES = ("public", "private")


def _text(text, what):
    text = (text or "").replace("\r\n", "\n")
    if len(text.encode("utf-8")) > MAX_TEXT or "\x00" in text:
        raise InvalidArgument("%s: at most %d KB of text" % (what, MAX_TEXT // 1024))
    return text


def _title(title, what):
    title = " ".join((title or "").split())
    if not title or len(title) > MAX_SUBJECT:
        raise InvalidArgument("%s: one line of 1 to %d characters" % (what, MAX_SUBJECT))
    return title


class VGridContent:
    def __init__(self, store, vgrids):
        self.store, self.vgrids = store, vgrids

    def _path(self, kind, name):
        return "vgrid%s/%s" % (kind, urllib.parse.quote(name, safe=""))

    def _member(self, name, user, what):
        self.vgrids.get(name)
        if user is None or not self.vgrids.is_member(user, name):
            raise AccessDenied("only the owners and members of %s %s" % (name, what))

    def _owner(self, name, user, what):
        self.vgrids.get(name)
        if not (self.vgrids.is_owner(user, name) or self.vgrids.users.is_admin(user)):
            raise AccessDenied("only the owners of %s %s" % (name, what))

    # -- pages -------------------------------------------------------------------------
    def page(self, name, which, user=None):
        """A page's text and when and by whom it was last saved (the public page
        for anyone, the private one for members)."""
        if which not in PAGES:
            raise InvalidArgument("page: public or private")
        if which == "private":
            self._member(name, user, "read its private page")
        else:
            self.vgrids.get(name)
        record = self.store.read(self._path("pages", name), {})
        return record.get(which) or {"text": "", "author": "", "time": 0}

    def save_page(self, name, which, text, user):
        if which not in PAGES:
            raise InvalidArgument("page: public or private")
        self._owner(name, user, "edit its pages")
        entry = {"text": _text(text, "text"), "author": user, "time": time.time()}
        self.store.update(self._path("pages", name),
                          lambda old: dict(old or {}, **{which: entry}), {})
        return entry

    # -- wiki --------------------------------------------------------------------------
    def wiki_titles(self, name, user):
        self._member(name, user, "read its wiki")
        pages = self.store.read(self._path("wiki", name), {})
        return sorted(pages, key=str.lower)

    def wiki_page(self, name, title, user):
        """[revisions, oldest first]: each {text, author, time}; [] for a new page."""
        self._member(name, user, "read its wiki")
        return list(self.store.read(self._path("wiki", name), {}).get(_title(title, "page"), []))

    def save_wiki(self, name, title, text, user):
        self._member(name, user, "write its wiki")
        title = _title(title, "page")
        revision = {"text": _text(text, "text"), "author": user, "time": time.time()}

        def change(pages):
            pages = dict(pages or {})
            if title not in pages and len(pages) >= MAX_WIKI_PAGES:
                raise ClientError("the wiki of %s has %d pages, the most it may have"
                                  % (name, MAX_WIKI_PAGES))
            pages[title] = (list(pages.get(title, [])) + [revision])[-MAX_REVISIONS:]
            return pages
        self.store.update(self._path("wiki", name), change, {})
        return title

    # -- forum -------------------------------------------------------------------------
    def threads(self, name, user):
        """Newest activity first."""
        self._member(name, user, "read its forum")
        forum = self.store.read(self._path("forum", name), {})
        return sorted(forum.get("threads", {}).values(),
                      key=lambda t: t["posts"][-1]["time"], reverse=True)

    def thread(self, name, thread_id, user):
        self._member(name, user, "read its forum")
        found = self.store.read(self._path("forum", name), {}).get("threads", {}).get(thread_id)
        if found is None:
            raise ClientError("no such thread in %s: %s" % (name, thread_id))
        return found

    def post(self, name, user, text, subject=None, thread_id=None):
        """Start a thread (subject) or reply to one (thread_id); returns (thread,
        the users to tell: subscribers other than the writer)."""
        self._member(name, user, "write in its forum")
        post = {"author": user, "time": time.time(), "text": _text(text, "msg_body")}
        if not post["text"].strip():
            raise InvalidArgument("msg_body: the message is empty")
        result = {}

        def change(forum):
            forum = dict(forum or {})
            threads = dict(forum.get("threads", {}))
            if thread_id is None:
                if len(threads) >= MAX_THREADS:
                    raise ClientError("the forum of %s is full" % name)
                new_id = secrets.token_hex(6)
                thread = {"id": new_id, "subject": _title(subject, "msg_subject"),
                          "author": user, "posts": [post], "subscribers": [user]}
            else:
                if thread_id not in threads:
                    raise ClientError("no such thread in %s: %s" % (name, thread_id))
                thread = dict(threads[thread_id])
                if len(thread["posts"]) >= MAX_POSTS:
                    raise ClientError("the thread is full: start a new one")
                thread["posts"] = thread["posts"] + [post]
            threads[thread["id"]] = thread
            forum["threads"] = threads
            result["thread"] = thread
            result["tell"] = sorted((set(thread["subscribers"]) |
                                     set(forum.get("subscribers", []))) - {user})
            return forum
        self.store.update(self._path("forum", name), change, {})
        return result["thread"], result["tell"]

    def subscribe(self, name, user, on, thread_id=None):
        """(Un)subscribe to one thread, or (thread_id None) to every new post."""
        self._member(name, user, "follow its forum")

        def change(forum):
            forum = dict(forum or {})
            if thread_id is None:
                holder = forum
            else:
                threads = dict(forum.get("threads", {}))
                if thread_id not in threads:
                    raise ClientError("no such thread in %s: %s" % (name, thread_id))
                holder = threads[thread_id] = dict(threads[thread_id])
                forum["threads"] = threads
            people = set(holder.get("subscribers", []))
            holder["subscribers"] = sorted(people | {user} if on else people - {user})
            return forum
        self.store.update(self._path("forum", name), change, {})
