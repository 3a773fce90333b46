"""Share links: one file or folder of a user's home for anyone who knows an id.

A link is a record (owner, home-relative path, read and/or write access,
expiry, recorded invitations) in one store record, ``sharelinks/links``,
changed only under its lock.  Ids are ``secrets.token_urlsafe`` strings
(192 random bits), so they cannot be guessed; they are lookup keys, listed
to their owner only.

Whoever presents an id works on a ``ShareHome``: a Home rooted at the shared
folder's real path, so every path the share user gives is confined to that
folder by the same checks as a user's home (``..``, absolute paths and
symlinks leading out are refused).  A write-only link adds files only: it
never overwrites, removes or lists (a drop box).  Expired and deleted links
do not exist for share users.
"""

import calendar
import os
import re
import secrets
import shutil
import threading
import time
import weakref

from mig.core.beneath import open_beneath
from mig.core.home import TRASH, Home
from mig.errors import (AccessDenied, ClientError, FileNotFound, InvalidArgument, MigError,
                        NoFilePath)

RECORD = "sharelinks/links"
ID_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
DEFAULT_DAYS = 30
MAX_DAYS = 3650
MAX_LINKS_PER_USER = 500
MAX_INVITES = 100
MAX_MSG = 4000
PURGE_AFTER = 30 * 86400  # expired links are kept (shown as expired) this long
DAY = 86400


def new_id():
    """A fresh share id: 192 random bits, URL-safe (letters, digits, - and _)."""
    return secrets.token_urlsafe(24)


def access_name(link):
    if link["read"] and link["write"]:
        return "read-write"
    return "read-only" if link["read"] else "write-only"


def parse_expire(value, now=None):
    """'' (30 days), a number of days (1..3650) or YYYY-MM-DD (through that day, UTC)
    -> the expiry as epoch seconds."""
    now = time.time() if now is None else now
    value = (value or "").strip()
    if not value:
        return now + DEFAULT_DAYS * DAY
    if value.isdigit():
        days = int(value[:6])
        if not 1 <= days <= MAX_DAYS:
            raise InvalidArgument("expire: give 1 to %d days (or a date YYYY-MM-DD)" % MAX_DAYS)
        return now + days * DAY
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value)
    if not match:
        raise InvalidArgument("expire: %r is neither a number of days nor a date YYYY-MM-DD"
                              % value[:40])
    try:
        when = calendar.timegm(time.strptime(value, "%Y-%m-%d")) + DAY
    except ValueError:
        raise InvalidArgument("expire: %s is not a valid date" % value) from None
    if when <= now:
        raise InvalidArgument("expire: %s is in the past" % value)
    if when > now + MAX_DAYS * DAY:
        raise InvalidArgument("expire: %s is more than %d days away" % (value, MAX_DAYS))
    return when


def format_expiry(link, now=None):
    now = time.time() if now is None else now
    text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(link["expires"]))
    return text + (" (expired)" if link["expires"] <= now else "")


def parse_invites(values):
    """['a@b.org, c@d.org', ...] -> a checked, sorted list of addresses."""
    found = []
    for value in values:
        for part in re.split(r"[,;\s]+", value):
            if not part:
                continue
            if not EMAIL_RE.match(part) or len(part) > 254:
                raise InvalidArgument("invite: %r is not an e-mail address" % part[:80])
            found.append(part)
    if len(found) > MAX_INVITES:
        raise InvalidArgument("invite: at most %d addresses" % MAX_INVITES)
    return found


def url(link):
    """The link's address on this grid (a single file at its own name)."""
    base = "/share_redirect/%s/" % link["share_id"]
    return base + os.path.basename(link["path"]) if link["single_file"] else base


class ShareHome(Home):
    """The shared folder as a home: every path confined to it; access as the link grants."""

    def __init__(self, root, owner_root, link):
        super().__init__(root)
        self.owner_root = os.path.realpath(owner_root)
        self.link = dict(link)
        self.owner = link["owner"]
        self.share_id = link["share_id"]
        self.can_read = bool(link["read"])
        self.can_write = bool(link["write"])
        self.add_only = self.can_write and not self.can_read  # write-only: a drop box
        self.url_prefix = "/share_redirect/%s/" % self.share_id

    def need(self, read=False, write=False, what="this"):
        if (read and not self.can_read) or (write and not self.can_write):
            raise AccessDenied("%s needs %s access; this share link is %s"
                               % (what, "read-write" if read and write else
                                  "read" if read else "write", access_name(self.link)))

    def remove(self, relpath, recursive=False, force=False):
        """As Home.remove, but never on a write-only link, never the shared folder
        itself, and unless forced into the owner's Trash/ (out of the share user's
        reach, so the owner can restore it)."""
        self.need(read=True, write=True, what="removing files")
        path, is_dir = self.removable(relpath, recursive, "the shared folder itself")
        if force:
            if is_dir:
                shutil.rmtree(path)
            else:
                os.unlink(path)
            return
        trash = os.path.join(self.owner_root, TRASH)
        os.makedirs(trash, exist_ok=True)
        target = os.path.join(trash, os.path.basename(path))
        if os.path.lexists(target):
            target += "." + time.strftime("%Y%m%d-%H%M%S") + "-%d" % time.time_ns()
        os.replace(path, target)


class ShareLinks:
    """The share link records of one grid (cached by the record's modification time)."""

    def __init__(self, store, users):
        self.store = store
        self.users = users  # a UserDB: homes, and whether a link's owner is still the same
        self.home_of = users.home
        self.lock = threading.Lock()
        self._links, self._version = {}, ()  # () is no version: the first call reads

    # -- reading ------------------------------------------------------------------------
    def _all(self):
        version = self.store.version(RECORD)
        with self.lock:
            if version != self._version:
                self._links = self.store.read(RECORD, {})
                self._version = version
            return self._links

    def owned(self, owner):
        """The owner's links (copies), oldest first."""
        return sorted((dict(link) for link in self._all().values() if link["owner"] == owner),
                      key=lambda link: link["created"])

    def get_owned(self, owner, share_id):
        link = self._all().get(share_id) if isinstance(share_id, str) else None
        if link is None or link["owner"] != owner:
            raise ClientError("you have no share link %s" % (share_id or "(no share_id given)"))
        return dict(link)

    def active(self, share_id, now=None):
        """The link for an id if it exists and has not expired, else None."""
        if not isinstance(share_id, str) or not ID_RE.match(share_id):
            return None
        link = self._all().get(share_id)
        now = time.time() if now is None else now
        if link is None or link["expires"] <= now or not self._owner_ok(link):
            return None
        return dict(link)

    def _owner_ok(self, link):
        """The owner still exists and is the account that made the link (not a later
        account of the same name)."""
        try:
            return self.users.get(link["owner"]).get("created") == link["owner_created"]
        except MigError:
            return False

    # -- the shared thing ------------------------------------------------------------
    def target(self, link):
        """The shared path now, confined to the owner's home; FileNotFound when it is
        gone or changed kind (a folder became a file, or the reverse)."""
        home = self.users.home_folder(link["owner"])  # with the owner's VGrid folders now
        try:
            path = home.resolve(link["path"], must_exist=True)
        except (FileNotFound, InvalidArgument):
            raise FileNotFound("the shared path is gone") from None
        real = os.path.realpath(path)
        kind_ok = os.path.isfile(real) if link["single_file"] else os.path.isdir(real)
        if not kind_ok or real == home.root:
            raise FileNotFound("the shared path is gone")
        return real

    def share_home(self, share_id):
        """A ShareHome for an active folder link; FileNotFound for an unknown, expired
        or single-file link (a single file has no folder to work in)."""
        link = self.active(share_id)
        if link is None:
            raise FileNotFound("no such share link, or it has expired")
        if link["single_file"]:
            raise AccessDenied("share link %s is a single file: download it at %s"
                               % (share_id, url(link)))
        return ShareHome(self.target(link), self.home_of(link["owner"]), link)

    def open_file(self, share_id, rel):
        """(open binary file, its name) for a read through a link; rel as in the URL.

        A single-file link serves its file only at '' or its own name; in a
        folder, rel is confined to the folder and opened without following a
        link on the way (a link swapped in after the check is not followed).
        """
        link = self.active(share_id)
        if link is None:
            raise FileNotFound("no such share link, or it has expired")
        if not link["read"]:
            raise AccessDenied("this share link is write-only: nothing can be read through it")
        real = self.target(link)
        if link["single_file"]:
            if rel.strip("/") not in ("", os.path.basename(link["path"])):
                raise FileNotFound("%s: No such file" % rel)
            folder, name = os.path.dirname(real), os.path.basename(real)
        else:
            home = ShareHome(real, self.home_of(link["owner"]), link)
            try:
                path = home.resolve(rel, must_exist=True)
            except MigError:  # out of the folder, not allowed, missing: all just not here
                raise FileNotFound("%s: No such file" % rel) from None
            inner = os.path.relpath(os.path.realpath(path), home.root)
            if inner == ".":
                raise FileNotFound("%s: is a folder" % (rel or "/"))
            folder, name = home.root, inner
        try:
            return open_beneath(folder, name), os.path.basename(name)
        except OSError:
            raise FileNotFound("%s: No such file" % rel) from None

    # -- changes --------------------------------------------------------------------------
    def _change(self, change):
        def apply(links):
            now = time.time()
            for share_id in [i for i, lk in links.items() if lk["expires"] + PURGE_AFTER < now]:
                del links[share_id]
            return change(links) or links
        self.store.update(RECORD, apply, {})

    def create(self, owner, path, read, write, expires, invites=(), msg=""):
        """Check and store a new link for owner's home-relative path; returns it."""
        if not read and not write:
            raise InvalidArgument("No access set: give read_access and/or write_access")
        if not path or not path.strip():
            raise NoFilePath("No path provided!")
        home = self.users.home_folder(owner)
        full = home.resolve(path, must_exist=True)
        if write:
            home.check_write(full, path)  # no writing through a link where the owner may not
        rel = home.relative(full)
        if rel == ".":
            raise ClientError("Illegal path %r: you can only share your own data, and not "
                              "your entire home folder" % path)
        if rel.split("/")[0].startswith("."):
            raise ClientError("Provided path %r cannot be shared for security reasons "
                              "(hidden names at the top of the home)" % path)
        real = os.path.realpath(full)
        single = os.path.isfile(real)
        if not single and not os.path.isdir(real):
            raise ClientError("%s: not a file or folder" % path)
        if single and write:
            raise ClientError("Individual files cannot be shared with write access - please "
                              "share a folder with the file in it or only share with read "
                              "access.")
        link = {"share_id": new_id(), "owner": owner, "path": rel, "read": bool(read),
                "owner_created": self.users.get(owner).get("created"),
                "write": bool(write), "single_file": single, "created": time.time(),
                "expires": expires, "invites": sorted(set(invites)), "msg": msg}

        def insert(links):
            if sum(1 for lk in links.values() if lk["owner"] == owner) >= MAX_LINKS_PER_USER:
                raise ClientError("you have %d share links: delete some first"
                                  % MAX_LINKS_PER_USER)
            while link["share_id"] in links:  # 192 bits: never, but cheap to rule out
                link["share_id"] = new_id()
            links[link["share_id"]] = link
        self._change(insert)
        return dict(link)

    def update(self, owner, share_id, read=None, write=None, expires=None, invites=(), msg=None):
        """Change access, expiry, add invitations or the message; returns the link."""
        result = {}

        def change(links):
            link = links.get(share_id)
            if link is None or link["owner"] != owner:
                raise ClientError("you have no share link %s" % share_id)
            new_read = link["read"] if read is None else bool(read)
            new_write = link["write"] if write is None else bool(write)
            if not new_read and not new_write:
                raise InvalidArgument("No access set: a link needs read and/or write access")
            if new_write and link["single_file"]:
                raise ClientError("Individual files cannot be shared with write access")
            link.update(read=new_read, write=new_write)
            if expires is not None:
                link["expires"] = expires
            if invites:
                link["invites"] = sorted(set(link.get("invites", [])) | set(invites))
            if msg is not None:
                link["msg"] = msg
            result.update(link)
        self._change(change)
        return result

    def delete(self, owner, share_id):
        """Remove a link; returns the removed record."""
        removed = {}

        def change(links):
            link = links.get(share_id)
            if link is None or link["owner"] != owner:
                raise ClientError("you have no share link %s" % share_id)
            removed.update(links.pop(share_id))
        self._change(change)
        return removed


_SERVICES = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def links(grid):
    """The ShareLinks of a grid (one per store, so its cache is shared)."""
    with _SERVICES_LOCK:
        service = _SERVICES.get(grid.store)
        if service is None:
            service = _SERVICES[grid.store] = ShareLinks(grid.store, grid.users)
        return service
